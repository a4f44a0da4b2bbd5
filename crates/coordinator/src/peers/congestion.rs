//! Congested links from heartbeats (C2): a parent reports the last seq it sent to
//! each child, a child the last seq it received from each parent. When a child
//! has still not received what its parent said it had sent at least
//! `LAG_US` earlier (a full second of queue), the link is lagging; lagging for
//! `congestion_heartbeats` reports in a row ("rate under the substream rate for N
//! intervals", C6), the child is re-homed in the trees it took from that parent
//! and the parent's history drops. Only push links are compared: a lazy link
//! (D3's mesh, a bottom member's repair link) carries blocks only when asked.

use super::overlay::PeerOverlay;
use crate::config::PeerConfig;
use std::collections::BTreeMap;
use tiercast_proto::{Heartbeat, NodeId, Timestamp};

/// What parents said they sent: (parent, child) → the last two reports
/// (seq, when the coordinator heard it), newest first.
#[derive(Clone, Debug, Default)]
pub struct SentLog {
    sent: BTreeMap<(NodeId, NodeId), [(u64, Timestamp); 2]>,
}

impl SentLog {
    pub fn forget(&mut self, node: NodeId) {
        self.sent.retain(|(p, c), _| *p != node && *c != node);
    }

    /// Links remembered: at most the overlay's push links (a report's other
    /// children are not kept).
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }
}

/// A block the parent sent this long ago must have arrived on a healthy link
/// (latency, serialization at a peer's uplink, a burst in its queue).
const LAG_US: u64 = 1_000_000;

impl PeerOverlay {
    /// Whether `parent` pushes blocks to `child` now: its push parent on the top
    /// level, its parent in a bottom tree, or a recovery parent of the middle.
    fn pushes_to(&self, parent: NodeId, child: NodeId) -> bool {
        self.members.get(&child).is_some_and(|m| {
            m.eager == Some(parent)
                || m.parents.contains(&Some(parent))
                || m.recovery.contains(&Some(parent))
        })
    }

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
            // Only a link the overlay has: a heartbeat naming any child id must not
            // grow the log (issue 11), and a link gone is forgotten.
            if !self.pushes_to(me, c.peer) {
                log.sent.remove(&(me, c.peer));
                continue;
            }
            if let Some(seq) = c.last_seq {
                let e = log.sent.entry((me, c.peer)).or_insert([(seq, now); 2]);
                *e = [(seq, now), e[0]];
            }
        }
        let mut congested = Vec::new();
        for p in &report.parents {
            let key = (p.peer, me);
            // Only a push link can lag: a lazy (repair) link carries nothing
            // until asked, and a parent just replaced may still be reported.
            if !self.pushes_to(p.peer, me) {
                self.lagging.remove(&key);
                continue;
            }
            let Some(reports) = log.sent.get(&key).copied() else {
                continue;
            };
            // The newest parent report at least LAG_US old.
            let Some((sent, _)) = reports
                .into_iter()
                .find(|(_, at)| now.saturating_since(*at) >= LAG_US)
            else {
                continue;
            };
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
