//! The once-per-virtual-second sample (X5; relay counts for V4/V5/V6/V7): walk the
//! viewers' paths, count active relays per tier from the coordinator's channel
//! state, compute the relays' lower bound and the capacity bound, and append one
//! row to the timeline.
//!
//! Lower bound (`relays_lower_bound`): Σ over tiers of ceil(children / capacity),
//! children being the loads of the tier's active relays (viewers in the bottom
//! tier, child-relay links above), and at least the relays a path needs (1 in the
//! bottom tier, `min(parents_per_relay, live relays)` above) while anyone watches.
//! The cascade variant starts from the viewers alone and derives each tier above
//! from the bound of the tier below (what an ideal packing would need). The
//! regional variant sums the bound over regions, each region's tiers on their own —
//! the fair bound when relays serve and feed only their own region (V11).

use crate::scenario::DataPlane;
use crate::world::{Role, Simulation};
use std::collections::BTreeMap;

/// One timeline row.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub t_s: u64,
    pub viewers: u64,
    pub served: u64,
    pub joining: u64,
    pub starving: u64,
    pub relays_per_tier: Vec<u32>,
    pub active_relays: u32,
    pub lower_bound: u32,
    pub continuity: f64,
    pub origin_upload_bps: f64,
}

#[derive(Default)]
pub(crate) struct Census {
    pub per_tier: BTreeMap<u8, u32>,
    pub active: u32,
    pub lower_bound: u32,
    pub lower_bound_cascade: u32,
    /// The literal bound summed over regions (each region's tiers on their own, V11).
    pub lower_bound_regional: u32,
}

impl Simulation {
    pub(crate) fn sample(&mut self) {
        let dt = 1.0;
        let walk = self.walk_paths(dt);
        self.checker
            .check_classification(self.now, &walk, self.metrics.watching);
        self.check_overlay_books();
        self.sample_caps();
        self.flaky_sample();
        self.metrics.starving_viewer_samples += walk.starving;
        let (continuity, origin_bps) = match self.sc.data_plane {
            DataPlane::Rate => (
                if walk.expected > 0.0 {
                    walk.delivered / walk.expected
                } else {
                    1.0
                },
                {
                    // The walk's flows are what the origin sends in this second.
                    let k = (self.now / 1_000_000).saturating_sub(1);
                    self.origin_sent.sent(
                        k * 1_000_000,
                        (k + 1) * 1_000_000,
                        walk.origin_bytes as u64,
                    );
                    self.origin_sent.second(k) * 8.0 / dt
                },
            ),
            DataPlane::Blocks => {
                let per = self.ingest.in_sample.max(1) as f64;
                let (mut sum, mut n) = (0.0, 0u64);
                for v in self.viewers.iter_mut() {
                    if v.watching() && v.first_at != crate::viewer::NONE {
                        sum += (v.recv_in_sample as f64 / per).min(1.0);
                        n += 1;
                    }
                    v.recv_in_sample = 0;
                }
                self.ingest.in_sample = 0;
                // What the origin's uplink sent in the second now ending.
                let k = (self.now / 1_000_000).saturating_sub(1);
                (
                    if n > 0 { sum / n as f64 } else { 1.0 },
                    self.origin_sent.second(k) * 8.0 / dt,
                )
            }
        };
        let census = self.census();
        let bound = self.capacity_bound(walk.watching, census.active);
        self.ledger.bound(
            self.now / 1_000_000,
            bound,
            self.sc.stream.rate_kbps as f64 * 1000.0,
        );
        self.check_origin_second(origin_bps);
        self.metrics.on_sample(
            self.now,
            self.sc.steady_from_us(),
            &census,
            bound,
            walk.watching,
        );
        let tiers: Vec<u32> = self
            .tier_caps
            .keys()
            .map(|t| census.per_tier.get(t).copied().unwrap_or(0))
            .collect();
        self.metrics.timeline.push(Row {
            t_s: self.now / 1_000_000,
            viewers: walk.watching,
            served: walk.served,
            joining: walk.joining,
            starving: walk.starving,
            relays_per_tier: tiers,
            active_relays: census.active,
            lower_bound: census.lower_bound,
            continuity,
            origin_upload_bps: origin_bps,
        });
        self.net.prune(self.now);
    }

