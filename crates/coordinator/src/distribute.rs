//! DISTRIBUTE (V4): a relay whose load reached the max threshold asks for help. The
//! coordinator moves it to the contracting phase (no new children are sent to it)
//! and activates an idle relay of the same tier, which becomes the tier's entry.
//! (Bursts, farms and prediction — V6, V7 — build on this.)

use crate::coordinator::Coordinator;
use crate::event::CoordEvent;
use crate::manager::RelayPhase;
use tiercast_proto::{ChannelId, NodeId, Timestamp};

impl Coordinator {
    pub(crate) fn on_distribute(
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
        match self.idle_relays(channel, tier).first().copied() {
            Some(n) => self.activate(now, channel, n, tier),
            None => self
                .events
                .push_back(CoordEvent::DistributeUnmet { channel, tier }),
        }
    }
}
