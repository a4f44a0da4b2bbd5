//! Who the peer overlay carries at the end of a run against the least it could
//! leave out (C6): the watching peers that are not members (turned away and
//! waiting for room, or ejected), and seed 002's exact bound for the same
//! peers — the fewest that must go so the rest is feasible, lowest uplink first
//! ([`tiercast_coordinator::ejection::eject_exactly_until_feasible`]), with the
//! top level's spare slots as the source. Admission at the join and swaps decide
//! who is out without a recomputation's ejection, so its summed bound cannot
//! judge them; this one can.

use crate::world::Simulation;
use tiercast_coordinator::ejection::eject_exactly_until_feasible;
use tiercast_coordinator::multitree::PeerCapacity;
use tiercast_proto::NodeId;

/// (watching peers not carried, the least that had to be left out).
pub(crate) fn carried_at_end(sim: &Simulation) -> Option<(u64, u64)> {
    let o = sim.channel.and_then(|c| sim.coord.peer_overlay(c))?;
    let k = u64::from(o.k);
    let source_slots: u64 = o
        .top_order
        .iter()
        .filter_map(|id| o.members.get(id))
        .map(|m| {
            let push = o.top_children.get(&m.info.id).map_or(0, |s| s.len() as u64);
            u64::from(m.slots).saturating_sub(push * k)
        })
        .sum();
    let sub_rate = (o.rate_bps / k.max(1)).max(1);
    let mut out = 0u64;
    let mut bottom = Vec::new();
    for (vi, v) in sim.viewers.iter().enumerate() {
        let id = NodeId(sim.first_viewer + vi as u32);
        // (Everyone's end is set to the run's end before the report.)
        if !v.watching() && v.end_at < sim.end {
            continue;
        }
        let member = o.members.get(&id);
        if member.is_none() {
            out += 1;
        }
        if member.is_some_and(|m| m.top) {
            continue;
        }
        bottom.push(PeerCapacity {
            id,
            uplink_bps: o.usable(u64::from(sim.net.uplink_kbps(id.0)) * 1000),
            priority: 0,
            protected: false,
        });
    }
    let bound = eject_exactly_until_feasible(
        &bottom,
        source_slots * sub_rate,
        o.rate_bps,
        usize::from(o.k),
    )
    .map_or(0, |e| e.ejected.len() as u64);
    Some((out, bound))
}
