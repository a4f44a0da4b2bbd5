//! Lending between the channels of one node (C9): a channel under its share
//! lends the rest, takes it back when it needs it, keeps a band so borrowers
//! are not moved at every check; never over-booked over random steps.

use super::ledger::UplinkLedger;
use super::lending::RESERVE_DIVISOR;
use super::test_books::{apply, booking, Booking};
use proptest::prelude::*;
use std::collections::BTreeMap;
use tiercast_proto::{ChannelId, NodeId};

const R: u64 = 2_000_000;
const N: NodeId = NodeId(5);
const A: ChannelId = ChannelId(1);
const B: ChannelId = ChannelId(2);
const C: ChannelId = ChannelId(3);

/// Node 5 with 20 Mb/s on A and B (10 Mb/s each; a reserve of 2.5 Mb/s).
fn two_channels() -> UplinkLedger {
    let mut l = UplinkLedger::new(10);
    l.acquire(N, A, 20_000_000, R).unwrap();
    l.acquire(N, B, 20_000_000, R).unwrap();
    l
}

#[test]
fn a_channel_under_its_share_lends_the_rest_to_the_one_that_is_full() {
    let mut l = two_channels();
    let changed = l.lend(N, &[(A, 1_000_000), (B, 10_000_000)]);
    // A keeps its use and a reserve (1 + 2.5); B gets the other 16.5.
    assert_eq!(changed, vec![(A, 3_500_000), (B, 16_500_000)]);
    assert_eq!(l.share(N, A), Some(3_500_000));
    assert_eq!(l.base_share(N, A), Some(10_000_000));
    assert_eq!(l.share(N, B), Some(16_500_000));
    assert_eq!(l.booked(N), 20_000_000, "booked once: never past U");
    // Measured again with the same use: nothing moves.
    assert!(l.lend(N, &[(A, 1_000_000), (B, 16_500_000)]).is_empty());
}

#[test]
fn nothing_is_lent_when_no_channel_can_use_it() {
    let mut l = two_channels();
    assert!(l.lend(N, &[(A, 1_000_000), (B, 2_000_000)]).is_empty());
    assert_eq!(l.share(N, A), Some(10_000_000));
    assert_eq!(l.share(N, B), Some(10_000_000));
    // Not measured yet counts as needing its whole share.
    assert!(l.lend(N, &[]).is_empty());
}

#[test]
fn the_lender_takes_back_what_it_needs_and_the_borrower_shrinks() {
    let mut l = two_channels();
    l.lend(N, &[(A, 1_000_000), (B, 10_000_000)]);
    // A grows by one stream: it takes back as much at once (3.5 → 5.5).
    let changed = l.lend(N, &[(A, 3_000_000), (B, 16_500_000)]);
    assert_eq!(changed, vec![(A, 5_500_000), (B, 14_500_000)]);
    // A a little smaller again: within its band, nothing moves.
    assert!(l.lend(N, &[(A, 2_000_000), (B, 14_500_000)]).is_empty());
    // A near its base: it has all of it back, B its own base only.
    let changed = l.lend(N, &[(A, 8_000_000), (B, 14_500_000)]);
    assert_eq!(changed, vec![(A, 10_000_000), (B, 10_000_000)]);
    assert_eq!(l.booked(N), 20_000_000);
    // A empties: it lends again, once it holds two reserves above its use.
    let changed = l.lend(N, &[(A, 0), (B, 10_000_000)]);
    assert_eq!(changed, vec![(A, 2_500_000), (B, 17_500_000)]);
}

#[test]
fn a_channel_joining_a_lending_node_claims_its_base_and_shares_the_loan() {
    let mut l = two_channels();
    l.lend(N, &[(A, 1_000_000), (B, 10_000_000)]);
    let quoted = l.quote(N, C, 20_000_000, R);
    let g = l.acquire(N, C, 20_000_000, R).unwrap();
    assert_eq!(g.share_bps, quoted, "the quote is the grant");
    // Bases of 6.67 Mb/s; A keeps 3.5 (within its band); B and C split A's
    // spare of 3.17 Mb/s.
    assert_eq!(l.share(N, A), Some(3_500_000));
    assert_eq!(l.base_share(N, C), Some(6_666_666));
    assert_eq!(g.share_bps, 6_666_666 + 1_583_333);
    assert_eq!(g.changed, vec![(B, 6_666_666 + 1_583_333)]);
    assert!(l.booked(N) <= 20_000_000);
    // C leaves: B is the only borrower again.
    let grown = l.release(N, C);
    assert_eq!(grown, vec![(B, 16_500_000)]);
}

