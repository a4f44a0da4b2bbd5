//! Congested links from heartbeats (C2): a parent reports the last seq it sent to
//! each child, a child the last seq it received from each parent. When a child's
//! report, made after its parent's, is still behind what the parent had already
//! sent, the link is lagging; lagging for `congestion_heartbeats` reports in a row
//! ("rate under the substream rate for N intervals", C6), the child is re-homed in
//! the trees it took from that parent and the parent's history drops.

use super::overlay::PeerOverlay;
use crate::config::PeerConfig;
use std::collections::BTreeMap;
use tiercast_proto::{Heartbeat, NodeId, Timestamp};

/// What parents said they sent: (parent, child) → (seq, when the coordinator heard it).
#[derive(Clone, Debug, Default)]
pub struct SentLog {
    sent: BTreeMap<(NodeId, NodeId), (u64, Timestamp)>,
}

impl SentLog {
    pub fn forget(&mut self, node: NodeId) {
        self.sent.retain(|(p, c), _| *p != node && *c != node);
    }
}

/// A report is "after" the parent's when it arrived this much later.
const AFTER_US: u64 = 100_000;

impl PeerOverlay {
    /// Folds one heartbeat in; returns links (parent, child) found congested.
    pub(crate) fn congestion_from(
        &mut self,
        now: Timestamp,
        log: &mut SentLog,
        hb: &Heartbeat,
        cfg: &PeerConfig,
    ) -> Vec<(NodeId, NodeId)> {
        let me = hb.node;
        let Some(report) = hb.channels.iter().find(|c| c.channel == self.desc.id) else {
            return Vec::new();
        };
        for c in &report.children {
            if let Some(seq) = c.last_seq {
                log.sent.insert((me, c.peer), (seq, now));
            }
        }
        let mut congested = Vec::new();
        for p in &report.parents {
            let key = (p.peer, me);
            let Some((sent, at)) = log.sent.get(&key).copied() else {
                continue;
            };
            if now.saturating_since(at) < AFTER_US {
                continue;
            }
            let behind = p.last_seq.is_none_or(|got| got < sent);
            let n = self.lagging.entry(key).or_insert(0);
            if behind {
                *n += 1;
            } else {
                *n = 0;
            }
            if *n >= cfg.congestion_heartbeats {
                *n = 0;
                congested.push(key);
            }
        }
        if !congested.is_empty() {
            self.stats.congested_links += congested.len() as u64;
        }
        congested
    }
}
