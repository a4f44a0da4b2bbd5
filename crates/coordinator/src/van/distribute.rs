//! DISTRIBUTE (V4): a relay whose load reached the max threshold asks for help. The
//! coordinator moves it to the contracting phase (no new children are sent to it)
//! and activates an idle relay of the same tier, which becomes the tier's entry.
//!
//! With `farms` on (V6) a farm member's request is the whole farm's, and the round
//! activates as many relays as the arrival rate asks for (see [`crate::farm`]). With
//! `prediction` on (V7, seed 001 [0059]–[0061]) the round first asks whether the
//! tier's room covers the load predicted for the next `sp`: if not, it adds the
//! minimum number m of relays that does (as a farm); if it does, it regroups existing
//! relays — the least group of l relays that each have MIN_s ≤ l — as the new entry,
//! and activates one relay only when no such group exists.

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::farm::FarmRole;
use crate::manager::RelayPhase;
use crate::regroup::eligible_group;
use tiercast_proto::{ChannelId, NodeId, Tier, Timestamp};

/// What V7 decides for a DISTRIBUTE round.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Plan {
    /// The room will not cover sp: activate this many.
    Add(usize),
    /// The room covers sp: these relays become the entry group.
    Regroup(Vec<NodeId>),
    /// No prediction, or no eligible group: activate the usual count.
    Default,
}

impl Coordinator {
    pub(super) fn on_distribute(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        load: u32,
    ) {
        self.registry.set_load(from, load);
        let Some(m) = self.channels.get_mut(&channel) else {
            self.invalid(from, "distribute", "unknown channel");
            return;
        };
        let Some(a) = m.active.get_mut(&from) else {
            self.invalid(from, "distribute", "relay not active for the channel");
            return;
        };
        a.phase = RelayPhase::Contracting;
        let tier = a.tier;
        self.stats.distribute_events += 1;
        self.events.push_back(CoordEvent::DistributeRequested {
            channel,
            node: from,
            load,
        });
        if self.cfg.prediction {
            self.forecast
                .observed_machine_load(channel, tier, from, load);
        }
        if self.cfg.farms || self.cfg.prediction {
            self.distribute_round(now, from, channel, tier);
            return;
        }
        let region = self.region_of(from);
        match self.idle_relays(channel, region, tier).first().copied() {
            Some(n) => self.activate(now, channel, n, tier),
            None => self
                .events
                .push_back(CoordEvent::DistributeUnmet { channel, tier }),
        }
    }

    /// One V6/V7 activation round for the tier.
    fn distribute_round(&mut self, now: Timestamp, from: NodeId, channel: ChannelId, tier: Tier) {
        let region = self.region_of(from);
        if self.cfg.farms {
            match self.farm_role(channel, tier, from) {
                FarmRole::Spent => {
                    self.events.push_back(CoordEvent::DistributeAbsorbed {
                        channel,
                        node: from,
                    });
                    return;
                }
                FarmRole::Current => self.spend_current_farm(channel, tier),
                FarmRole::Outside => {}
            }
        }
        let by_arrival = if self.cfg.farms {
            self.arrival_proposal(now, channel, tier)
        } else {
            1
        };
        let plan = if self.cfg.prediction {
            self.predicted_plan(channel, tier, from)
        } else {
            Plan::Default
        };
        let want = match plan {
            Plan::Regroup(group) => {
                if self.cfg.farms {
                    self.commit_arrival(channel, tier, group.len());
                }
                self.regroup(now, channel, tier, group);
                return;
            }
            Plan::Add(m) => m,
            Plan::Default => by_arrival,
        };
        let idle = self.idle_relays(channel, region, tier).len();
        let n = want.max(1).min(self.cfg.max_farm_size.max(1)).min(idle);
        let activated = if n == 0 {
            Vec::new()
        } else {
            self.activate_group(now, channel, region, tier, n)
        };
        if self.cfg.farms {
            self.commit_arrival(channel, tier, activated.len());
        }
        if activated.is_empty() {
            self.events
                .push_back(CoordEvent::DistributeUnmet { channel, tier });
        }
    }

    /// V7 ([0059]–[0061]): does the tier's room cover the load predicted for sp?
    fn predicted_plan(&mut self, channel: ChannelId, tier: Tier, from: NodeId) -> Plan {
        let region = self.region_of(from);
        let sp = self.cfg.stability_sp_ms;
        let predicted = self.forecast.growth_over(channel, tier, sp).ceil() as u64;
        let room = self.tier_room(channel, tier);
        if predicted > room {
            let deficit = predicted - room;
            // The least m idle relays whose room covers the deficit (all of them if
            // even that is short: as many as can be activated).
            let mut covered = 0u64;
            let mut m = 0usize;
            for n in self.idle_relays(channel, region, tier) {
                if covered >= deficit || m >= self.cfg.max_farm_size {
                    break;
                }
                covered += self.room_for(n, channel) as u64;
                m += 1;
            }
            self.events.push_back(CoordEvent::PredictedDistribute {
                channel,
                tier,
                predicted: predicted.min(u32::MAX as u64) as u32,
                room: room.min(u32::MAX as u64) as u32,
                add: m,
            });
            return Plan::Add(m.max(1));
        }
        match eligible_group(&self.min_sizes(channel, tier, from)) {
            Some(group) => Plan::Regroup(group),
            None => Plan::Default,
        }
    }
}