#[test]
fn lending_off_keeps_the_static_split() {
    let mut l = UplinkLedger::new(10).with_lending(false);
    l.acquire(N, A, 20_000_000, R).unwrap();
    l.acquire(N, B, 20_000_000, R).unwrap();
    assert!(l.lend(N, &[(A, 0), (B, 10_000_000)]).is_empty());
    assert_eq!(l.share(N, A), Some(10_000_000));
    assert_eq!(l.share(N, B), Some(10_000_000));
}

#[derive(Clone, Debug)]
enum Step {
    Book(Booking),
    /// The channel now uses this part (per mille) of its share.
    Use {
        node: u32,
        channel: u32,
        per_mille: u64,
    },
    Lend {
        node: u32,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => booking(4, 4, 1, [3, 1, 1]).prop_map(Step::Book),
        4 => (0..4u32, 0..4u32, 0..=1000u64)
            .prop_map(|(node, channel, per_mille)| Step::Use { node, channel, per_mille }),
        4 => (0..4u32).prop_map(|node| Step::Lend { node }),
    ]
}

/// Each channel's use is kept within its share, as its manager does when a
/// share shrinks (children re-homed).
fn clamp(l: &UplinkLedger, used: &mut BTreeMap<(u32, u32), u64>) {
    used.retain(|(n, c), u| match l.share(NodeId(*n), ChannelId(*c)) {
        Some(s) => {
            *u = (*u).min(s);
            true
        }
        None => false,
    });
}

proptest! {
    /// Whatever the order of joins, leaves, uses and checks: a node's shares,
    /// loans included, never add up to more than its uplink, so neither does
    /// what its channels use; right after a check every channel has at least
    /// what it uses plus its reserve, up to its base; a lone channel has the
    /// whole uplink.
    #[test]
    fn lending_never_over_books_over_random_steps(
        steps in proptest::collection::vec(step(), 1..120),
        lending in any::<bool>(),
    ) {
        let mut l = UplinkLedger::new(4).with_lending(lending);
        let mut used: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        let mut weights: BTreeMap<(u32, u32), u64> = BTreeMap::new();
        for s in steps {
            match s {
                Step::Book(b) => {
                    if let Some((node, channel, weight)) = apply(&mut l, b)? {
                        weights.insert((node, channel), weight);
                    }
                }
                Step::Use { node, channel, per_mille } => {
                    if let Some(s) = l.share(NodeId(node), ChannelId(channel)) {
                        let u = u128::from(s) * u128::from(per_mille) / 1000;
                        used.insert((node, channel), u64::try_from(u).unwrap());
                    }
                }
                Step::Lend { node } => {
                    let measured: Vec<(ChannelId, u64)> = l
                        .shares(NodeId(node))
                        .map(|(c, _)| (c, used.get(&(node, c.0)).copied().unwrap_or(0)))
                        .collect();
                    l.lend(NodeId(node), &measured);
                    for (c, u) in measured {
                        let base = l.base_share(NodeId(node), c).unwrap();
                        let share = l.share(NodeId(node), c).unwrap();
                        let reserve = weights[&(node, c.0)].max(base / RESERVE_DIVISOR);
                        if lending {
                            // What it uses, and its reserve, is never lent away.
                            let kept = u.saturating_add(reserve).min(base);
                            prop_assert!(share >= kept, "{share} < min({u} + {reserve}, {base})");
                        } else {
                            prop_assert_eq!(share, base);
                        }
                    }
                }
            }
            clamp(&l, &mut used);
            for n in 0..4u32 {
                let id = NodeId(n);
                let shares: Vec<_> = l.shares(id).collect();
                if let Some(d) = l.declared(id) {
                    prop_assert!(l.booked(id) <= d, "{} booked of {}", l.booked(id), d);
                    let in_use: u64 = shares.iter().map(|(c, _)| used.get(&(n, c.0)).copied().unwrap_or(0)).sum();
                    prop_assert!(in_use <= d);
                    if shares.len() == 1 {
                        prop_assert_eq!(shares[0].1, d);
                    }
                    let bases: u64 = shares.iter().map(|(c, _)| l.base_share(id, *c).unwrap()).sum();
                    prop_assert!(l.booked(id) <= bases, "loans only move what the bases hold");
                } else {
                    prop_assert!(shares.is_empty());
                }
            }
        }
    }
}
