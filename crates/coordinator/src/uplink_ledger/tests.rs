//! The ledger's books (C9): never over-booked, a lone channel gets all,
//! releases give back, bounds refuse.

use super::ledger::{ShareError, UplinkLedger, MAX_CHANNELS_PER_NODE};
use super::test_books::{apply, booking, Booking};
use proptest::prelude::*;
use tiercast_proto::{ChannelId, NodeId};

const R: u64 = 2_000_000;

#[test]
fn a_node_on_one_channel_holds_its_whole_uplink() {
    let mut l = UplinkLedger::new(10);
    assert_eq!(l.quote(NodeId(5), ChannelId(1), 6_000_000, R), 6_000_000);
    let g = l.acquire(NodeId(5), ChannelId(1), 6_000_000, R).unwrap();
    assert_eq!(g.share_bps, 6_000_000);
    assert!(g.changed.is_empty());
    assert_eq!(l.share(NodeId(5), ChannelId(1)), Some(6_000_000));
    // Asking again changes nothing.
    let g = l.acquire(NodeId(5), ChannelId(1), 6_000_000, R).unwrap();
    assert_eq!((g.share_bps, g.changed.len()), (6_000_000, 0));
}

#[test]
fn a_second_channel_splits_by_rate_and_the_first_shrinks() {
    let mut l = UplinkLedger::new(10);
    l.acquire(NodeId(5), ChannelId(1), 6_000_000, R).unwrap();
    assert_eq!(
        l.quote(NodeId(5), ChannelId(2), 6_000_000, 2 * R),
        4_000_000
    );
    let g = l
        .acquire(NodeId(5), ChannelId(2), 6_000_000, 2 * R)
        .unwrap();
    assert_eq!(g.share_bps, 4_000_000);
    assert_eq!(g.changed, vec![(ChannelId(1), 2_000_000)]);
    assert_eq!(l.booked(NodeId(5)), 6_000_000);
    assert_eq!(l.shared_nodes().collect::<Vec<_>>(), vec![NodeId(5)]);
}

#[test]
fn release_gives_the_share_back_to_the_others_and_the_last_one_drops_the_node() {
    let mut l = UplinkLedger::new(10);
    for c in 1..=3 {
        l.acquire(NodeId(5), ChannelId(c), 3_000_001, R).unwrap();
    }
    assert_eq!(l.share(NodeId(5), ChannelId(1)), Some(1_000_000));
    let grown = l.release(NodeId(5), ChannelId(2));
    assert_eq!(
        grown,
        vec![(ChannelId(1), 1_500_000), (ChannelId(3), 1_500_000)]
    );
    assert_eq!(l.share(NodeId(5), ChannelId(2)), None);
    assert_eq!(
        l.release(NodeId(5), ChannelId(3)),
        vec![(ChannelId(1), 3_000_001)]
    );
    assert_eq!(l.shared_nodes().count(), 0);
    assert!(l.release(NodeId(5), ChannelId(1)).is_empty());
    assert!(l.is_empty(), "no entry is left for a node on no channel");
    // Releasing what is not held is harmless.
    assert!(l.release(NodeId(5), ChannelId(1)).is_empty());
    assert!(l.release(NodeId(9), ChannelId(1)).is_empty());
}

#[test]
fn forget_and_release_channel_drop_every_share() {
    let mut l = UplinkLedger::new(10);
    for n in 1..=3 {
        l.acquire(NodeId(n), ChannelId(1), 4_000_000, R).unwrap();
        l.acquire(NodeId(n), ChannelId(2), 4_000_000, R).unwrap();
    }
    l.forget(NodeId(1));
    assert_eq!(l.len(), 2);
    let grown = l.release_channel(ChannelId(2));
    assert_eq!(
        grown,
        vec![
            (NodeId(2), ChannelId(1), 4_000_000),
            (NodeId(3), ChannelId(1), 4_000_000)
        ]
    );
    assert_eq!(l.shared_nodes().count(), 0);
}

#[test]
fn bounds_refuse_beyond_the_limits() {
    let mut l = UplinkLedger::new(2);
    l.acquire(NodeId(1), ChannelId(1), 1, R).unwrap();
    l.acquire(NodeId(2), ChannelId(1), 1, R).unwrap();
    assert_eq!(
        l.acquire(NodeId(3), ChannelId(1), 1, R),
        Err(ShareError::TooManyNodes)
    );
    assert_eq!(l.quote(NodeId(3), ChannelId(1), 1_000, R), 0);
    for c in 2..=MAX_CHANNELS_PER_NODE as u32 {
        l.acquire(NodeId(1), ChannelId(c), 64_000_000, R).unwrap();
    }
    let next = ChannelId(MAX_CHANNELS_PER_NODE as u32 + 1);
    assert_eq!(
        l.acquire(NodeId(1), next, 64_000_000, R),
        Err(ShareError::TooManyChannels)
    );
    assert_eq!(l.quote(NodeId(1), next, 64_000_000, R), 0);
    assert_eq!(l.booked(NodeId(1)), 64_000_000);
}

#[test]
fn zero_uplink_and_zero_weight_are_handled() {
    let mut l = UplinkLedger::new(10);
    assert_eq!(
        l.acquire(NodeId(1), ChannelId(1), 0, 0).unwrap().share_bps,
        0
    );
    let g = l.acquire(NodeId(1), ChannelId(2), u64::MAX, 0).unwrap();
    assert_eq!(g.share_bps, u64::MAX / 2);
    assert_eq!(
        l.booked(NodeId(1)),
        u64::MAX - 1,
        "floored, never past the uplink"
    );
}

#[derive(Clone, Debug)]
enum Step {
    Book(Booking),
    EndChannel { channel: u32 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        7 => booking(6, 5, 0, [4, 2, 1]).prop_map(Step::Book),
        1 => (0..5u32).prop_map(|channel| Step::EndChannel { channel }),
    ]
}

proptest! {
    /// Whatever the order of asks and releases, a node's shares never add up to
    /// more than its declared uplink, a lone share is the whole uplink, and no
    /// entry outlives its last share.
    #[test]
    fn never_over_booked_over_random_steps(steps in proptest::collection::vec(step(), 1..80)) {
        let mut l = UplinkLedger::new(4);
        for s in steps {
            match s {
                Step::Book(b) => {
                    apply(&mut l, b)?;
                }
                Step::EndChannel { channel } => {
                    l.release_channel(ChannelId(channel));
                }
            }
            prop_assert!(l.len() <= 4);
            for n in 0..6u32 {
                let id = NodeId(n);
                let shares: Vec<_> = l.shares(id).collect();
                match l.declared(id) {
                    None => prop_assert!(shares.is_empty()),
                    Some(d) => {
                        prop_assert!(!shares.is_empty(), "an entry with no share");
                        prop_assert!(l.booked(id) <= d);
                        if shares.len() == 1 {
                            prop_assert_eq!(shares[0].1, d);
                        }
                    }
                }
                let shared = l.shared_nodes().any(|x| x == id);
                prop_assert_eq!(shared, shares.len() > 1);
            }
        }
    }
}
