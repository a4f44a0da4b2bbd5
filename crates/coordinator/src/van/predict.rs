//! Rate prediction at the coordinator (V7, seed 001 [0058]–[0065]): double exponential
//! smoothing (one implementation, `tiercast_proto::smoothing`) of the login and logoff
//! rates of every (channel, tier) — SysLinRate — and of every relay — Loffrate_s and
//! its login rate. Fed by what the coordinator sees: viewers it redirects (`watch`),
//! the per-channel loads in heartbeats and in DISTRIBUTE / CONSOLIDATE (a rise beyond
//! the redirects is logins, a fall is logoffs). The counts are folded into the
//! smoothers every ΔT/10 (`handle_timeout`). Also the room of a relay and of a tier,
//! which DISTRIBUTE and CONSOLIDATE weigh against the load predicted over `sp`.

use crate::coordinator::Coordinator;
use std::collections::BTreeMap;
use tiercast_proto::{ChannelId, Heartbeat, NodeId, NodeRole, RateSmoother, Tier, Timestamp};

/// Predicted login and logoff rates (events per ms) of a tier or a relay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoginLogoff {
    pub login: RateSmoother,
    pub logoff: RateSmoother,
}

impl LoginLogoff {
    fn new(alpha: f64, beta: f64) -> Self {
        LoginLogoff {
            login: RateSmoother::new(alpha, beta),
            logoff: RateSmoother::new(alpha, beta),
        }
    }

    pub fn login_rate(&self) -> f64 {
        self.login.rate_per_ms()
    }

    pub fn logoff_rate(&self) -> f64 {
        self.logoff.rate_per_ms()
    }

    fn fold(&mut self, period_ms: f64) {
        self.login.fold(period_ms);
        self.logoff.fold(period_ms);
    }

    fn is_quiet(&self) -> bool {
        self.login.is_quiet() && self.logoff.is_quiet()
    }
}

/// What the coordinator believes a relay carries for a channel.
#[derive(Clone, Copy, Debug)]
struct Known {
    tier: Tier,
    load: u32,
}

#[derive(Debug)]
pub struct Forecast {
    alpha: f64,
    beta: f64,
    period_ms: u64,
    last_fold: Timestamp,
    next_fold: Timestamp,
    tiers: BTreeMap<(ChannelId, Tier), LoginLogoff>,
    relays: BTreeMap<NodeId, LoginLogoff>,
    known: BTreeMap<(NodeId, ChannelId), Known>,
}

impl Forecast {
    pub fn new(now: Timestamp, alpha: f64, beta: f64, period_ms: u64) -> Self {
        let period_ms = period_ms.max(1);
        Forecast {
            alpha,
            beta,
            period_ms,
            last_fold: now,
            next_fold: now.plus_millis(period_ms),
            tiers: BTreeMap::new(),
            relays: BTreeMap::new(),
            known: BTreeMap::new(),
        }
    }

    pub fn next_fold(&self) -> Timestamp {
        self.next_fold
    }

    fn count(&mut self, channel: ChannelId, tier: Tier, relay: NodeId, delta: i64) {
        let (a, b) = (self.alpha, self.beta);
        let n = delta.unsigned_abs();
        let t = self
            .tiers
            .entry((channel, tier))
            .or_insert_with(|| LoginLogoff::new(a, b));
        let r = self
            .relays
            .entry(relay)
            .or_insert_with(|| LoginLogoff::new(a, b));
        if delta > 0 {
            t.login.record(n);
            r.login.record(n);
        } else if delta < 0 {
            t.logoff.record(n);
            r.logoff.record(n);
        }
    }

    /// A viewer was redirected to `relay` (it is about to log in there).
    pub fn redirected(&mut self, channel: ChannelId, tier: Tier, relay: NodeId) {
        let k = self
            .known
            .entry((relay, channel))
            .or_insert(Known { tier, load: 0 });
        k.load = k.load.saturating_add(1);
        self.count(channel, tier, relay, 1);
    }

    /// `relay` reported `load` children (relays and viewers) for `channel`.
    pub fn observed_load(&mut self, channel: ChannelId, tier: Tier, relay: NodeId, load: u32) {
        let k = self
            .known
            .entry((relay, channel))
            .or_insert(Known { tier, load: 0 });
        let delta = load as i64 - k.load as i64;
        k.load = load;
        k.tier = tier;
        self.count(channel, tier, relay, delta);
    }

    /// `relay` reported its machine-wide load while asking about `channel` (DISTRIBUTE):
    /// what the other channels are known to carry is not this channel's.
    pub fn observed_machine_load(
        &mut self,
        channel: ChannelId,
        tier: Tier,
        relay: NodeId,
        load: u32,
    ) {
        let others: u32 = self
            .known
            .range((relay, ChannelId(0))..=(relay, ChannelId(u32::MAX)))
            .filter(|((_, c), _)| *c != channel)
            .map(|(_, k)| k.load)
            .sum();
        self.observed_load(channel, tier, relay, load.saturating_sub(others));
    }

