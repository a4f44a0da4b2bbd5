//! A channel the coordinator's service manager retired (C1: no origin and no
//! viewer for its `channel_retire_after_ms`): the node logs off the channel's
//! parents and forgets it — buffer, parents, children, its name — so a relay
//! that carried an abandoned channel holds nothing of it. A later announce of the
//! name is a new channel with a new id. A retirement of a channel this node does
//! not carry changes nothing (it may have left it already).

use crate::node::Node;
use tiercast_proto::{ChannelId, Message};

impl Node {
    pub(crate) fn on_channel_retired(&mut self, channel: ChannelId) {
        let Some(ch) = self.channels.get(&channel) else {
            return;
        };
        let name = ch.desc.name.clone();
        for p in ch.parents.ids() {
            self.send(p, Message::Logoff { channel });
        }
        self.watches.remove(&name);
        self.drop_channel(channel);
    }
}

#[cfg(test)]
mod tests {
    use crate::test_fixture::{logoffs, peer, CH};
    use crate::Event;
    use tiercast_proto::{Message, NodeId, Timestamp, COORDINATOR_ID};

    fn retire(n: &mut crate::Node, t: u64, from: NodeId) {
        n.handle_message(Timestamp(t), from, Message::ChannelRetired { channel: CH });
    }

    #[test]
    fn a_retired_channel_is_logged_off_and_forgotten() {
        let mut n = peer();
        let _ = std::iter::from_fn(|| n.poll_event()).count();
        retire(&mut n, 10, COORDINATOR_ID);
        assert!(n.channel(CH).is_none());
        assert!(n.channel_id("live").is_none());
        assert_eq!(logoffs(&mut n), vec![5, 6], "both parents logged off");
        assert!(std::iter::from_fn(|| n.poll_event())
            .any(|e| matches!(e, Event::Deactivated { channel } if channel == CH)));
        // Again: nothing carried, nothing changes.
        retire(&mut n, 11, COORDINATOR_ID);
        assert_eq!(n.stats().invalid_messages, 0);
        assert!(logoffs(&mut n).is_empty());
    }

    #[test]
    fn only_the_coordinator_retires_a_channel() {
        let mut n = peer();
        retire(&mut n, 10, NodeId(5));
        assert!(n.channel(CH).is_some(), "a parent cannot retire it");
        assert_eq!(n.stats().invalid_messages, 1);
    }
}
