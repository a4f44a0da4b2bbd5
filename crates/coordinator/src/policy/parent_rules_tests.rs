//! State-machine tests of the parent rules (C3 → C4, issue 11 must show 2): a
//! peer overlay driven through joins and selections with the rules built from a
//! policy file, each shown obeyed — and changing the choice `AllowAll` makes.

use super::parent_rules::ParentRules;
use super::{check, Known};
use crate::peers::overlay::{MemberKind, PeerOverlay};
use crate::peers::select::{AllowAll, NoParent};
use crate::peers::tests::{cfg, info, join_peers, with_origin, RATE};
use crate::registry::RegionId;
use tiercast_proto::{NodeId, Timestamp};

fn rules(src: &str) -> ParentRules {
    let p = check(src, &Known::default()).unwrap_or_else(|e| panic!("{e}"));
    let id = |n: &str| {
        ["a", "b", "c"]
            .iter()
            .position(|r| *r == n)
            .map(|i| RegionId(i as u16))
    };
    ParentRules::build(&p, id).expect("rules in force")
}

/// Origin 1, peers 2..=6 with uplink, child 20 without; a tree with two
/// interior peers, and the one `AllowAll` picks there for 20 (20 detached).
fn overlay() -> (PeerOverlay, u8, NodeId) {
    let t0 = Timestamp::ZERO;
    let c = cfg();
    let mut o = with_origin(t0, &c, 4 * RATE);
    join_peers(&mut o, t0, &c, 2..7, 2 * RATE);
    o.join(
        t0,
        info(20),
        RegionId(0),
        MemberKind::Peer,
        0,
        &c,
        &AllowAll,
    );
    let tree = (0..o.k)
        .find(|t| {
            o.members
                .values()
                .filter(|m| m.kind == MemberKind::Peer && m.interior == Some(*t))
                .count()
                >= 2
        })
        .expect("five interior peers over four trees");
    o.detach(NodeId(20), tree);
    let pick = o
        .select_parent(NodeId(20), tree, &[], 4, &AllowAll)
        .expect("room");
    (o, tree, pick)
}

fn other_interior(o: &PeerOverlay, tree: u8, not: NodeId) -> NodeId {
    *o.members
        .iter()
        .find(|(id, m)| **id != not && m.kind == MemberKind::Peer && m.interior == Some(tree))
        .expect("two interior")
        .0
}

fn linked(o: &PeerOverlay, a: NodeId, b: NodeId) -> bool {
    o.bottom_links()
        .any(|(c, _, p)| (c, p) == (a, b) || (c, p) == (b, a))
}

#[test]
fn a_must_not_group_never_feeds_its_members_in_selection_join_or_rebuild() {
    let (mut o, tree, pick) = overlay();
    assert_ne!(pick.0, 1, "a peer is picked before the origin");
    let r = rules(&format!(
        "[[client.affinity]]\nname = \"rivals\"\nmembers = [20, {}]\nmode = \"must_not\"\n",
        pick.0
    ));
    let chosen = o.select_parent(NodeId(20), tree, &[], 4, &r);
    assert!(chosen.is_ok(), "another parent is allowed: {chosen:?}");
    assert_ne!(chosen, Ok(pick), "the rule changes the choice");
    // A new member of the group joins, and everyone is rebuilt, under the rule.
    let c = cfg();
    o.join(
        Timestamp::ZERO,
        info(21),
        RegionId(0),
        MemberKind::Peer,
        0,
        &c,
        &r,
    );
    o.place(NodeId(20), false, &c, &r);
    assert!(!linked(&o, NodeId(20), pick));
    o.full_recompute(Timestamp::ZERO.plus_millis(30_000), &c, &r);
    assert!(!linked(&o, NodeId(20), pick), "not after a rebuild either");
    assert!(o.members[&NodeId(20)].parents.iter().all(Option::is_some));
}

