//! The probe of a reported origin (D7, issue 12: the backup promoted in well
//! under a GOP). A tier-1 relay reports its silent origin at once
//! (`tiercast_node::origin_watch`); one relay's word must not flip a channel —
//! it may lie, or only its own link may be bad — so the coordinator asks the
//! origin itself: it sends a `Probe`, and the origin is lost (its standby
//! promoted, `backup.rs`) only if nothing at all comes from it within
//! `origin_probe_ms`. Any message of the origin answers the probe. A live
//! origin whose encoder paused answers: nothing changes. Bounded: one probe per
//! origin at a time, only for channels with a live standby.

use crate::coordinator::Coordinator;
use std::collections::BTreeMap;
use tiercast_proto::{Message, NodeId, Timestamp};

/// Origins probed and not heard since, with when each was asked.
#[derive(Clone, Debug, Default)]
pub struct OriginProbes {
    asked: BTreeMap<NodeId, Timestamp>,
}

impl OriginProbes {
    /// Whether `origin` is being probed now.
    pub fn pending(&self, origin: NodeId) -> bool {
        self.asked.contains_key(&origin)
    }

    pub fn is_empty(&self) -> bool {
        self.asked.is_empty()
    }
}

impl Coordinator {
    /// Sends `origin` a probe (unless one is pending).
    pub(crate) fn probe_origin(&mut self, now: Timestamp, origin: NodeId) {
        if self.backups.probes.asked.contains_key(&origin) {
            return;
        }
        self.backups.probes.asked.insert(origin, now);
        self.send(origin, Message::Probe);
    }

    /// `from` sent something: if it was probed, it answered.
    pub(crate) fn probe_answered(&mut self, from: NodeId) {
        if !self.backups.probes.asked.is_empty() {
            self.backups.probes.asked.remove(&from);
        }
    }

    /// When the earliest pending probe runs out.
    pub(crate) fn probe_deadline(&self) -> Option<Timestamp> {
        let wait = self.cfg.origin_probe_ms;
        self.backups
            .probes
            .asked
            .values()
            .min()
            .map(|t| t.plus_millis(wait))
    }

    /// Origins whose probe ran out unanswered are lost (their standby promoted).
    pub(crate) fn probe_tick(&mut self, now: Timestamp) {
        let Some(deadline) = self.probe_deadline() else {
            return;
        };
        if now < deadline {
            return;
        }
        let wait_us = self.cfg.origin_probe_ms.saturating_mul(1000);
        let expired: Vec<NodeId> = self
            .backups
            .probes
            .asked
            .iter()
            .filter(|(_, t)| now.saturating_since(**t) >= wait_us)
            .map(|(n, _)| *n)
            .collect();
        for origin in expired {
            self.backups.probes.asked.remove(&origin);
            self.node_lost(now, origin);
        }
    }
}