    /// Active relays per tier and the lower bounds, from the coordinator's channel state.
    pub(crate) fn census(&self) -> Census {
        let mut c = Census::default();
        let Some(m) = self.coord.channel_by_name(&self.sc.stream.channel) else {
            return c;
        };
        // Loads of active relays and live relays, per (region, tier).
        let mut load: BTreeMap<(u16, u8), u64> = BTreeMap::new();
        for (n, a) in &m.active {
            *c.per_tier.entry(a.tier).or_insert(0) += 1;
            c.active += 1;
            let l = self.node(*n).map_or(0, |x| x.machine_load()) as u64;
            *load.entry((self.net.region_of(n.0), a.tier)).or_insert(0) += l;
        }
        let mut alive: BTreeMap<(u16, u8), u32> = BTreeMap::new();
        for id in 1..self.first_viewer {
            if self.role(id) == Role::Relay && self.is_alive(id) {
                let t = self.sc.node_classes[self.slots[id as usize].group as usize].tier;
                *alive.entry((self.net.region_of(id), t)).or_insert(0) += 1;
            }
        }
        let merge = |m: &BTreeMap<(u16, u8), u64>, r: Option<u16>| -> BTreeMap<u8, u64> {
            let mut out = BTreeMap::new();
            for ((reg, t), v) in m {
                if r.is_none_or(|x| x == *reg) {
                    *out.entry(*t).or_insert(0) += v;
                }
            }
            out
        };
        let alive_u64: BTreeMap<(u16, u8), u64> =
            alive.iter().map(|(k, v)| (*k, *v as u64)).collect();
        let anyone = self.metrics.watching > 0;
        let (lb, cascade) = self.bound(&merge(&load, None), &merge(&alive_u64, None), anyone);
        c.lower_bound = lb;
        c.lower_bound_cascade = cascade;
        for r in 0..self.net.regions().len() as u16 {
            let l = merge(&load, Some(r));
            let a = merge(&alive_u64, Some(r));
            let bottom = a.keys().last().copied();
            let viewers_here = bottom.is_some_and(|b| l.get(&b).copied().unwrap_or(0) > 0);
            c.lower_bound_regional += self.bound(&l, &a, viewers_here).0;
        }
        c
    }

    /// The literal and cascade lower bounds over one set of tiers (`load` and `alive`
    /// per tier); `anyone`: someone watches, so a path is needed.
    fn bound(
        &self,
        load: &BTreeMap<u8, u64>,
        alive: &BTreeMap<u8, u64>,
        anyone: bool,
    ) -> (u32, u32) {
        let Some(bottom) = alive.keys().last().copied() else {
            return (0, 0);
        };
        let ppr = self.sc.strategy.parents_per_relay as u64;
        let cap = |t: u8| self.tier_caps.get(&t).copied().unwrap_or(1).max(1) as u64;
        let mut literal = 0u64;
        for (t, n_alive) in alive {
            let need = match (anyone, *t == bottom) {
                (false, _) => 0,
                (true, true) => 1,
                (true, false) => ppr.min(*n_alive),
            };
            let children = load.get(t).copied().unwrap_or(0);
            literal += children.div_ceil(cap(*t)).max(need);
        }
        // Cascade: the viewers in the bottom tier, then each tier above from the one below.
        let viewers = load.get(&bottom).copied().unwrap_or(0);
        let mut below = if viewers > 0 {
            viewers.div_ceil(cap(bottom)).max(1)
        } else {
            0
        };
        let mut cascade = below;
        for (t, n_alive) in alive.iter().rev().skip(1) {
            let k = ppr.min(*n_alive);
            let links = below * k;
            below = if links > 0 {
                links.div_ceil(cap(*t)).max(k)
            } else {
                0
            };
            cascade += below;
        }
        (literal as u32, cascade as u32)
    }

    /// min(u_s, (u_s + Σ u_i) / N): u_s the origin's uplink, u_i the live relays' and peers',
    /// N the receivers (watching viewers and active relays), in bit/s.
    fn capacity_bound(&self, watching: u64, active: u32) -> Option<f64> {
        let n = watching + active as u64;
        if watching == 0 || n == 0 {
            return None;
        }
        let us = self.net.uplink_kbps(self.origin) as f64 * 1000.0;
        let sum: f64 = (1..self.first_viewer)
            .filter(|i| self.role(*i) == Role::Relay && self.is_alive(*i))
            .map(|i| self.net.uplink_kbps(i) as f64 * 1000.0)
            .sum::<f64>()
            + self.metrics.peer_uplink_kbps_live.max(0.0) * 1000.0;
        Some(us.min((us + sum) / n as f64))
    }
}
