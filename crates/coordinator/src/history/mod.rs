//! The history store (C1's history database; issue 11 item 5): what the
//! coordinator remembers of every node it has known — sessions, availability
//! (time alive over time known), uplink achieved against declared, and how often
//! each parent link stalled — and a ranking of candidate parents from it, for the
//! parent selection (C4) and the choice of preferred nodes (D1): each peer
//! overlay member carries its [`grade::Grade`], refreshed from here by
//! `peers/history_rank.rs`.
//!
//! Sans-IO: the coordinator feeds it (registration, heartbeat, loss); the driver
//! persists it through [`History::export`] / [`History::import`]. Bounded: at most
//! `max_nodes` nodes (the least recently seen evicted), at most `max_parents`
//! parent links per node (the least recently reported evicted).
//!
//! - [`record`] — one node's history and its figures.
//! - [`heartbeat`] — two consecutive heartbeats read: uplink achieved, parent stalls.
//! - [`rank`] — a score per node and candidates ranked by it.
//! - [`grade`] — a node's record in one byte (bad, neutral, good) for selection.
//! - [`traffic`] — bytes the servers sent so far in each period (traffic budgets).
//! - [`codec`] — records encoded for the store, decoded without trusting the bytes.

pub mod codec;
pub mod grade;
pub mod heartbeat;
pub mod parent_links;
pub mod rank;
pub mod record;
pub mod traffic;

use crate::client_manager::last_report::LastReport;
use crate::node_hash::NodeHashMap;
use record::NodeHistory;
use std::collections::BTreeSet;
use tiercast_proto::{Heartbeat, NodeId, Timestamp};

/// The eviction order keeps sightings to this granularity (10 s), so a node's
/// heartbeats move it in the order only once per bucket, not every time.
pub const SEEN_BUCKET_US: u64 = 10_000_000;

fn bucket(t: Timestamp) -> u64 {
    t.0 / SEEN_BUCKET_US
}

/// Bounds of the history store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Nodes remembered at most; the least recently seen is forgotten first.
    pub max_nodes: usize,
    /// Parent links remembered per node at most.
    pub max_parents: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            max_nodes: 100_000,
            max_parents: 16,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct History {
    cfg: HistoryConfig,
    /// Hashed: each heartbeat looks up its sender and its parents here (issue
    /// 12); nothing reads it in key order but [`History::iter`], which sorts.
    nodes: NodeHashMap<NodeHistory>,
    /// (the [`SEEN_BUCKET_US`] of a sighting, node): the eviction order, one
    /// entry per node, never later than its last sighting (see `evict_one`).
    by_last_seen: BTreeSet<(u64, NodeId)>,
    /// Nodes forgotten to stay within `max_nodes`.
    pub evicted: u64,
    /// What the operator's servers sent so far in each period ([`traffic`]).
    servers: traffic::TrafficMeter,
    /// Grades the last `heard` changed ([`History::regraded`]); cleared by each.
    regraded: Vec<(NodeId, grade::Grade)>,
    /// The parent links of the heartbeat being read (a buffer kept between them).
    parent_links: Vec<(NodeId, bool)>,
}

impl History {
    pub fn new(cfg: HistoryConfig) -> Self {
        History {
            cfg,
            ..History::default()
        }
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.cfg
    }

