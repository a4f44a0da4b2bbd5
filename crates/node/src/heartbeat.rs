//! Heartbeats (D8): every heartbeat interval a node reports to the coordinator its
//! parents and children per channel with the last seq and time on each link (C2),
//! its buffer per channel, its load and capacity, and the middle level's loss on
//! its coded links (D5, see [`crate::middle`]).

use crate::node::Node;
use tiercast_proto::{ChannelReport, Heartbeat, LinkReport, Message, Timestamp, COORDINATOR_ID};

impl Node {
    pub fn heartbeat(&self, now: Timestamp) -> Heartbeat {
        let channels = self
            .channels
            .iter()
            .map(|(id, ch)| ChannelReport {
                channel: *id,
                parents: ch
                    .parents
                    .iter()
                    .map(|(p, l)| LinkReport {
                        peer: *p,
                        last_seq: l.last_seq,
                        last_block_time_us: l.last_block_at.map(|t| t.as_micros()),
                        feed: l.feed,
                    })
                    .collect(),
                children: ch
                    .children
                    .nodes
                    .iter()
                    .map(|(c, l)| LinkReport {
                        peer: *c,
                        last_seq: l.last_seq_sent,
                        last_block_time_us: l.last_sent_at.map(|t| t.as_micros()),
                        feed: l.feed,
                    })
                    .collect(),
                local_viewers: ch.children.viewers.len() as u32,
                buffered_blocks: ch.buffer.len() as u32,
                first_seq: ch.buffer.lowest_held(),
                last_seq: ch.buffer.highest_seq(),
                missing_blocks: ch.buffer.missing_total(),
                shards_expected: ch.middle.shards_expected,
                shards_received: ch.middle.shards_received,
                groups_rebuilt: ch.middle.groups_rebuilt,
                cluster: ch.cluster,
            })
            .collect();
        Heartbeat {
            node: self.cfg.id,
            seq: self.heartbeat_seq,
            local_time_us: now.as_micros(),
            load: self.machine_load(),
            capacity: self.cfg.capacity,
            channels,
            epoch: self.coordinator_epoch,
            manager_id: self.cfg.manager_id,
        }
    }

    pub(crate) fn send_heartbeat(&mut self, now: Timestamp) {
        if self.registered {
            self.send_heartbeat_now(now);
        }
    }

    /// Sends a heartbeat registered or not (a re-registering node sends its links
    /// right behind its Register).
    pub(crate) fn send_heartbeat_now(&mut self, now: Timestamp) {
        if !self.cfg.send_heartbeats {
            return;
        }
        let hb = self.heartbeat(now);
        self.heartbeat_seq += 1;
        self.send(COORDINATOR_ID, Message::Heartbeat(hb));
    }
}
