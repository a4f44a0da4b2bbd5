//! Monitoring of the parent tier (V10): a relay reports a parent link that went
//! bad — its connection died, or it stayed silent for `parent_silence_ms` while
//! another parent of the same channel kept delivering — to the coordinator with
//! `LinkDowngrade`, once, until that parent delivers again or is replaced. The
//! coordinator answers with SwitchToParent, a migration to a sibling, or a new
//! parent.

use crate::event::Event;
use crate::node::Node;
use crate::parents::ParentState;
use tiercast_proto::{ChannelId, Message, NodeId, NodeRole, Timestamp, COORDINATOR_ID};

impl Node {
    /// Checks every channel's parents; called on the heartbeat timer.
    pub(crate) fn monitor_parents(&mut self, now: Timestamp) {
        let silence_us = self.cfg.parent_silence_ms.saturating_mul(1000);
        if silence_us == 0 || self.cfg.role != NodeRole::Relay {
            return;
        }
        let mut reports = Vec::new();
        for (id, ch) in self.channels.iter() {
            if !ch.logged_in {
                continue;
            }
            let newest = ch.parents.iter().filter_map(|(_, l)| l.last_block_at).max();
            let Some(newest) = newest else { continue };
            if now.saturating_since(newest) > silence_us {
                // Nobody delivers: the stream itself may be stalled; nothing to compare.
                continue;
            }
            for (p, l) in ch.parents.iter() {
                // Silent since its last block, or since it connected if it never sent one.
                let silent = match l.last_block_at.or(l.connected_at) {
                    Some(t) => now.saturating_since(t) > silence_us,
                    None => false,
                };
                if l.state == ParentState::Connected && silent && !l.downgraded {
                    reports.push((*id, *p));
                }
            }
        }
        for (channel, parent) in reports {
            self.report_downgrade(channel, parent);
        }
    }

    /// Sends one LinkDowngrade for `parent` on `channel`.
    pub(crate) fn report_downgrade(&mut self, channel: ChannelId, parent: NodeId) {
        let Some(link) = self
            .channels
            .get_mut(&channel)
            .and_then(|c| c.parents.get_mut(parent))
        else {
            return;
        };
        if link.downgraded {
            return;
        }
        link.downgraded = true;
        self.send(COORDINATOR_ID, Message::LinkDowngrade { channel, parent });
        self.events
            .push_back(Event::LinkDowngradeSent { channel, parent });
    }
}

#[cfg(test)]
mod tests {
    use crate::{Node, NodeConfig};
    use bytes::Bytes;
    use tiercast_proto::{Block, ChannelDesc, ChannelId, Message, NodeId, PeerInfo, Timestamp};

    fn peer(id: u32) -> PeerInfo {
        PeerInfo {
            id: NodeId(id),
            addr: String::new(),
            http_addr: String::new(),
        }
    }

    fn downgrades(n: &mut Node) -> Vec<NodeId> {
        let mut v = Vec::new();
        while let Some(t) = n.poll_transmit() {
            if let Message::LinkDowngrade { parent, .. } = t.msg {
                v.push(parent);
            }
        }
        v
    }

    #[test]
    fn a_silent_parent_is_reported_once_while_another_delivers() {
        let cfg = NodeConfig {
            id: NodeId(21),
            verify_blocks: false,
            ..NodeConfig::default()
        };
        let mut n = Node::new(cfg, Timestamp::ZERO);
        let coord = tiercast_proto::COORDINATOR_ID;
        n.handle_message(
            Timestamp::ZERO,
            coord,
            Message::Registered {
                heartbeat_interval_ms: 1000,
            },
        );
        let ch = ChannelId(1);
        let desc = ChannelDesc {
            id: ch,
            name: "live".into(),
            public_key: [0; 32],
        };
        n.handle_message(
            Timestamp::ZERO,
            coord,
            Message::Activate {
                channel: desc,
                tier: 2,
                parents: vec![peer(11), peer(12)],
            },
        );
        n.handle_message(
            Timestamp::ZERO,
            NodeId(99),
            Message::Login {
                channel: ch,
                from_seq: None,
            },
        );
        n.handle_message(
            Timestamp::ZERO,
            NodeId(11),
            Message::LoginAccepted { channel: ch },
        );
        n.handle_message(
            Timestamp::ZERO,
            NodeId(12),
            Message::LoginAccepted { channel: ch },
        );
        // Only parent 12 delivers, for 3 s.
        for s in 0..30u64 {
            let t = Timestamp::from_millis(s * 100);
            let b = Block::new(ch, s, t, s == 0, Bytes::from_static(b"x"));
            n.handle_message(t, NodeId(12), Message::Block(b));
        }
        downgrades(&mut n);
        n.handle_timeout(Timestamp::from_millis(3000));
        assert_eq!(downgrades(&mut n), vec![NodeId(11)]);
        n.handle_timeout(Timestamp::from_millis(4000));
        assert!(downgrades(&mut n).is_empty(), "reported once");
    }
}
