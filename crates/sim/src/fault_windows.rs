//! Each fault's own window (X5, X6; V10/V11 faults; issue 10's honest metrics): for
//! every crash, leave, link cut and partition, the continuity *during* it (from its
//! start to its end; a crash or a leave has no duration) and *after* it (from its end
//! for [`AFTER_WINDOW_S`]), over the ledger's slots whose blocks (or samples) fall in
//! the window; and its orphans: the nodes (relays, peers, viewers) that were
//! receiving from a parent the fault took away — a crashed or departed node, or one
//! now across a cut link or a partition. Also kept here: the peers on the overlay's
//! top level right after the first crash or leave, the members the top level's
//! after-fault figures are counted over.
//!
//! For a partition also its re-homing (D7, X5; issue 10, Must show 2): the nodes
//! that were cut off carrying the channel (relays, viewers, peers in the cut
//! regions) are checked every [`REHOME_CHECK_MS`] after the heal until each is
//! registered with the coordinator and has received a block since the heal (a
//! relay left with nobody to feed, which takes no stream, once registered); the
//! longest such wait is `rehomed_max_ms`, and those still waiting
//! [`AFTER_WINDOW_S`] after the heal are `not_rehomed` (nodes that left meanwhile
//! are not counted).

use crate::scenario::{DataPlane, Fault};
use crate::world::Simulation;
use serde::Serialize;
use tiercast_node::parents::ParentState;

/// Length of the window after a fault's end (s).
pub const AFTER_WINDOW_S: u64 = 10;

/// How often a healed partition's cut-off nodes are checked for re-homing (ms).
pub const REHOME_CHECK_MS: u64 = 50;

/// A partition's cut-off nodes after its heal, until each is re-homed.
#[derive(Clone, Debug, Default)]
struct Rehoming {
    healed_at: Option<u64>,
    waiting: Vec<u32>,
    max_us: u64,
    rehomed: u64,
}

#[derive(Clone, Debug)]
struct Opened {
    kind: &'static str,
    start_us: u64,
    end_us: u64,
    orphans: u64,
    /// Partitions: the nodes cut off carrying the channel, then their re-homing.
    rehoming: Option<Rehoming>,
}

#[derive(Default)]
pub(crate) struct FaultWindows {
    opened: Vec<(usize, Opened)>,
    /// Top-level peers alive right after the first crash or leave.
    pub top_at_fault: Option<Vec<u32>>,
}

/// One fault's figures in metrics.json.
#[derive(Clone, Debug, Serialize)]
pub struct FaultWindow {
    /// Index in the scenario's `[[faults]]`.
    pub fault: usize,
    pub kind: &'static str,
    pub start_s: f64,
    pub end_s: f64,
    pub continuity_during: Option<f64>,
    pub continuity_after: Option<f64>,
    pub orphans: u64,
    /// Partitions: nodes cut off carrying the channel.
    pub cut_off: Option<u64>,
    /// Partitions: from the heal until the last cut-off node was registered and fed
    /// again (ms; over those re-homed within the after window).
    pub rehomed_max_ms: Option<u64>,
    /// Partitions: cut-off nodes not registered and fed again by the window's end.
    pub not_rehomed: Option<u64>,
}

fn kind(f: &Fault) -> (&'static str, Option<f64>) {
    match f {
        Fault::Crash { .. } => ("crash", None),
        Fault::Leave { .. } => ("leave", None),
        Fault::LinkCut { until_s, .. } => ("link_cut", *until_s),
        Fault::Partition { until_s, .. } => ("partition", *until_s),
        Fault::Flaky { until_s, .. } => ("flaky", *until_s),
        Fault::Tamper { until_s, .. } => ("tamper", *until_s),
        Fault::Restart { at_s, down_s, .. } => ("restart", Some(at_s + down_s)),
        Fault::CoordinatorRestart { at_s, down_s } => ("coordinator_restart", Some(at_s + down_s)),
    }
}

impl Simulation {
    /// Counts nodes receiving from a connected parent for which `lost(child, parent)`.
    fn count_orphans(&self, lost: impl Fn(u32, u32) -> bool) -> u64 {
        let Some(ch) = self.channel else { return 0 };
        (1..self.slots.len() as u32)
            .filter(|id| {
                self.slots[*id as usize]
                    .node
                    .as_ref()
                    .and_then(|n| n.channel(ch))
                    .is_some_and(|c| {
                        c.parents
                            .in_state(ParentState::Connected)
                            .iter()
                            .any(|p| lost(*id, p.0))
                    })
            })
            .count() as u64
    }

    /// Fault `i` begins. `failing`: the nodes a crash or leave takes (called before
    /// they go); for a cut or partition, call after the links are down.
    pub(crate) fn fault_opened(&mut self, i: usize, failing: Option<&[u32]>) {
        let f = &self.sc.faults[i];
        let (kind, until) = kind(f);
        let start_us = self.now;
        let end_us = until.map_or(start_us, |u| ((u * 1e6).round() as u64).max(start_us));
        let orphans = match failing {
            Some(ids) => self.count_orphans(|c, p| ids.contains(&p) && !ids.contains(&c)),
            None => self.count_orphans(|c, p| self.net.link_up(c, p).is_err()),
        };
        let rehoming = (kind == "partition").then(|| Rehoming {
            waiting: self.cut_off_nodes(),
            ..Rehoming::default()
        });
        self.fault_windows.opened.push((
            i,
            Opened {
                kind,
                start_us,
                end_us,
                orphans,
                rehoming,
            },
        ));
    }

