//! Bursts and server farms (V6, seed 001 [0038]–[0043]). On each DISTRIBUTE of a
//! tier the coordinator measures the user arrival rate,
//! `New = Number_of_Proxies_assigned / (now − Last_DISTRIBUTE_time)`, averages it,
//! `Average = New + α·Average`, and sizes the next activation
//! `Round(Number_of_Proxies_assigned × Average / Old_Average)` (at least 1, at most
//! `max_farm_size` and the idle relays). The relays activated together form a server
//! farm: viewers are sent to its members round-robin, so they fill evenly, and the
//! first member's DISTRIBUTE counts for the whole farm (every member turns
//! contracting, one new activation round; the others' later DISTRIBUTEs are absorbed).

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::manager::RelayPhase;
use std::collections::BTreeSet;
use tiercast_proto::{ChannelId, NodeId, Tier, Timestamp};

/// The arrival-rate tuning of [0039]–[0041] for one (channel, tier). Rates are in
/// proxies per second.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrivalRate {
    pub last_distribute: Option<Timestamp>,
    /// Number_of_Proxies_assigned by the last round (1: the start-up relay).
    pub assigned: usize,
    /// Average_User_Arrival_Rate.
    pub average: f64,
}

impl Default for ArrivalRate {
    fn default() -> Self {
        ArrivalRate {
            last_distribute: None,
            assigned: 1,
            average: 0.0,
        }
    }
}

impl ArrivalRate {
    /// A DISTRIBUTE at `now` (`since`: when the tier was started, for the first one).
    /// Updates the average and returns the number of relays to assign, before limits.
    pub fn on_distribute(&mut self, now: Timestamp, since: Timestamp, alpha: f64) -> usize {
        let last = self.last_distribute.unwrap_or(since);
        let secs = (now.saturating_since(last) as f64 / 1e6).max(1e-3);
        let new_rate = self.assigned as f64 / secs;
        let old = self.average;
        self.average = new_rate + alpha * old;
        self.last_distribute = Some(now);
        if old > 0.0 {
            (self.assigned as f64 * self.average / old).round() as usize
        } else {
            self.assigned
        }
    }

    /// The relays actually assigned by this round (after the limits).
    pub fn committed(&mut self, assigned: usize) {
        self.assigned = assigned;
    }
}

/// Relays activated (or regrouped) together; new viewers go to them in turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Farm {
    pub members: Vec<NodeId>,
    /// The member the next viewer goes to.
    pub next: usize,
    pub formed_at: Timestamp,
}

/// Farms of one tier of one channel.
#[derive(Clone, Debug, Default)]
pub struct TierFarms {
    pub arrival: ArrivalRate,
    /// The farm new viewers go to (none after its DISTRIBUTE until the next round).
    pub current: Option<Farm>,
    /// Members of farms whose DISTRIBUTE was already handled.
    pub spent: BTreeSet<NodeId>,
}

/// Where a DISTRIBUTE sender stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FarmRole {
    /// A member of the tier's current farm: its request is the farm's.
    Current,
    /// A member of a farm that already asked: nothing more to do.
    Spent,
    Outside,
}

impl Coordinator {
    /// The next member of the tier's current farm with room (round-robin), if farms are on.
    pub(crate) fn farm_entry(&mut self, channel: ChannelId, tier: Tier) -> Option<NodeId> {
        if !self.cfg.farms {
            return None;
        }
        let m = self.channels.get(&channel)?;
        let farm = m.farms.get(&tier)?.current.as_ref()?;
        let len = farm.members.len();
        let pick = (0..len).map(|i| (farm.next + i) % len).find(|i| {
            let n = farm.members[*i];
            m.active
                .get(&n)
                .is_some_and(|a| a.phase == RelayPhase::Expanding)
                && self.room_for(n, channel) > 0
        })?;
        let node = farm.members[pick];
        let farm = self
            .channels
            .get_mut(&channel)?
            .farms
            .get_mut(&tier)?
            .current
            .as_mut()?;
        farm.next = (pick + 1) % len;
        Some(node)
    }

