//! The channel's description as the coordinator last gave it (X3, D7): a restarted
//! or replaced origin may sign with a new key; the coordinator announces it with
//! `ChannelUpdate` (and in every `ParentSet` and `WatchAt`), and a node
//! carrying the channel verifies blocks against the new key from then on. Only the
//! coordinator can change a key: a parent's `Redirect` never does.

use crate::event::Event;
use crate::node::Node;
use tiercast_proto::{ChannelDesc, OriginVerifier, COORDINATOR_ID};

impl Node {
    /// Takes the coordinator's description of a channel this node carries.
    pub(crate) fn learn_desc(&mut self, desc: &ChannelDesc) {
        let Some(ch) = self.channels.get_mut(&desc.id) else {
            return;
        };
        if ch.desc.name != desc.name {
            self.invalid(
                COORDINATOR_ID,
                "channel_update",
                "channel id given to another name",
            );
            return;
        }
        if ch.desc.public_key != desc.public_key {
            ch.verifier = OriginVerifier::new(desc.public_key);
            ch.desc.public_key = desc.public_key;
            self.events
                .push_back(Event::ChannelKeyChanged { channel: desc.id });
        }
    }

    pub(crate) fn on_channel_update(&mut self, desc: ChannelDesc) {
        if !self.channels.contains_key(&desc.id) {
            self.invalid(COORDINATOR_ID, "channel_update", "channel not carried");
            return;
        }
        self.learn_desc(&desc);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Event, Node, NodeConfig};
    use bytes::Bytes;
    use tiercast_proto::{
        Block, ChannelDesc, ChannelId, Message, NodeId, NodeRole, OriginKey, PeerInfo, Timestamp,
        COORDINATOR_ID,
    };

    fn relay_with_channel(key: &OriginKey) -> (Node, ChannelDesc) {
        let cfg = NodeConfig {
            id: NodeId(5),
            role: NodeRole::Relay,
            tier: 1,
            ..NodeConfig::default()
        };
        let mut n = Node::new(cfg, Timestamp(0));
        n.handle_message(
            Timestamp(1),
            COORDINATOR_ID,
            Message::Registered {
                heartbeat_interval_ms: 1000,
            },
        );
        let desc = ChannelDesc {
            id: ChannelId(1),
            name: "live".into(),
            public_key: key.public_key(),
        };
        let origin = PeerInfo {
            id: NodeId(9),
            addr: "o".into(),
            http_addr: "o".into(),
        };
        n.handle_message(
            Timestamp(2),
            COORDINATOR_ID,
            Message::ParentSet {
                channel: desc.clone(),
                version: 1,
                placement: tiercast_proto::Placement::Tier {
                    tier: 1,
                    activate: true,
                },
                parents: vec![tiercast_proto::PeerFeed {
                    peer: origin,
                    feed: tiercast_proto::Feed::All,
                }],
            },
        );
        n.handle_message(
            Timestamp(3),
            NodeId(9),
            Message::LoginAccepted {
                channel: ChannelId(1),
            },
        );
        (n, desc)
    }

    fn signed(key: &OriginKey, seq: u64) -> Block {
        let mut b = Block::new(
            ChannelId(1),
            seq,
            Timestamp(seq),
            true,
            Bytes::from_static(b"x"),
        );
        key.sign(&mut b);
        b
    }

    fn rejected(n: &mut Node) -> usize {
        std::iter::from_fn(|| n.poll_event())
            .filter(|e| matches!(e, Event::BlockRejected { .. }))
            .count()
    }

    #[test]
    fn a_new_origin_key_from_the_coordinator_is_used_and_a_parent_cannot_change_it() {
        let old = OriginKey::generate().unwrap();
        let new = OriginKey::generate().unwrap();
        let (mut n, desc) = relay_with_channel(&old);
        n.handle_message(Timestamp(4), NodeId(9), Message::Block(signed(&old, 0)));
        n.handle_message(Timestamp(5), NodeId(9), Message::Block(signed(&new, 1)));
        assert_eq!(
            rejected(&mut n),
            1,
            "a block under an unknown key is refused"
        );
        let rotated = ChannelDesc {
            public_key: new.public_key(),
            ..desc
        };
        n.handle_message(
            Timestamp(6),
            COORDINATOR_ID,
            Message::ChannelUpdate { channel: rotated },
        );
        assert!(std::iter::from_fn(|| n.poll_event())
            .any(|e| matches!(e, Event::ChannelKeyChanged { .. })));
        n.handle_message(Timestamp(7), NodeId(9), Message::Block(signed(&new, 2)));
        n.handle_message(Timestamp(8), NodeId(9), Message::Block(signed(&old, 3)));
        assert_eq!(
            rejected(&mut n),
            1,
            "only the old key's block is refused now"
        );
        let ch = n.channel(ChannelId(1)).unwrap();
        assert!(ch.buffer.get(2).is_some() && ch.buffer.get(3).is_none());
    }
}
