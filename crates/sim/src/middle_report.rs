//! The middle level's figures per region for metrics.json (D2, D5, D6): the
//! algorithm the coordinator chose for each level, the cluster's size, its
//! redundancy n and the loss it was chosen from, groups rebuilt from recovery
//! shards, and (blocks mode) how many blocks the middle and bottom peers of the
//! region missed.

use crate::scenario::DataPlane;
use crate::world::Simulation;
use serde::Serialize;

/// One region's middle level.
#[derive(Clone, Debug, Serialize)]
pub struct RegionMiddle {
    pub region: String,
    /// The algorithm of the top, middle and bottom levels (D6).
    pub algorithms: [String; 3],
    pub middle_members: u64,
    pub bottom_members: u64,
    /// Recovery substreams per group of k (0: plain multi-tree).
    pub redundancy_n: u8,
    /// Shard loss the last choice of n was made from.
    pub measured_loss: Option<f64>,
    pub n_changes: u64,
    /// Groups the region's middle members needed recovery shards for (heartbeats).
    pub groups_rebuilt: u64,
    /// Blocks mode: blocks expected and missed (not on time) at the region's
    /// middle and bottom peers alive at the end.
    pub middle_blocks_expected: u64,
    pub middle_blocks_missed: u64,
    pub bottom_blocks_expected: u64,
    pub bottom_blocks_missed: u64,
}

pub(crate) fn middle_metrics(sim: &Simulation) -> Vec<RegionMiddle> {
    let Some(o) = sim.channel.and_then(|c| sim.coord.peer_overlay(c)) else {
        return Vec::new();
    };
    let cfg = sim.sc.peer_config();
    let blocks = sim.sc.data_plane == DataPlane::Blocks;
    let mut out = Vec::new();
    for (region, plan) in &o.plans {
        let algos = o.algorithms(*region, &cfg).map(|a| a.to_string());
        let mut r = RegionMiddle {
            region: sim.coord.registry().region_name(*region).to_string(),
            algorithms: algos,
            middle_members: 0,
            bottom_members: 0,
            redundancy_n: plan.n,
            measured_loss: plan.loss,
            n_changes: plan.changes,
            groups_rebuilt: plan.groups_rebuilt,
            middle_blocks_expected: 0,
            middle_blocks_missed: 0,
            bottom_blocks_expected: 0,
            bottom_blocks_missed: 0,
        };
        for m in o.members.values().filter(|m| m.region == *region && !m.top) {
            let (count, exp, missed) = if m.middle {
                (
                    &mut r.middle_members,
                    &mut r.middle_blocks_expected,
                    &mut r.middle_blocks_missed,
                )
            } else {
                (
                    &mut r.bottom_members,
                    &mut r.bottom_blocks_expected,
                    &mut r.bottom_blocks_missed,
                )
            };
            *count += 1;
            let Some(vi) = m
                .info
                .id
                .0
                .checked_sub(sim.first_viewer)
                .filter(|i| (*i as usize) < sim.viewers.len())
            else {
                continue;
            };
            if blocks {
                let t = sim.block_tally(vi as usize, sim.end, None);
                *exp += t.expected;
                *missed += t.expected - t.received;
            }
        }
        out.push(r);
    }
    out
}
