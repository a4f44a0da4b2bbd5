//! The node's timer table (issue 13: one driving contract, timers in one table;
//! DESIGN.md §1). Every deadline the node keeps is one row: what it is for, when
//! it is due ([`NodeTimer::deadline`]) and what runs ([`NodeTimer::fire`]).
//! `poll_timeout` is the earliest due row; `handle_timeout` runs the rows in
//! this order, each checking its own deadline (a row run early does nothing).
//! Features behind the rows: V10 (parent monitor, viewer silence), D8
//! (heartbeat), D3 (Have/Want pulls), D7 (register retry, origin silence), V2
//! (watch retry), V7 (prediction), D4 (start gates), the uplink pacer.

use crate::node::Node;
use tiercast_proto::NodeRole;
use tiercast_proto::Timestamp;

/// One row of the timer table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeTimer {
    /// Heartbeat to the coordinator, then the parent monitor, unanswered
    /// LOGINs and links kept at a re-registration looked at again.
    Heartbeat,
    /// Have/Want on lazy links (D3).
    Have,
    /// An unanswered Register sent again (backoff).
    RegisterRetry,
    /// A tier-1 relay's origin gone silent (backup origin).
    OriginSilence,
    /// Viewers that stopped reading.
    ViewerSilence,
    /// An unanswered Watch sent again.
    WatchRetry,
    /// The login/logoff trend folded (V7).
    Trend,
    /// A fresh peer's start across its substream parents.
    StartGate,
    /// Blocks the uplink cap lets out.
    Pacer,
}

impl NodeTimer {
    /// Every row, in the order `handle_timeout` runs them.
    pub const TABLE: [NodeTimer; 9] = [
        NodeTimer::Heartbeat,
        NodeTimer::Have,
        NodeTimer::RegisterRetry,
        NodeTimer::OriginSilence,
        NodeTimer::ViewerSilence,
        NodeTimer::WatchRetry,
        NodeTimer::Trend,
        NodeTimer::StartGate,
        NodeTimer::Pacer,
    ];

    /// When this row is next due in `n`, if it is armed.
    pub fn deadline(self, n: &Node) -> Option<Timestamp> {
        match self {
            NodeTimer::Heartbeat => {
                // A registered viewer that sends no heartbeats has nothing
                // periodic to do (a million of them would otherwise tick for
                // nothing in the simulator).
                let idle_viewer =
                    n.cfg.role == NodeRole::Viewer && !n.cfg.send_heartbeats && n.registered;
                (!idle_viewer).then_some(n.next_heartbeat)
            }
            NodeTimer::Have => n.has_lazy_links().then_some(n.next_have),
            NodeTimer::RegisterRetry => n.register_retry_at(),
            NodeTimer::OriginSilence => n.origin_silence_deadline(),
            NodeTimer::ViewerSilence => n.viewer_silence_deadline(),
            NodeTimer::WatchRetry => n.watch_retry_at(),
            NodeTimer::Trend => n.trend.as_ref().map(|t| t.next_fold()),
            NodeTimer::StartGate => n.start_gate_deadline(),
            NodeTimer::Pacer => n.pacer.as_ref().and_then(|p| p.poll_timeout()),
        }
    }

    /// Runs this row at `now` (it checks its own deadline).
    pub(crate) fn fire(self, n: &mut Node, now: Timestamp) {
        match self {
            NodeTimer::Heartbeat => {
                if now >= n.next_heartbeat {
                    n.send_heartbeat(now);
                    n.monitor_parents(now);
                    n.retry_parent_logins(now);
                    n.recheck_kept(now);
                    n.next_heartbeat = now.plus_millis(n.cfg.heartbeat_interval_ms);
                }
            }
            NodeTimer::Have => {
                if now >= n.next_have {
                    n.pull_tick(now);
                    n.next_have = now.plus_millis(n.cfg.have_interval_ms.max(1));
                }
            }
            NodeTimer::RegisterRetry => n.retry_register(now),
            NodeTimer::OriginSilence => n.check_origin_silence(now),
            NodeTimer::ViewerSilence => n.check_viewer_silence(now),
            NodeTimer::WatchRetry => n.retry_watches(now),
            NodeTimer::Trend => n.predict_tick(now),
            NodeTimer::StartGate => n.open_due_start_gates(now),
            NodeTimer::Pacer => n.pace(now),
        }
    }
}

impl Node {
    /// The earliest deadline of the timer table.
    pub(crate) fn earliest_timer(&self) -> Option<Timestamp> {
        NodeTimer::TABLE
            .iter()
            .filter_map(|t| t.deadline(self))
            .min()
    }

    /// Every row of the timer table, with its deadline (for status pages and tests).
    pub fn timers(&self) -> impl Iterator<Item = (NodeTimer, Option<Timestamp>)> + '_ {
        NodeTimer::TABLE.iter().map(|t| (*t, t.deadline(self)))
    }
}
