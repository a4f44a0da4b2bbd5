//! Relaying rules applied (C3's client rules → C4, C6): a node whose device
//! class may not relay (`client.device_class` with `deny = "relay"`), or that is
//! inside its `client.no_relay_hours`, is given no children. It joins a peer
//! overlay with no uplink — no slot to find, and admission (`peers/admission.rs`)
//! counts none of its slots — and when its hours begin, a member that had uplink
//! leaves its place (its children are re-homed, C6) and is placed again as a
//! leaf; when they end, its declared uplink is back (its slots count at once and
//! a full recomputation gives it children).
//!
//! The hour: `Timestamp` is µs since the machine's clock started;
//! `CoordinatorConfig::clock_epoch_unix_s` is the Unix time of `Timestamp` 0
//! (0 in the simulator: its clock starts at midnight UTC; the network driver
//! sets its start time), so the UTC hour is `(epoch + now_s) / 3600 mod 24`.
//! The rules are looked at when the hour changes and when a file is installed,
//! never otherwise: with no relaying rule in force nothing is scanned.

use super::file::DeviceDeny;
use super::parent_rules::parent_policy;
use super::Policies;
use crate::coordinator::Coordinator;
use tiercast_proto::{ChannelId, DeviceClass, NodeId, Timestamp};

impl Policies {
    /// Whether any rule may forbid a node to relay.
    pub fn has_relay_rules(&self) -> bool {
        let c = &self.file.client;
        !c.no_relay_hours.is_empty() || c.device_class.iter().any(|r| r.deny == DeviceDeny::Relay)
    }
}

/// The UTC hour (0..=23) at `now` for a clock whose 0 is `epoch_unix_s`.
pub fn utc_hour(epoch_unix_s: u64, now: Timestamp) -> u8 {
    let s = epoch_unix_s.saturating_add(now.as_micros() / 1_000_000);
    ((s / 3600) % 24) as u8
}

impl Coordinator {
    /// The UTC hour at `now` (see the module doc).
    pub fn utc_hour(&self, now: Timestamp) -> u8 {
        utc_hour(self.cfg.clock_epoch_unix_s, now)
    }

    /// Whether node `id` may feed others at `now` under the policies in force.
    pub fn may_relay(&self, now: Timestamp, id: NodeId) -> bool {
        let p = &self.policy.policies;
        if !p.has_relay_rules() {
            return true;
        }
        let class = self
            .registry
            .get(id)
            .map_or(DeviceClass::Unspecified, |r| r.device_class);
        p.relay_allowed(class.name(), self.utc_hour(now))
    }

    /// Applies the relaying rules to every peer overlay when the hour changed
    /// since the last time, or when `force` (a file was installed).
    pub(crate) fn enforce_relay_rules(&mut self, now: Timestamp, force: bool) {
        let hour = self.utc_hour(now);
        let new_hour = self.relay_hour != Some(hour);
        self.relay_hour = Some(hour);
        let due = new_hour && self.policy.policies.has_relay_rules();
        if !force && !due {
            return;
        }
        let chans: Vec<ChannelId> = self.peers.keys().copied().collect();
        for c in chans {
            if self.apply_relay_rules(now, c) {
                self.flush_peers(now, c);
            }
        }
    }

    /// One overlay: members that may no longer relay lose their uplink (and
    /// their children), members that may again get it back. True on a change.
    fn apply_relay_rules(&mut self, now: Timestamp, channel: ChannelId) -> bool {
        let Some(o) = self.peers.get(&channel) else {
            return false;
        };
        let mut stop = Vec::new();
        let mut resume = Vec::new();
        for (id, uplink) in o.peer_uplinks() {
            // Its channel's share of the uplink (C9), the whole of it on one channel.
            let declared = self
                .registry
                .get(id)
                .map_or(0, |r| u64::from(r.uplink_kbps) * 1000);
            let declared = self.uplinks.share(id, channel).unwrap_or(declared);
            let may = self.may_relay(now, id);
            if !may && uplink > 0 {
                stop.push(id);
            } else if may && uplink == 0 && declared > 0 {
                resume.push((id, declared));
            }
        }
        if stop.is_empty() && resume.is_empty() {
            return false;
        }
        let rules = self.parent_rules.clone();
        let policy = parent_policy(&rules);
        let pc = self.cfg.peers.clone();
        let Some(o) = self.peers.get_mut(&channel) else {
            return false;
        };
        for id in stop {
            o.stop_relaying(now, id, &pc, policy);
        }
        for (id, declared) in resume {
            o.resume_relaying(id, declared);
        }
        true
    }
}