    pub fn get(&self, id: NodeId) -> Option<&NodeHistory> {
        self.nodes.get(&id)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every record by ascending id (sorts the ids: for the store and reports,
    /// not a hot path).
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &NodeHistory)> {
        let mut all: Vec<(&NodeId, &NodeHistory)> = self.nodes.iter().collect();
        all.sort_unstable_by_key(|(id, _)| **id);
        all.into_iter()
    }

    /// A node registered (a new session), declaring `uplink_kbps` (0: none).
    pub fn registered(&mut self, now: Timestamp, id: NodeId, uplink_kbps: u32) {
        self.entry(now, id).open_session(now, uplink_kbps);
    }

    /// A node was lost (timeout or link down): its session closes.
    pub fn lost(&mut self, now: Timestamp, id: NodeId) {
        if self.nodes.contains_key(&id) {
            self.entry(now, id).close_session(now);
        }
    }

    /// A heartbeat `hb` of a registered node, `prev` its previous one, for a
    /// stream of `stream_kbps`. Returns the uplink it achieved over the interval
    /// (kbit/s), when there was a previous report to read it against.
    pub fn heard(
        &mut self,
        now: Timestamp,
        prev: Option<&LastReport>,
        hb: &Heartbeat,
        stream_kbps: u32,
    ) -> Option<f64> {
        self.regraded.clear();
        let id = hb.node;
        let mut parent_links = std::mem::take(&mut self.parent_links);
        let achieved = self.read_heard(now, id, prev, hb, &mut parent_links, stream_kbps);
        self.parent_links = parent_links;
        achieved
    }

    /// [`History::heard`] with the buffer of the reading's parent links.
    fn read_heard(
        &mut self,
        now: Timestamp,
        id: NodeId,
        prev: Option<&LastReport>,
        hb: &Heartbeat,
        parent_links: &mut Vec<(NodeId, bool)>,
        stream_kbps: u32,
    ) -> Option<f64> {
        // Only registered nodes have a history.
        let h = self.nodes.get_mut(&id)?;
        let reading = heartbeat::read_into(prev, hb, stream_kbps, parent_links);
        let max_parents = self.cfg.max_parents;
        // Seen now; its place in the eviction order is brought up to date only
        // when an eviction reaches it (`evict_one`).
        h.last_seen = now;
        let achieved = reading?;
        let before = grade::grade_of(h, now, stream_kbps);
        h.uplink_sample(achieved);
        for (parent, stalled) in parent_links.iter() {
            let link = h.parents.get_or_default(*parent);
            link.reports = link.reports.saturating_add(1);
            link.stalls = link.stalls.saturating_add(u32::from(*stalled));
            link.last_report = now;
            if h.parents.len() > max_parents {
                let oldest = h
                    .parents
                    .iter()
                    .min_by_key(|(p, l)| (l.last_report, **p))
                    .map(|(p, _)| *p);
                if let Some(p) = oldest {
                    h.parents.remove(&p);
                }
            }
        }
        let after = grade::grade_of(h, now, stream_kbps);
        if after != before {
            self.regraded.push((id, after));
        }
        // The parent's own record: what its children saw of it (known parents only).
        for &(parent, stalled) in parent_links.iter() {
            if let Some(p) = self.nodes.get_mut(&parent) {
                let before = grade::grade_of(p, now, stream_kbps);
                p.fed_reports = p.fed_reports.saturating_add(1);
                p.fed_stalls = p.fed_stalls.saturating_add(u64::from(stalled));
                let after = grade::grade_of(p, now, stream_kbps);
                if after != before {
                    self.regraded.push((parent, after));
                }
            }
        }
        Some(achieved)
    }

    /// A server sent about `bytes` by Unix time `unix_s` (traffic budgets, C3).
    pub fn servers_sent(&mut self, unix_s: u64, bytes: f64) {
        self.servers.add(unix_s, bytes);
    }

    /// What the servers sent so far in each period.
    pub fn server_traffic(&self) -> &traffic::TrafficMeter {
        &self.servers
    }

    /// Every record, open periods closed at `now`, for the store.
    pub fn export(&self, now: Timestamp) -> Vec<(NodeId, NodeHistory)> {
        self.iter().map(|(id, h)| (*id, h.closed_at(now))).collect()
    }

    /// Records kept before a restart (sessions closed; a node's next
    /// registration opens its next one); beyond `max_nodes`, the rest is left out.
    pub fn import(
        &mut self,
        now: Timestamp,
        records: impl IntoIterator<Item = (NodeId, NodeHistory)>,
    ) {
        for (id, mut h) in records {
            if self.nodes.contains_key(&id) {
                continue;
            }
            if self.nodes.len() >= self.cfg.max_nodes {
                break;
            }
            h.alive_since = None;
            h.known_since = None;
            h.last_seen = now;
            while h.parents.len() > self.cfg.max_parents {
                h.parents.pop_last();
            }
            self.by_last_seen.insert((bucket(now), id));
            self.nodes.insert(id, h);
        }
    }

    /// The node's record, created (evicting the least recently seen when full)
    /// and marked seen at `now`.
    fn entry(&mut self, now: Timestamp, id: NodeId) -> &mut NodeHistory {
        if !self.nodes.contains_key(&id) {
            while self.nodes.len() >= self.cfg.max_nodes.max(1) {
                if !self.evict_one() {
                    break;
                }
            }
            self.by_last_seen.insert((bucket(now), id));
        }
        let h = self.nodes.entry(id).or_default();
        h.last_seen = now;
        h
    }

    /// Forgets the least recently seen node (by its [`SEEN_BUCKET_US`] bucket,
    /// then id); `false` when there is none. The eviction order holds one entry
    /// per node, at the bucket it had when the entry was made: a node seen since
    /// is put back at its bucket now and the next entry is read. No entry is
    /// ever later than its node's bucket, so the first one whose bucket is
    /// current is the least recently seen of all — the node a set kept exactly
    /// up to date on every heartbeat would give, without two ordered-set
    /// operations per heartbeat.
    fn evict_one(&mut self) -> bool {
        while let Some((b, old)) = self.by_last_seen.pop_first() {
            let Some(h) = self.nodes.get(&old) else {
                continue;
            };
            let seen = bucket(h.last_seen);
            if seen > b {
                self.by_last_seen.insert((seen, old));
                continue;
            }
            self.nodes.remove(&old);
            self.evicted += 1;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests;
