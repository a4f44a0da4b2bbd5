//! Tests of the parent sets (C1, [`crate::parent_set`]): a set not newer than
//! the last applied is ignored and counted, a malformed or misplaced one changes
//! nothing, and an activation set restarts the expansion phase. The handover
//! they trigger is tested in `switch_tests.rs`.

use crate::test_fixture::{
    all, desc, feed, logins, logoffs, parent_ids, peer, relay, relay_cfg, set, CH,
};
use crate::Node;
use tiercast_proto::{Feed, Message, NodeId, Placement, SubstreamSet, Timestamp, COORDINATOR_ID};

#[test]
fn a_set_not_newer_than_the_last_applied_is_ignored_and_counted() {
    let mut n = peer(); // set 1: 5 and 6
    let t = |ms| Timestamp::ZERO.plus_millis(ms);
    set(&mut n, t(100), 3, Placement::Member, vec![all(7)]);
    n.handle_message(t(150), NodeId(7), Message::LoginAccepted { channel: CH });
    assert_eq!(logoffs(&mut n), vec![5, 6]);
    assert_eq!(n.parent_set_version(CH), Some(3));
    let invalid = n.stats().invalid_messages;
    // An older set (2) and the same one again (3) arrive late: nothing changes.
    for v in [2, 3] {
        set(
            &mut n,
            t(200),
            v,
            Placement::Member,
            vec![feed(5, &[0, 1]), feed(6, &[2, 3])],
        );
        assert!(logins(&mut n).is_empty(), "version {v}: no LOGIN");
        assert_eq!(parent_ids(&n), vec![7], "version {v}: parents kept");
    }
    assert_eq!(n.stats().invalid_messages, invalid + 2, "both counted");
    // A stale set never changes the channel's key either (X3).
    let mut other_key = desc();
    other_key.public_key = [7; 32];
    n.handle_message(
        t(250),
        COORDINATOR_ID,
        Message::ParentSet {
            channel: other_key,
            version: 2,
            placement: Placement::Member,
            parents: vec![all(7)],
        },
    );
    assert_eq!(n.channel(CH).unwrap().desc.public_key, [0; 32]);
    assert_eq!(n.stats().invalid_messages, invalid + 3);
    assert_eq!(n.parent_set_version(CH), Some(3));
    // A newer one is applied.
    set(&mut n, t(300), 4, Placement::Member, vec![all(7), all(8)]);
    assert_eq!(logins(&mut n).len(), 1);
    assert_eq!(parent_ids(&n), vec![7, 8]);
    // Registered again, the coordinator numbers the sets afresh: 1 is new.
    n.handle_message(
        t(400),
        COORDINATOR_ID,
        Message::Registered {
            heartbeat_interval_ms: 1000,
        },
    );
    assert_eq!(n.parent_set_version(CH), None);
    set(&mut n, t(500), 1, Placement::Member, vec![all(8)]);
    assert_eq!(n.parent_set_version(CH), Some(1));
}

#[test]
fn a_malformed_or_misplaced_set_changes_nothing_and_is_counted() {
    let mut n = peer();
    let t = Timestamp::from_millis(100);
    let before = parent_ids(&n);
    let invalid = n.stats().invalid_messages;
    // Itself as a parent; too many parents; a tier for a peer; a bad feed.
    set(&mut n, t, 2, Placement::Member, vec![all(9)]);
    let many = (100..100 + tiercast_proto::MAX_SET_PARENTS as u32 + 1)
        .map(all)
        .collect();
    set(&mut n, t, 3, Placement::Member, many);
    let tier = Placement::Tier {
        tier: 2,
        activate: true,
    };
    set(&mut n, t, 4, tier, vec![all(7)]);
    let mut bad = all(7);
    bad.feed = Feed::Substreams(SubstreamSet { k: 4, mask: 0 });
    set(&mut n, t, 5, Placement::Member, vec![bad]);
    assert_eq!(n.stats().invalid_messages, invalid + 4);
    assert_eq!(parent_ids(&n), before);
    assert_eq!(n.parent_set_version(CH), Some(1), "none of them applied");
    // A relay re-parented on a channel it does not carry.
    let mut r = Node::new(relay_cfg(), Timestamp::ZERO);
    let reparent = Placement::Tier {
        tier: 2,
        activate: false,
    };
    set(&mut r, t, 1, reparent, vec![all(11)]);
    assert_eq!(r.stats().invalid_messages, 1);
    assert!(r.channel(CH).is_none());
}

#[test]
fn an_activation_set_restarts_the_expansion_phase_and_a_reparenting_one_does_not() {
    let mut n = relay();
    let activate = |tier| Placement::Tier {
        tier,
        activate: true,
    };
    n.channels.get_mut(&CH).unwrap().phase = crate::channel::Phase::Contracting;
    let reparent = Placement::Tier {
        tier: 2,
        activate: false,
    };
    set(
        &mut n,
        Timestamp::from_millis(10),
        2,
        reparent,
        vec![all(11)],
    );
    assert_eq!(
        n.channel(CH).unwrap().phase,
        crate::channel::Phase::Contracting
    );
    set(
        &mut n,
        Timestamp::from_millis(20),
        3,
        activate(2),
        vec![all(11)],
    );
    assert_eq!(
        n.channel(CH).unwrap().phase,
        crate::channel::Phase::Expanding
    );
    let activated = std::iter::from_fn(|| n.poll_event())
        .filter(|e| matches!(e, crate::Event::Activated { .. }))
        .count();
    assert_eq!(activated, 2, "the first activation and this one");
}
