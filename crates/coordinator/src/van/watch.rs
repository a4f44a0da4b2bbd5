//! Where a viewer goes (V2, the seed's DNS redirection as an HTTP 302 or a `WatchAt`
//! message; V11: to relays of the viewer's region — or, when that region has no
//! relays, of the default region "", else of the first region that has some; when
//! the region is full, of another region with room): the
//! entry relay of the region's bottom tier (the most recently activated one
//! still expanding with room), else any active relay of that tier with room, else an
//! idle relay activated for it, else an active relay of a tier above with room;
//! when all are full the answer is "tier full, retry later". With farms on (V6)
//! the members of the tier's current server farm come first, in turn. A viewer
//! a geo block refuses is told so first (`geo_block.rs`), then one a client rule
//! refuses (`watch_rules.rs`; an HTTP viewer declares no device class).

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::registry::RegionId;
use tiercast_proto::{ChannelDesc, DenyReason, Message, NodeId, PeerInfo, Timestamp};

impl Coordinator {
    /// Chooses the relay for a new viewer of `channel_name` (default region) and books it.
    pub fn watch(
        &mut self,
        now: Timestamp,
        channel_name: &str,
    ) -> Result<(ChannelDesc, PeerInfo), DenyReason> {
        self.watch_in(now, channel_name, "")
    }

    /// Chooses the relay for a new viewer of `channel_name` in `region` and books it.
    pub fn watch_in(
        &mut self,
        now: Timestamp,
        channel_name: &str,
        region: &str,
    ) -> Result<(ChannelDesc, PeerInfo), DenyReason> {
        if self.channel_named(channel_name).is_some() {
            if let Some(refused) = self.geo_refusal(channel_name, region) {
                return Err(refused);
            }
            let device = tiercast_proto::DeviceClass::Unspecified;
            if let Some(refused) = self.client_refusal(channel_name, device, region) {
                return Err(refused);
            }
        }
        let result = self.choose_viewer_relay(now, channel_name, region);
        match &result {
            Ok((desc, relay)) => self.redirected(desc.id, relay.id),
            Err(reason) => {
                self.stats.denied += 1;
                self.events.push_back(CoordEvent::Denied {
                    channel_name: channel_name.to_string(),
                    reason: reason.clone(),
                })
            }
        }
        result
    }

    /// A viewer was sent to `relay`: booked, counted, logged.
    pub(crate) fn redirected(&mut self, channel: tiercast_proto::ChannelId, relay: NodeId) {
        self.forecast_redirect(channel, relay);
        self.registry.book_pending(relay, 1);
        self.stats.redirects += 1;
        self.events
            .push_back(CoordEvent::Redirected { channel, to: relay });
    }

    /// The region whose relays serve viewers of `name` (V11).
    fn viewer_region(&self, name: &str) -> Option<RegionId> {
        let with_relays = |r: RegionId| self.registry.bottom_tier(r).is_some();
        self.registry
            .region_id(name)
            .filter(|r| with_relays(*r))
            .or_else(|| self.registry.region_id("").filter(|r| with_relays(*r)))
            .or_else(|| self.registry.regions_with_relays().first().copied())
    }

    pub(crate) fn choose_viewer_relay(
        &mut self,
        now: Timestamp,
        channel_name: &str,
        region_name: &str,
    ) -> Result<(ChannelDesc, PeerInfo), DenyReason> {
        let channel = *self
            .names
            .get(channel_name)
            .ok_or(DenyReason::UnknownChannel)?;
        let region = self
            .viewer_region(region_name)
            .ok_or(DenyReason::TierFull)?;
        // The viewer's region first; when it is full, the other regions in turn.
        let mut pick = self.pick_in_region(now, channel, region);
        if pick.is_none() {
            for other in self.registry.regions_with_relays() {
                if other != region {
                    pick = self.pick_in_region(now, channel, other);
                    if pick.is_some() {
                        break;
                    }
                }
            }
        }
        let relay = pick.ok_or(DenyReason::TierFull)?;
        let desc = self.channels[&channel].desc.clone();
        let info = self
            .registry
            .get(relay)
            .map(|r| tiercast_proto::PeerInfo::clone(&r.info))
            .ok_or(DenyReason::TierFull)?;
        Ok((desc, info))
    }

    /// A relay with room for a viewer in `region`: a farm member, the entry relay of
    /// the bottom tier, an idle relay activated for it, or a relay of a tier above.
    fn pick_in_region(
        &mut self,
        now: Timestamp,
        channel: tiercast_proto::ChannelId,
        region: RegionId,
    ) -> Option<NodeId> {
        let bottom = self.registry.bottom_tier(region)?;
        if self
            .channels
            .get(&channel)
            .is_some_and(|m| m.active_count_in(region, bottom) == 0)
        {
            // Not on the hot path: only when the region's entry tier has no active relay.
            self.ensure_chain(now, channel);
        }
        // V6: a server farm takes viewers round-robin before the usual entry relay.
        let pick = self
            .farm_entry(channel, bottom)
            .filter(|n| self.region_of(*n) == region);
        let pick = pick.or_else(|| self.entry_of_tier(channel, region, bottom));
        let pick = pick.or_else(|| {
            let idle = self.idle_relays(channel, region, bottom).first().copied();
            if let Some(n) = idle {
                self.activate(now, channel, n, bottom);
            }
            idle
        });
        pick.or_else(|| self.upper_tier_with_room(channel, region, bottom))
    }

    fn upper_tier_with_room(
        &self,
        channel: tiercast_proto::ChannelId,
        region: RegionId,
        bottom: u8,
    ) -> Option<NodeId> {
        let mut t = bottom;
        while let Some(up) = self.registry.tier_above(region, t) {
            if let Some(n) = self.entry_of_tier(channel, region, up) {
                return Some(n);
            }
            t = up;
        }
        None
    }

    pub(super) fn on_watch(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel_name: String,
        region: String,
    ) {
        let region = self.watch_region(from, &region);
        match self.watch_in(now, &channel_name, &region) {
            Ok((channel, relay)) => {
                self.viewer_placed(now, from, channel.id, relay.id);
                self.send(from, Message::WatchAt { channel, relay })
            }
            Err(reason) => {
                let retry_after_ms = self.cfg.retry_after_s.saturating_mul(1000);
                self.send(
                    from,
                    Message::WatchDenied {
                        channel_name,
                        reason,
                        retry_after_ms,
                    },
                )
            }
        }
    }
}