    /// A relay's heartbeat: its load per channel; channels it no longer reports
    /// count as logged off. Only channels `known` says exist are kept, so a report
    /// naming invented channels does not grow the maps (issue 11).
    pub fn observed_heartbeat(
        &mut self,
        tier: Tier,
        hb: &Heartbeat,
        known: impl Fn(ChannelId) -> bool,
    ) {
        let relay = hb.node;
        let gone: Vec<ChannelId> = self
            .known
            .range((relay, ChannelId(0))..=(relay, ChannelId(u32::MAX)))
            .map(|((_, c), _)| *c)
            .filter(|c| !hb.channels.iter().any(|r| r.channel == *c))
            .collect();
        for c in gone {
            let t = self.known[&(relay, c)].tier;
            self.observed_load(c, t, relay, 0);
            self.known.remove(&(relay, c));
        }
        for r in hb.channels.iter().filter(|r| known(r.channel)) {
            let load = (r.children.len() as u32).saturating_add(r.local_viewers);
            self.observed_load(r.channel, tier, relay, load);
        }
    }

    /// Entries kept (per relay and channel, per relay, per channel and tier): bounded
    /// by the relays and channels the coordinator knows.
    pub fn tracked(&self) -> usize {
        self.known.len() + self.relays.len() + self.tiers.len()
    }

    /// Entries kept for `channel` (per tier, and per relay on it).
    pub fn tracked_on(&self, channel: ChannelId) -> usize {
        let tiers = self.tiers.keys().filter(|(c, _)| *c == channel).count();
        tiers + self.known.keys().filter(|(_, c)| *c == channel).count()
    }

    /// `channel` was retired: its tiers' and relays' counts go.
    pub fn forget_channel(&mut self, channel: ChannelId) {
        self.tiers.retain(|(c, _), _| *c != channel);
        self.known.retain(|(_, c), _| *c != channel);
    }

    /// A relay left (crashed or unregistered): forget it.
    pub fn forget_relay(&mut self, relay: NodeId) {
        self.relays.remove(&relay);
        self.known.retain(|(r, _), _| *r != relay);
    }

    /// Ends the period when it is due: every count becomes an observed rate `y_t`.
    pub fn fold_if_due(&mut self, now: Timestamp) -> bool {
        if now < self.next_fold {
            return false;
        }
        let elapsed_ms = (now.saturating_since(self.last_fold) as f64 / 1000.0).max(1.0);
        for s in self.tiers.values_mut().chain(self.relays.values_mut()) {
            s.fold(elapsed_ms);
        }
        self.tiers.retain(|_, s| !s.is_quiet());
        let known = &self.known;
        self.relays.retain(|r, s| {
            !s.is_quiet()
                || known
                    .range((*r, ChannelId(0))..=(*r, ChannelId(u32::MAX)))
                    .next()
                    .is_some()
        });
        self.last_fold = now;
        self.next_fold = now.plus_millis(self.period_ms);
        true
    }

    /// SysLinRate: predicted logins per ms at the tier's relays for the channel.
    pub fn sys_login_rate(&self, channel: ChannelId, tier: Tier) -> f64 {
        self.tiers
            .get(&(channel, tier))
            .map_or(0.0, |s| s.login_rate())
    }

    pub fn sys_logoff_rate(&self, channel: ChannelId, tier: Tier) -> f64 {
        self.tiers
            .get(&(channel, tier))
            .map_or(0.0, |s| s.logoff_rate())
    }

    /// Loffrate_s: predicted logoffs per ms at `relay` (all channels).
    pub fn relay_logoff_rate(&self, relay: NodeId) -> f64 {
        self.relays.get(&relay).map_or(0.0, |s| s.logoff_rate())
    }

    pub fn relay_login_rate(&self, relay: NodeId) -> f64 {
        self.relays.get(&relay).map_or(0.0, |s| s.login_rate())
    }

    /// Net load the tier is expected to gain during `ms` (never negative).
    pub fn growth_over(&self, channel: ChannelId, tier: Tier, ms: u64) -> f64 {
        let net = self.sys_login_rate(channel, tier) - self.sys_logoff_rate(channel, tier);
        (net * ms as f64).max(0.0)
    }
}
impl Coordinator {
    /// The rate predictions (empty unless `prediction` is on).
    pub fn forecast(&self) -> &Forecast {
        &self.forecast
    }

    pub(crate) fn forecast_redirect(&mut self, channel: ChannelId, relay: NodeId) {
        if !self.cfg.prediction {
            return;
        }
        if let Some(tier) = self.registry.get(relay).map(|r| r.tier) {
            self.forecast.redirected(channel, tier, relay);
        }
    }

    pub(super) fn forecast_heartbeat(&mut self, from: NodeId, hb: &Heartbeat) {
        if !self.cfg.prediction || hb.node != from {
            return;
        }
        match self.registry.get(from) {
            Some(r) if r.role == NodeRole::Relay => {
                let tier = r.tier;
                let channels = &self.channels;
                self.forecast
                    .observed_heartbeat(tier, hb, |c| channels.contains_key(&c));
            }
            _ => {}
        }
    }