#[test]
fn a_should_group_member_is_taken_before_an_equally_placed_stranger() {
    let (o, tree, pick) = overlay();
    let friend = other_interior(&o, tree, pick);
    let r = rules(&format!(
        "[[client.affinity]]\nname = \"office\"\nmembers = [20, {}]\nmode = \"should\"\n",
        friend.0
    ));
    assert_eq!(o.select_parent(NodeId(20), tree, &[], 4, &r), Ok(friend));
    // A friend with no slot in this tree is not forced on it.
    let r = rules("[[client.affinity]]\nname = \"o\"\nmembers = [20, 99]\nmode = \"should\"\n");
    assert_eq!(o.select_parent(NodeId(20), tree, &[], 4, &r), Ok(pick));
}

#[test]
fn a_cap_between_two_nodes_prunes_the_parent_and_its_fallback_is_taken_only_when_nothing_else_is_left(
) {
    let (o, tree, pick) = overlay();
    // A substream is r/k = 0.5 Mbit/s: a 0.4 cap refuses the link, 1.0 allows it.
    let strict = format!(
        "[[network.link_cap]]\nname = \"thin\"\nnodes = [20, {}]\ncap_mbps = 0.4\n",
        pick.0
    );
    let with_fallback = format!(
        "{strict}fallback = \"wider\"\n\n[[network.link_cap]]\nname = \"wider\"\nnodes = [20, {}]\ncap_mbps = 1.0\n",
        pick.0
    );
    let (strict, relaxed) = (rules(&strict), rules(&with_fallback));
    let chosen = o.select_parent(NodeId(20), tree, &[], 4, &strict);
    assert!(chosen.is_ok() && chosen != Ok(pick), "{chosen:?}");
    assert_eq!(
        o.select_parent(NodeId(20), tree, &[], 4, &relaxed),
        chosen,
        "the fall-back is not used while another parent is allowed"
    );
    // Every other member avoided: `pick` is the only one left.
    let others: Vec<NodeId> = o.members.keys().copied().filter(|id| *id != pick).collect();
    assert_eq!(
        o.select_parent(NodeId(20), tree, &others, 4, &AllowAll),
        Ok(pick)
    );
    assert_eq!(
        o.select_parent(NodeId(20), tree, &others, 4, &strict),
        Err(NoParent::Policy)
    );
    assert_eq!(
        o.select_parent(NodeId(20), tree, &others, 4, &relaxed),
        Ok(pick),
        "the declared fall-back cap carries it"
    );
}

#[test]
fn a_peering_region_is_searched_before_other_regions() {
    let t0 = Timestamp::ZERO;
    let c = cfg();
    let mut o = with_origin(t0, &c, 4 * RATE);
    for (id, region) in [
        (2, 1),
        (3, 1),
        (4, 1),
        (5, 1),
        (6, 2),
        (7, 2),
        (8, 2),
        (9, 2),
    ] {
        o.join(
            t0,
            info(id),
            RegionId(region),
            MemberKind::Peer,
            2 * RATE,
            &c,
            &AllowAll,
        );
    }
    o.join(
        t0,
        info(20),
        RegionId(0),
        MemberKind::Peer,
        0,
        &c,
        &AllowAll,
    );
    let region_of = |o: &PeerOverlay, p: NodeId| o.members[&p].region;
    let r = rules("[[network.prefer_peering]]\nname = \"p\"\npairs = [[\"a\", \"c\"]]\n");
    let mut differs = false;
    for tree in 0..o.k {
        o.detach(NodeId(20), tree);
        let plain = o
            .select_parent(NodeId(20), tree, &[], 4, &AllowAll)
            .expect("room");
        let peered = o.select_parent(NodeId(20), tree, &[], 4, &r).expect("room");
        assert_eq!(
            region_of(&o, peered),
            RegionId(2),
            "tree {tree}: across the peering pair"
        );
        differs |= region_of(&o, plain) != RegionId(2);
        o.attach(NodeId(20), tree, peered);
    }
    assert!(differs, "without the rule another region is searched first");
}