    pub(crate) fn farm_role(&self, channel: ChannelId, tier: Tier, node: NodeId) -> FarmRole {
        let Some(f) = self.channels.get(&channel).and_then(|m| m.farms.get(&tier)) else {
            return FarmRole::Outside;
        };
        if f.current
            .as_ref()
            .is_some_and(|c| c.members.contains(&node))
        {
            FarmRole::Current
        } else if f.spent.contains(&node) {
            FarmRole::Spent
        } else {
            FarmRole::Outside
        }
    }

    /// The current farm's DISTRIBUTE: every member turns contracting.
    pub(crate) fn spend_current_farm(&mut self, channel: ChannelId, tier: Tier) {
        let Some(m) = self.channels.get_mut(&channel) else {
            return;
        };
        let Some(farm) = m.farms.get_mut(&tier).and_then(|f| f.current.take()) else {
            return;
        };
        let f = m.farms.get_mut(&tier).expect("taken from it above");
        f.spent.extend(farm.members.iter().copied());
        // Members that left the VAN since are forgotten (keeps the set bounded).
        let active = &m.active;
        f.spent.retain(|n| active.contains_key(n));
        for n in &farm.members {
            if let Some(a) = m.active.get_mut(n) {
                a.phase = RelayPhase::Contracting;
            }
        }
        self.events.push_back(CoordEvent::FarmContracting {
            channel,
            tier,
            nodes: farm.members,
        });
    }

    /// The V6 arrival-rate proposal for this round (before limits).
    pub(crate) fn arrival_proposal(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        tier: Tier,
    ) -> usize {
        let alpha = self.cfg.alpha_arrival;
        let Some(m) = self.channels.get_mut(&channel) else {
            return 1;
        };
        let since = m
            .active
            .values()
            .filter(|a| a.tier == tier)
            .map(|a| a.activated_at)
            .min()
            .unwrap_or(now);
        m.farms
            .entry(tier)
            .or_default()
            .arrival
            .on_distribute(now, since, alpha)
    }

    pub(crate) fn commit_arrival(&mut self, channel: ChannelId, tier: Tier, assigned: usize) {
        if let Some(m) = self.channels.get_mut(&channel) {
            m.farms.entry(tier).or_default().arrival.committed(assigned);
        }
    }

    /// Activates up to `n` idle relays of the tier together; with farms on they become
    /// the tier's current farm. Each parent gets a slot booked per new child so the
    /// members do not all pile onto one parent.
    pub(crate) fn activate_group(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        region: crate::registry::RegionId,
        tier: Tier,
        n: usize,
    ) -> Vec<NodeId> {
        let mut nodes = Vec::new();
        for _ in 0..n {
            let Some(node) = self.idle_relays(channel, region, tier).first().copied() else {
                break;
            };
            self.activate(now, channel, node, tier);
            let Some(m) = self.channels.get(&channel) else {
                break;
            };
            let origin = m.origin;
            let parents = m.active.get(&node).map(|a| a.parents.clone());
            for p in parents.unwrap_or_default() {
                if p == origin {
                    continue;
                }
                self.registry.book_pending(p, 1);
            }
            nodes.push(node);
        }
        if self.cfg.farms && !nodes.is_empty() {
            self.form_farm(now, channel, tier, nodes.clone());
            self.events.push_back(CoordEvent::FarmActivated {
                channel,
                tier,
                nodes: nodes.clone(),
            });
        }
        nodes
    }

    fn form_farm(&mut self, now: Timestamp, channel: ChannelId, tier: Tier, members: Vec<NodeId>) {
        let Some(m) = self.channels.get_mut(&channel) else {
            return;
        };
        let f = m.farms.entry(tier).or_default();
        // A farm replaced before it asked had its round now: its members' later
        // DISTRIBUTEs are counted for it.
        if let Some(old) = f.current.take() {
            f.spent.extend(old.members);
        }
        for n in &members {
            f.spent.remove(n);
        }
        f.current = Some(Farm {
            members,
            next: 0,
            formed_at: now,
        });
    }

