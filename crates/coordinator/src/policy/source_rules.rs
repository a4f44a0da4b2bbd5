//! Servers or peers (C3's `provider.prefer_source` and `network.traffic_budget`)
//! applied where a viewer is placed: a peer's `Watch` could be carried by the
//! relays (the operator's servers) or by the peer overlay.
//!
//! - **servers** in force: the peer is sent to a relay with room (`WatchAt`, event
//!   [`CoordEvent::PlacedOnServers`]); when no relay has room it joins the peers
//!   (the fall-back: it is never left with nothing while peers could carry it);
//! - **peers** in force, or no rule: it joins the overlay, and goes to a relay
//!   only when the overlay has no room for it (`peers/coordinator.rs`).
//!
//! Which rule is in force: the strictest `prefer_source` covering the channel and
//! the viewer's class, and the strictest `traffic_budget` covering the class —
//! the budget's side (`below` or `above`) by the servers' traffic so far in its
//! period ([`crate::history::traffic`]); of the two the stricter decides, a tie
//! going to `prefer_source` (it names the content). A protocol viewer (role
//! `Viewer`) takes no peer parents: it always goes to a relay.
//!
//! Traffic is counted from the servers' heartbeats
//! ([`Coordinator::count_server_traffic`]). When the rule in force changes, the
//! peers already placed are moved, a few per heartbeat interval
//! ([`super::source_switch`]); the peers placed here on a relay are kept for it.

use super::file::{Period, Source, ViewerClass};
use super::rules::{strictest, Policies};
use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use tiercast_proto::{Message, NodeId, NodeRole, Timestamp};

/// The source in force for a viewer, and the rule that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceChoice<'a> {
    pub source: Source,
    pub rule: &'a str,
}

impl Policies {
    /// The source preferred for a viewer of `class` of `channel`, given the GB
    /// the servers sent so far in each period; `None`: no rule.
    pub fn source_in_force(
        &self,
        channel: &str,
        class: ViewerClass,
        used_gb: impl Fn(Period) -> f64,
    ) -> Option<SourceChoice<'_>> {
        let provider = self
            .prefer_source_rule(channel, class)
            .map(|r| (*r.strictness.get_ref(), r.prefer, r.name.get_ref()));
        let budget = strictest(
            self,
            self.file
                .network
                .traffic_budget
                .iter()
                .filter(|r| r.viewers.covers(class)),
            |r| &r.name,
            |r| &r.strictness,
        )
        .map(|r| {
            let side = if used_gb(r.period) < *r.threshold_gb.get_ref() {
                r.below
            } else {
                r.above
            };
            (*r.strictness.get_ref(), side, r.name.get_ref())
        });
        let (_, source, rule) = match (provider, budget) {
            (Some(p), Some(b)) if b.0 > p.0 => b,
            (Some(p), _) => p,
            (None, Some(b)) => b,
            (None, None) => return None,
        };
        Some(SourceChoice {
            source,
            rule: rule.as_str(),
        })
    }
}

impl Coordinator {
    /// The Unix time (s) of `now` (`clock_epoch_unix_s` + the machine's clock).
    fn unix_s(&self, now: Timestamp) -> u64 {
        self.cfg
            .clock_epoch_unix_s
            .saturating_add(now.0 / 1_000_000)
    }

    /// GB the servers sent so far in the period of kind `p` containing `now`.
    pub fn server_traffic_gb(&self, now: Timestamp, p: Period) -> f64 {
        self.history.server_traffic().used_gb(p, self.unix_s(now))
    }

    /// A server's (a relay's or an origin's) heartbeat read against its previous
    /// one `interval_us` before: it achieved `kbps`.
    pub(crate) fn count_server_traffic(&mut self, now: Timestamp, kbps: f64, interval_us: u64) {
        let us = interval_us.min(crate::history::traffic::MAX_INTERVAL_US);
        let bytes = kbps * 1000.0 / 8.0 * us as f64 / 1e6;
        let unix_s = self.unix_s(now);
        self.history.servers_sent(unix_s, bytes);
    }

    /// A peer's `Watch` for `channel_name` while the policies prefer servers: sent
    /// to a relay with room (true). False — it joins the peers — when peers are
    /// preferred, no rule says, or no relay has room.
    pub(crate) fn placed_on_servers(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel_name: &str,
    ) -> bool {
        let member = self
            .names
            .get(channel_name)
            .and_then(|c| self.peers.get(c))
            .is_some_and(|o| o.members.contains_key(&from));
        let Some(r) = self.registry.get(from).filter(|_| !member) else {
            return false;
        };
        let class = if r.premium {
            ViewerClass::Premium
        } else {
            ViewerClass::Free
        };
        let region = r.region.clone();
        let rule = {
            let used = |p: Period| self.server_traffic_gb(now, p);
            match self
                .policy
                .policies
                .source_in_force(channel_name, class, used)
            {
                Some(c) if c.source == Source::Servers => c.rule.to_string(),
                _ => return false,
            }
        };
        let has_relays = self
            .registry
            .iter()
            .any(|(_, r)| r.alive && r.role == NodeRole::Relay);
        if !has_relays {
            return false;
        }
        let Ok((channel, relay)) = self.choose_viewer_relay(now, channel_name, &region) else {
            return false; // no relay has room: the peers carry it
        };
        self.redirected(channel.id, relay.id);
        self.events.push_back(CoordEvent::PlacedOnServers {
            channel: channel.id,
            peer: from,
            relay: relay.id,
            rule,
        });
        let limit = self.cfg.max_nodes;
        self.source_switches
            .placed(now, channel.id, from, relay.id, limit);
        self.send(from, Message::WatchAt { channel, relay });
        true
    }
}