    /// Nodes carrying the channel that cannot reach the coordinator now.
    fn cut_off_nodes(&self) -> Vec<u32> {
        let Some(ch) = self.channel else {
            return Vec::new();
        };
        (1..self.slots.len() as u32)
            .filter(|id| *id != self.origin && self.net.link_up(*id, 0).is_err())
            .filter(|id| {
                self.slots[*id as usize].node.as_ref().is_some_and(|n| {
                    n.channel(ch).is_some() || n.config().role == tiercast_proto::NodeRole::Viewer
                })
            })
            .collect()
    }

    /// Fault `i`'s cut-off nodes re-homed so far (called at the heal, then every
    /// [`REHOME_CHECK_MS`]); true while some are still waiting within the window.
    pub(crate) fn rehome_check(&mut self, i: usize) -> bool {
        let now = self.now;
        let ch = self.channel;
        let Some(pos) = self.fault_windows.opened.iter().position(|(f, _)| *f == i) else {
            return false;
        };
        let Some(mut r) = self.fault_windows.opened[pos].1.rehoming.take() else {
            return false;
        };
        let healed = *r.healed_at.get_or_insert(now);
        let waiting = std::mem::take(&mut r.waiting);
        for id in waiting {
            let Some(n) = self.slots[id as usize].node.as_ref() else {
                continue; // left meanwhile
            };
            let chan = ch.and_then(|c| n.channel(c));
            let fed = chan
                .and_then(|c| c.newest_block_at())
                .is_some_and(|t| t.0 >= healed);
            // A relay left with nobody to feed takes no stream: registered is enough.
            let wants_nothing = n.config().role == tiercast_proto::NodeRole::Relay
                && chan.is_none_or(|c| !c.logged_in && c.children.load() == 0);
            if n.is_registered() && (fed || wants_nothing) {
                r.rehomed += 1;
                r.max_us = r.max_us.max(now - healed);
            } else {
                r.waiting.push(id);
            }
        }
        let again = !r.waiting.is_empty() && now < healed + AFTER_WINDOW_S * 1_000_000;
        self.fault_windows.opened[pos].1.rehoming = Some(r);
        again
    }

    /// After a crash or leave took its nodes: the first one keeps the top level.
    pub(crate) fn fault_applied(&mut self) {
        if self.fault_windows.top_at_fault.is_some() || self.ingest.fault_seq.is_none() {
            return;
        }
        let top = self
            .channel
            .and_then(|c| self.coord.peer_overlay(c))
            .map(|o| {
                o.members
                    .values()
                    .filter(|m| m.top && m.kind == tiercast_coordinator::peers::MemberKind::Peer)
                    .map(|m| m.info.id.0)
                    .filter(|id| *id >= self.first_viewer && self.is_alive(*id))
                    .collect()
            })
            .unwrap_or_default();
        self.fault_windows.top_at_fault = Some(top);
    }

    /// Ledger slots of `[a, b)` µs: block seqs cut then, or the samples in `(a, b]`.
    pub(crate) fn slots_of(&self, a: u64, b: u64) -> (u64, u64) {
        match self.sc.data_plane {
            DataPlane::Blocks => (self.ingest.first_seq_from(a), self.ingest.first_seq_from(b)),
            DataPlane::Rate => (a / 1_000_000 + 1, b / 1_000_000 + 1),
        }
    }

    /// On-time continuity over `[a, b)` µs from the ledger (settled): `None` when
    /// nothing was expected then. Usable for any window (a second, a recomputation).
    pub(crate) fn continuity_in(&self, a: u64, b: u64) -> Option<f64> {
        self.region_continuity_in(None, a, b)
    }

    /// The same for one region (`None`: all of them).
    pub(crate) fn region_continuity_in(
        &self,
        region: Option<usize>,
        a: u64,
        b: u64,
    ) -> Option<f64> {
        if b <= a {
            return None;
        }
        let (e, g) = self.ledger.sums(region, Some(self.slots_of(a, b)));
        (e > 0.0).then(|| g / e)
    }

    /// Every fault's window (the ledger settled).
    pub(crate) fn fault_window_metrics(&self) -> Vec<FaultWindow> {
        let end = self.end;
        self.fault_windows
            .opened
            .iter()
            .map(|(i, o)| {
                let after_end = (o.end_us + AFTER_WINDOW_S * 1_000_000).min(end);
                FaultWindow {
                    fault: *i,
                    kind: o.kind,
                    start_s: o.start_us as f64 / 1e6,
                    end_s: o.end_us as f64 / 1e6,
                    continuity_during: self.continuity_in(o.start_us, o.end_us.min(end)),
                    continuity_after: self.continuity_in(o.end_us, after_end),
                    orphans: o.orphans,
                    cut_off: o
                        .rehoming
                        .as_ref()
                        .map(|r| r.rehomed + r.waiting.len() as u64),
                    rehomed_max_ms: o.rehoming.as_ref().map(|r| r.max_us / 1000),
                    not_rehomed: o.rehoming.as_ref().map(|r| r.waiting.len() as u64),
                }
            })
            .collect()
    }
}