    /// V7's regrouping of existing relays (MIN_s): they become the tier's entry group
    /// (a farm when farms are on); contracting ones are told to expand again.
    pub(crate) fn regroup(
        &mut self,
        now: Timestamp,
        channel: ChannelId,
        tier: Tier,
        group: Vec<NodeId>,
    ) {
        let mut reactivate = Vec::new();
        let Some(m) = self.channels.get_mut(&channel) else {
            return;
        };
        for n in &group {
            if let Some(a) = m.active.get_mut(n) {
                if a.phase == RelayPhase::Contracting {
                    a.phase = RelayPhase::Expanding;
                    reactivate.push((*n, a.parents.clone()));
                }
            }
        }
        let desc = m.desc.clone();
        for (n, parents) in reactivate {
            let parents = self.parent_feeds(&parents);
            self.send_parent_set(
                n,
                desc.clone(),
                tiercast_proto::Placement::Tier {
                    tier,
                    activate: true,
                },
                parents,
            );
        }
        if self.cfg.farms {
            self.form_farm(now, channel, tier, group.clone());
        }
        self.events.push_back(CoordEvent::Regrouped {
            channel,
            tier,
            nodes: group,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::ArrivalRate;
    use tiercast_proto::Timestamp;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn first_distribute_keeps_the_count_and_sets_the_average() {
        let mut a = ArrivalRate::default();
        // One relay assigned at t = 0, DISTRIBUTE at 10 s: New = 1 / 10 s = 0.1.
        assert_eq!(a.on_distribute(at(10_000), at(0), 0.6), 1);
        assert!((a.average - 0.1).abs() < 1e-12);
        assert_eq!(a.last_distribute, Some(at(10_000)));
    }

    #[test]
    fn a_burst_grows_the_farm() {
        let mut a = ArrivalRate::default();
        a.on_distribute(at(10_000), at(0), 0.6);
        a.committed(1);
        // 0.5 s later: New = 1 / 0.5 = 2; Average = 2 + 0.6·0.1 = 2.06;
        // assign Round(1 · 2.06 / 0.1) = Round(20.6) = 21.
        assert_eq!(a.on_distribute(at(10_500), at(0), 0.6), 21);
        assert!((a.average - 2.06).abs() < 1e-12);
        a.committed(16); // limited by max_farm_size
                         // The farm of 16 filled in 1.6 s: New = 10; Average = 10 + 0.6·2.06 = 11.236;
                         // Round(16 · 11.236 / 2.06) = Round(87.27) = 87.
        assert_eq!(a.on_distribute(at(12_100), at(0), 0.6), 87);
        assert!((a.average - 11.236).abs() < 1e-9);
    }

    #[test]
    fn alpha_zero_follows_only_the_current_rate() {
        let mut a = ArrivalRate {
            last_distribute: Some(at(1_000)),
            assigned: 4,
            average: 10.0,
        };
        // 4 relays filled in 1.6 s: New = 2.5; Average = 2.5; Round(4 · 2.5 / 10) = 1.
        assert_eq!(a.on_distribute(at(2_600), at(0), 0.0), 1);
        assert!((a.average - 2.5).abs() < 1e-12);
    }

    #[test]
    fn alpha_one_weighs_all_history() {
        let mut a = ArrivalRate {
            last_distribute: Some(at(0)),
            assigned: 2,
            average: 4.0,
        };
        // New = 2 / 1 s = 2; Average = 2 + 1·4 = 6; Round(2 · 6 / 4) = 3.
        assert_eq!(a.on_distribute(at(1_000), at(0), 1.0), 3);
        assert!((a.average - 6.0).abs() < 1e-12);
    }

    #[test]
    fn nothing_assigned_last_time_gives_zero_before_limits() {
        let mut a = ArrivalRate {
            last_distribute: Some(at(0)),
            assigned: 0,
            average: 1.0,
        };
        // New = 0; Average = 0.5; Round(0 · 0.5) = 0 (the caller raises it to 1).
        assert_eq!(a.on_distribute(at(1_000), at(0), 0.5), 0);
    }
}
