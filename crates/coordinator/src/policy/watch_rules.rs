//! Device-class and content-category refusals applied (C3's client rules, C4's
//! reason): a viewer the policies in force refuse a channel — its device class
//! may not watch, or a category of the channel is refused to its class or its
//! region ([`Policies::watch_refused`]) — is told why: the HTTP API answers
//! `403` with the reason, a peer's `Watch` gets `WatchDenied { PolicyRefused }`,
//! and the event log records the rule ([`CoordEvent::WatchRefused`]).
//!
//! The device class: a peer's is the one it registered with (`Register::class`);
//! an HTTP viewer declares none (unspecified), so only refusals by region reach
//! it. Its region is judged as for geo blocks (`geo_block.rs`).
//!
//! [`Policies::watch_refused`]: crate::policy::Policies::watch_refused

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use tiercast_proto::{DenyReason, DeviceClass, NodeId};

impl Coordinator {
    /// `Some(PolicyRefused)` (and the event) when a client rule refuses
    /// `channel_name` to a viewer of `device` in `region`.
    pub(crate) fn client_refusal(
        &mut self,
        channel_name: &str,
        device: DeviceClass,
        region: &str,
    ) -> Option<DenyReason> {
        let refusal = self
            .policy
            .policies
            .watch_refused(channel_name, device.name(), region)?;
        self.stats.denied += 1;
        self.events.push_back(CoordEvent::WatchRefused {
            channel_name: channel_name.to_string(),
            region: region.to_string(),
            device_class: device.name().to_string(),
            rule: refusal.rule,
            reason: refusal.reason.clone(),
        });
        Some(DenyReason::PolicyRefused {
            reason: refusal.reason,
        })
    }

    /// A peer's `Watch` refused by a geo block or else a client rule:
    /// `WatchDenied` sent, `true`.
    pub(crate) fn peer_watch_refused(
        &mut self,
        from: NodeId,
        channel_name: &str,
        region: &str,
    ) -> bool {
        if !self.names.contains_key(channel_name) {
            return false;
        }
        let region = self.watch_region(from, region);
        let device = self
            .registry
            .get(from)
            .map_or(DeviceClass::Unspecified, |r| r.device_class);
        let refusal = match self.geo_refusal(channel_name, &region) {
            Some(r) => Some(r),
            None => self.client_refusal(channel_name, device, &region),
        };
        let Some(reason) = refusal else {
            return false;
        };
        self.deny_watch(from, channel_name.to_string(), reason);
        true
    }
}
