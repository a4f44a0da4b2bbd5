//! Geo blocks applied (C3's provider rule, C4's reason; issue 11 item 3): a
//! viewer in a region the policies in force refuse for a channel is told why —
//! the HTTP API answers `451` with the reason, a protocol viewer or a peer gets
//! `WatchDenied { GeoBlocked { reason } }` — and the event log records the rule
//! ([`CoordEvent::GeoBlocked`]).
//!
//! The viewer's region: an HTTP viewer's `?region=` (the coordinator does not map
//! addresses to regions: without it a viewer is in the default region, which no
//! geo block names); a protocol viewer's or a peer's `Watch` region, else the
//! region it registered with. Viewer classes come from tokens, which do not exist
//! yet: every viewer is `free` (rules for `all` and `free` viewers apply).

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::policy::ViewerClass;
use tiercast_proto::{DenyReason, NodeId};

/// The class of a viewer until viewer tokens say otherwise.
pub const DEFAULT_VIEWER_CLASS: ViewerClass = ViewerClass::Free;

impl Coordinator {
    /// `Some(GeoBlocked)` (and the event) when the policies in force refuse
    /// `channel_name` to a viewer in `region`.
    pub(crate) fn geo_refusal(&mut self, channel_name: &str, region: &str) -> Option<DenyReason> {
        if region.is_empty() {
            return None;
        }
        let refusal =
            self.policy
                .policies
                .geo_blocked(channel_name, region, DEFAULT_VIEWER_CLASS)?;
        self.stats.denied += 1;
        self.events.push_back(CoordEvent::GeoBlocked {
            channel_name: channel_name.to_string(),
            region: region.to_string(),
            rule: refusal.rule,
            reason: refusal.reason.clone(),
        });
        Some(DenyReason::GeoBlocked {
            reason: refusal.reason,
        })
    }

    /// The region a node's `Watch` is judged in: the one it names, else the one
    /// it registered with.
    pub(crate) fn watch_region(&self, from: NodeId, named: &str) -> String {
        if !named.is_empty() {
            return named.to_string();
        }
        self.registry
            .get(from)
            .map(|r| r.region.to_string())
            .unwrap_or_default()
    }
}
