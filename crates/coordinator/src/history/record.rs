//! One node's history (C1's history database, issue 11 item 5): its sessions,
//! time alive against time known (availability), uplink achieved against
//! declared, and, per parent it was fed by, how often that parent's link stalled
//! — the heartbeats carry no per-parent loss, only the last seq per parent, so a
//! stall (the parent's seq stood still while the node's stream went on) is the
//! loss this record counts. Durations are kept as totals so they survive a
//! coordinator restart; the open periods are process-local timestamps.

use serde::{Deserialize, Serialize};
use tiercast_proto::Timestamp;

/// Weight of a new uplink sample in the smoothed figure.
pub const UPLINK_SMOOTHING: f64 = 0.2;

/// A link as its child saw it: reports naming the parent, and stalled ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    /// Counts of heartbeats (4·10⁹ of them: centuries at one per 5 s), so 32
    /// bits: an entry takes 24 bytes, not 32, in every node's record (issue
    /// 12's memory per node). Their stored bytes are a `u64`'s (postcard
    /// varints), so records written before still read.
    pub reports: u32,
    pub stalls: u32,
    /// When last reported (process-local; not restored).
    #[serde(skip)]
    pub last_report: Timestamp,
}

impl LinkRecord {
    /// Stalled reports over reports (0 without reports).
    pub fn stall_rate(&self) -> f64 {
        if self.reports == 0 {
            0.0
        } else {
            self.stalls as f64 / self.reports as f64
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeHistory {
    /// Registrations (a re-registration after a loss is a new session).
    pub sessions: u32,
    /// Time alive in closed sessions (µs).
    pub alive_closed_us: u64,
    /// Time known (alive or not, while this coordinator ran) in closed periods (µs).
    pub known_closed_us: u64,
    /// The open session's start (process-local).
    #[serde(skip)]
    pub alive_since: Option<Timestamp>,
    /// The open known period's start (process-local).
    #[serde(skip)]
    pub known_since: Option<Timestamp>,
    /// Uplink the node declared at its last registration (kbit/s; 0: none).
    pub declared_uplink_kbps: u32,
    /// Uplink achieved, smoothed over heartbeats (kbit/s).
    pub achieved_uplink_kbps: f64,
    /// Heartbeats the achieved uplink was measured from.
    pub uplink_samples: u64,
    /// As a child: each parent's link (bounded by the history's `max_parents`).
    pub parents: super::parent_links::ParentLinks,
    /// As a parent: reports by its children, and stalled ones (all children).
    pub fed_reports: u64,
    pub fed_stalls: u64,
    /// When this node was last registered, heard or lost (process-local).
    #[serde(skip)]
    pub last_seen: Timestamp,
}

impl NodeHistory {
    pub fn alive_us(&self, now: Timestamp) -> u64 {
        self.alive_closed_us
            .saturating_add(self.alive_since.map_or(0, |t| now.saturating_since(t)))
    }

    pub fn known_us(&self, now: Timestamp) -> u64 {
        self.known_closed_us
            .saturating_add(self.known_since.map_or(0, |t| now.saturating_since(t)))
    }

    /// Time alive over time known, 0..=1 (1 for a node known for no time yet).
    pub fn availability(&self, now: Timestamp) -> f64 {
        let known = self.known_us(now);
        if known == 0 {
            return 1.0;
        }
        (self.alive_us(now) as f64 / known as f64).clamp(0.0, 1.0)
    }

    /// Achieved over declared uplink, 0..=1; `None` when nothing was declared
    /// or measured.
    pub fn uplink_ratio(&self) -> Option<f64> {
        if self.declared_uplink_kbps == 0 || self.uplink_samples == 0 {
            return None;
        }
        Some((self.achieved_uplink_kbps / f64::from(self.declared_uplink_kbps)).clamp(0.0, 1.0))
    }

    /// How often its children saw it stall, 0..=1.
    pub fn fed_stall_rate(&self) -> f64 {
        if self.fed_reports == 0 {
            0.0
        } else {
            (self.fed_stalls as f64 / self.fed_reports as f64).clamp(0.0, 1.0)
        }
    }

    pub(super) fn open_session(&mut self, now: Timestamp, declared_uplink_kbps: u32) {
        self.close_session(now);
        self.sessions = self.sessions.saturating_add(1);
        self.alive_since = Some(now);
        self.known_since.get_or_insert(now);
        self.declared_uplink_kbps = declared_uplink_kbps;
        self.last_seen = now;
    }

    pub(super) fn close_session(&mut self, now: Timestamp) {
        if let Some(t) = self.alive_since.take() {
            self.alive_closed_us = self.alive_closed_us.saturating_add(now.saturating_since(t));
        }
        self.last_seen = now;
    }

    pub(super) fn uplink_sample(&mut self, kbps: f64) {
        self.achieved_uplink_kbps = if self.uplink_samples == 0 {
            kbps
        } else {
            self.achieved_uplink_kbps * (1.0 - UPLINK_SMOOTHING) + kbps * UPLINK_SMOOTHING
        };
        self.uplink_samples = self.uplink_samples.saturating_add(1);
    }

    /// The record as kept across a restart: open periods closed at `now`.
    pub fn closed_at(&self, now: Timestamp) -> NodeHistory {
        let mut h = self.clone();
        h.alive_closed_us = h.alive_us(now);
        h.known_closed_us = h.known_us(now);
        h.alive_since = None;
        h.known_since = None;
        h
    }
}
