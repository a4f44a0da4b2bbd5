//! The feed an HTTP viewer is sent to (C3's provider rules, issue 11): the relay
//! [`Coordinator::watch_in`] chooses, and with it
//!
//! - the **delay** (`delayed_feed`): the strictest rule's `delay_s` for the
//!   viewer's class (or the delay it asked for, when longer); the relay serves the
//!   feed that far behind live from its buffer (the redirect's `?delay=N`);
//! - the **audio-only feed** (`audio_fallback`): when no relay has room for
//!   another full-feed viewer (`TierFull`) and a rule covers the viewer, it is sent
//!   to the audio-only feed of an active relay (`?feed=audio`) instead of being
//!   refused; the relays take audio viewers in slots of their own
//!   (`NodeConfig::audio_capacity`), so the coordinator spreads them round-robin
//!   over the alive active relays of the channel in the viewer's region (bottom
//!   tier first) — it does not count them (heartbeats do not carry them; a relay
//!   out of audio slots answers 503). A viewer may also ask for the audio feed
//!   itself (`?feed=audio`).
//!
//! Viewer classes come from tokens, which do not exist yet: every HTTP viewer is
//! `free` (`geo_block::DEFAULT_VIEWER_CLASS`). Protocol viewers and peers (`Watch`
//! messages) get the live full feed: their messages carry no feed.

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::geo_block::DEFAULT_VIEWER_CLASS;
use crate::registry::RegionId;
use tiercast_proto::viewer_feed::{FeedKind, ViewerFeed};
use tiercast_proto::{ChannelDesc, DenyReason, NodeId, PeerInfo, Timestamp};

/// Where an HTTP viewer goes and what it watches there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchGrant {
    pub desc: ChannelDesc,
    pub relay: PeerInfo,
    pub feed: ViewerFeed,
    /// The audio feed was given because no full-feed relay had room.
    pub audio_fallback: bool,
}

impl WatchGrant {
    /// The URL path and query a player asks the relay for.
    pub fn relay_path(&self) -> String {
        format!("/live/{}.ts{}", self.desc.name, self.feed.query())
    }
}

impl Coordinator {
    /// Chooses the relay and the feed for an HTTP viewer of `channel_name` in
    /// `region` that asked for `asked`, applying the policies in force.
    pub fn watch_feed(
        &mut self,
        now: Timestamp,
        channel_name: &str,
        region: &str,
        asked: ViewerFeed,
    ) -> Result<WatchGrant, DenyReason> {
        let policies = &self.policy.policies;
        let delay_s = policies
            .delay_s(channel_name, DEFAULT_VIEWER_CLASS)
            .unwrap_or(0)
            .max(asked.delay_s);
        let fallback_allowed = policies.audio_fallback(channel_name, DEFAULT_VIEWER_CLASS);
        let audio = ViewerFeed {
            kind: FeedKind::Audio,
            delay_s,
        };
        if asked.kind == FeedKind::Audio {
            let (desc, relay) = self.watch_audio(now, channel_name, region)?;
            return Ok(grant(desc, relay, audio, false));
        }
        match self.watch_in(now, channel_name, region) {
            Ok((desc, relay)) => {
                let full = ViewerFeed {
                    kind: FeedKind::Full,
                    delay_s,
                };
                Ok(grant(desc, relay, full, false))
            }
            Err(DenyReason::TierFull) if fallback_allowed => {
                let (desc, relay) = self.watch_audio(now, channel_name, region)?;
                self.events.push_back(CoordEvent::AudioFallback {
                    channel: desc.id,
                    to: relay.id,
                });
                Ok(grant(desc, relay, audio, true))
            }
            Err(reason) => Err(reason),
        }
    }

    /// An active relay for an audio-only viewer: round-robin over the alive active
    /// relays of the channel in the viewer's region (else any region), bottom tier
    /// first. `TierFull` when the channel has no active relay at all.
    fn watch_audio(
        &mut self,
        _now: Timestamp,
        channel_name: &str,
        region: &str,
    ) -> Result<(ChannelDesc, PeerInfo), DenyReason> {
        let channel = *self
            .names
            .get(channel_name)
            .ok_or(DenyReason::UnknownChannel)?;
        if let Some(refused) = self.geo_refusal(channel_name, region) {
            return Err(refused);
        }
        let home = self.registry.region_id(region);
        let mut regions: Vec<RegionId> = home.into_iter().collect();
        regions.extend(
            self.registry
                .regions_with_relays()
                .into_iter()
                .filter(|r| Some(*r) != home),
        );
        let manager = &self.channels[&channel];
        let candidates: Vec<NodeId> = regions
            .iter()
            .find_map(|r| {
                let mut tier = self.registry.bottom_tier(*r)?;
                loop {
                    let alive: Vec<NodeId> = manager
                        .active_in(*r, tier)
                        .into_iter()
                        .filter(|n| self.registry.get(*n).is_some_and(|x| x.alive))
                        .collect();
                    if !alive.is_empty() {
                        return Some(alive);
                    }
                    tier = self.registry.tier_above(*r, tier)?;
                }
            })
            .ok_or(DenyReason::TierFull)?;
        let pick = candidates[(self.stats.audio_redirects % candidates.len() as u64) as usize];
        self.stats.audio_redirects += 1;
        let desc = manager.desc.clone();
        let info = self
            .registry
            .get(pick)
            .map(|r| tiercast_proto::PeerInfo::clone(&r.info))
            .ok_or(DenyReason::TierFull)?;
        Ok((desc, info))
    }
}

fn grant(desc: ChannelDesc, relay: PeerInfo, feed: ViewerFeed, audio_fallback: bool) -> WatchGrant {
    WatchGrant {
        desc,
        relay,
        feed,
        audio_fallback,
    }
}
