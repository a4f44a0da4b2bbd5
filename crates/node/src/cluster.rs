//! The bottom cluster manager a node belongs to, per channel (C1, C8; seed 002:
//! "the clients can be informed in heartbeat message responses which DCMs to
//! join"). The coordinator answers a heartbeat that names another cluster than
//! the node's with `ClusterAssigned`; the node keeps it and reports it in every
//! heartbeat from then on. Being moved to another cluster changes no parent:
//! the new cluster's manager picks the node's next parents, the links it has
//! stay until something is wrong with them. A `ClusterAssigned` for a channel the
//! node does not carry changes nothing; one from anyone but the coordinator is
//! invalid (counted).

use crate::event::Event;
use crate::node::Node;
use tiercast_proto::{ChannelId, ClusterId};

impl Node {
    pub(crate) fn on_cluster_assigned(&mut self, channel: ChannelId, cluster: ClusterId) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if ch.cluster != cluster {
            ch.cluster = cluster;
            self.events
                .push_back(Event::ClusterAssigned { channel, cluster });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_fixture::{parent_ids, peer, CH};
    use crate::Event;
    use tiercast_proto::{ClusterId, Message, NodeId, Timestamp, COORDINATOR_ID};

    fn assign(n: &mut crate::Node, t: u64, from: NodeId, cluster: u32) {
        let msg = Message::ClusterAssigned {
            channel: CH,
            cluster: ClusterId(cluster),
        };
        n.handle_message(Timestamp(t), from, msg);
    }

    fn reported(n: &mut crate::Node, t: u64) -> ClusterId {
        let hb = n.heartbeat(Timestamp(t));
        hb.channels
            .iter()
            .find(|r| r.channel == CH)
            .expect("the channel is reported")
            .cluster
    }

    #[test]
    fn a_cluster_told_in_a_heartbeat_answer_is_reported_and_keeps_the_parents() {
        let mut n = peer();
        let before = parent_ids(&n);
        assert_eq!(reported(&mut n, 1), ClusterId(0), "none told yet");
        let _ = std::iter::from_fn(|| n.poll_event()).count();
        assign(&mut n, 10, COORDINATOR_ID, 7);
        assert_eq!(reported(&mut n, 11), ClusterId(7));
        assert_eq!(
            parent_ids(&n),
            before,
            "a move of cluster changes no parent"
        );
        assert!(std::iter::from_fn(|| n.poll_event()).any(|e| matches!(
            e,
            Event::ClusterAssigned { cluster, .. } if cluster == ClusterId(7)
        )));
        // Told again the same: nothing new.
        assign(&mut n, 12, COORDINATOR_ID, 7);
        assert_eq!(std::iter::from_fn(|| n.poll_event()).count(), 0);
    }

    #[test]
    fn only_the_coordinator_assigns_a_cluster() {
        let mut n = peer();
        assign(&mut n, 10, NodeId(5), 9);
        assert_eq!(reported(&mut n, 11), ClusterId(0));
        assert_eq!(n.stats().invalid_messages, 1);
    }
}