    /// Every ΔT/10: fold the counts into the predictions; forget relays that left.
    pub(crate) fn fold_forecast(&mut self, now: Timestamp) {
        if !self.cfg.prediction || !self.forecast.fold_if_due(now) {
            return;
        }
        let gone: Vec<NodeId> = self
            .forecast
            .relays
            .keys()
            .copied()
            .filter(|n| !self.registry.is_alive(*n))
            .collect();
        for n in gone {
            self.forecast.forget_relay(n);
        }
    }

    /// Room left in a relay (capacity minus the estimated load).
    pub(crate) fn room_of(&self, node: NodeId) -> u32 {
        self.registry
            .get(node)
            .filter(|r| r.alive)
            .map_or(0, |r| r.capacity.saturating_sub(self.load_of(node)))
    }

    /// Room left in the tier's active relays for the channel (each within the
    /// channel's share of it, C9).
    pub(crate) fn tier_room(&self, channel: ChannelId, tier: Tier) -> u64 {
        self.channels.get(&channel).map_or(0, |m| {
            m.active_in_tier(tier)
                .into_iter()
                .map(|n| self.room_for(n, channel) as u64)
                .sum()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercast_proto::{ChannelReport, LinkReport};

    fn hb(node: u32, channel: u32, children: usize, viewers: u32) -> Heartbeat {
        Heartbeat {
            node: NodeId(node),
            seq: 0,
            local_time_us: 0,
            load: children as u32 + viewers,
            capacity: 10,
            channels: vec![ChannelReport {
                channel: ChannelId(channel),
                parents: vec![],
                children: (0..children)
                    .map(|i| LinkReport {
                        peer: NodeId(1000 + i as u32),
                        last_seq: None,
                        last_block_time_us: None,
                        ..LinkReport::default()
                    })
                    .collect(),
                local_viewers: viewers,
                buffered_blocks: 0,
                first_seq: None,
                last_seq: None,
                ..Default::default()
            }],
            epoch: 0,
            manager_id: 0,
        }
    }

    #[test]
    fn redirects_and_heartbeat_deltas_become_rates() {
        let (c, t, r) = (ChannelId(1), 2, NodeId(7));
        let mut f = Forecast::new(Timestamp::ZERO, 0.9, 0.1, 1000);
        for _ in 0..300 {
            f.redirected(c, t, r);
        }
        // The heartbeat shows the 300 redirected viewers and 2 more (HTTP viewers that
        // came directly): 2 logins more, no logoff.
        f.observed_heartbeat(t, &hb(7, 1, 0, 302), |_| true);
        assert!(!f.fold_if_due(Timestamp::from_millis(999)));
        assert!(f.fold_if_due(Timestamp::from_millis(1000)));
        // y = 302 / 1000 ms: S = 0.9 · 0.302
        assert!((f.sys_login_rate(c, t) - 0.2718).abs() < 1e-12);
        assert!((f.relay_login_rate(r) - 0.2718).abs() < 1e-12);
        assert_eq!(f.relay_logoff_rate(r), 0.0);
        // 100 leave during the next second (y = 0.1 per ms), nobody arrives.
        f.observed_heartbeat(t, &hb(7, 1, 0, 202), |_| true);
        f.fold_if_due(Timestamp::from_millis(2000));
        assert!((f.relay_logoff_rate(r) - 0.09).abs() < 1e-12);
        assert!((f.sys_logoff_rate(c, t) - 0.09).abs() < 1e-12);
        // S_login = 0 + 0.1 · (0.2718 + 0.02718) = 0.029898
        assert!((f.sys_login_rate(c, t) - 0.029898).abs() < 1e-12);
        // A channel no longer reported: its load left.
        let mut empty = hb(7, 1, 0, 0);
        empty.channels.clear();
        f.observed_heartbeat(t, &empty, |_| true);
        f.fold_if_due(Timestamp::from_millis(3000));
        assert!(f.relay_logoff_rate(r) > 0.18);
    }

    #[test]
    fn machine_load_is_attributed_to_the_asking_channel() {
        let (t, r) = (1, NodeId(7));
        let mut f = Forecast::new(Timestamp::ZERO, 0.5, 0.5, 1000);
        f.observed_load(ChannelId(1), t, r, 4);
        f.observed_load(ChannelId(2), t, r, 6);
        // Machine load 13 while channel 2 is known to carry 6: channel 1 went 4 -> 7.
        f.observed_machine_load(ChannelId(1), t, r, 13);
        f.fold_if_due(Timestamp::from_millis(1000));
        // Logins at tier (1, 1): 4 + 3 = 7 in 1000 ms, S = 0.5 · 0.007
        assert!((f.sys_login_rate(ChannelId(1), t) - 0.0035).abs() < 1e-12);
    }
}
