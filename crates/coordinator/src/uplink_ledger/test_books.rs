//! Test fixture of the ledger's property tests (C9): random bookings — a node
//! asks for a channel's share, gives one back, or is forgotten — and their
//! application, checked against the quote. Shared by `tests.rs` and
//! `lending_tests.rs`.

use super::ledger::UplinkLedger;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tiercast_proto::{ChannelId, NodeId};

#[derive(Clone, Debug)]
pub(super) enum Booking {
    Acquire {
        node: u32,
        channel: u32,
        declared: u64,
        weight: u64,
    },
    Release {
        node: u32,
        channel: u32,
    },
    Forget {
        node: u32,
    },
}

/// Bookings of nodes `0..nodes` on channels `0..channels`, weights from
/// `min_weight`; acquire, release and forget drawn `odds` to one another.
pub(super) fn booking(
    nodes: u32,
    channels: u32,
    min_weight: u64,
    odds: [u32; 3],
) -> impl Strategy<Value = Booking> {
    prop_oneof![
        odds[0] => (0..nodes, 0..channels, 0..50_000_000u64, min_weight..8_000_000u64).prop_map(
            |(node, channel, declared, weight)| Booking::Acquire { node, channel, declared, weight }
        ),
        odds[1] => (0..nodes, 0..channels).prop_map(|(node, channel)| Booking::Release { node, channel }),
        odds[2] => (0..nodes).prop_map(|node| Booking::Forget { node }),
    ]
}

/// Applies `b` to `l`; a grant is what was quoted, a refusal was quoted 0.
/// Returns `(node, channel, weight)` of a granted acquire.
pub(super) fn apply(
    l: &mut UplinkLedger,
    b: Booking,
) -> Result<Option<(u32, u32, u64)>, TestCaseError> {
    match b {
        Booking::Acquire {
            node,
            channel,
            declared,
            weight,
        } => {
            let quoted = l.quote(NodeId(node), ChannelId(channel), declared, weight);
            match l.acquire(NodeId(node), ChannelId(channel), declared, weight) {
                Ok(g) => {
                    prop_assert_eq!(g.share_bps, quoted);
                    return Ok(Some((node, channel, weight)));
                }
                Err(_) => prop_assert_eq!(quoted, 0),
            }
        }
        Booking::Release { node, channel } => {
            l.release(NodeId(node), ChannelId(channel));
        }
        Booking::Forget { node } => l.forget(NodeId(node)),
    }
    Ok(None)
}
