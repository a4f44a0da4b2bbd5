//! Monitoring of the parent tier (V10): a relay reports a parent link that went
//! bad — its connection died, or it stayed silent for `parent_silence_ms` while
//! another parent of the same channel kept delivering — to the coordinator with
//! `LinkDowngrade`, once, until that parent delivers again or is replaced. The
//! coordinator answers with a new parent set (C1), a migration to a sibling, or a new
//! parent. A LOGIN left unanswered for `parent_silence_ms` (lost in a partition, or
//! the parent gone) counts as a refusal: the link goes back to assigned, is
//! reported the same way, and its LOGIN is sent again on the heartbeat timer
//! (issue 10: a request that got no answer is retried). A parent whose blocks
//! fail the origin signature check [`crate::parents::FORGED_RUN_REPORTED`]
//! times in a row is reported the same way at once (`forward.rs`, X3).

use crate::event::Event;
use crate::node::Node;
use crate::parents::ParentState;
use tiercast_proto::{ChannelId, Message, NodeId, NodeRole, Timestamp, COORDINATOR_ID};

impl Node {
    /// Checks every channel's parents; called on the heartbeat timer.
    pub(crate) fn monitor_parents(&mut self, now: Timestamp) {
        let silence_us = self.cfg.parent_silence_ms.saturating_mul(1000);
        if silence_us == 0 || !matches!(self.cfg.role, NodeRole::Relay | NodeRole::Peer) {
            return;
        }
        let mut reports = Vec::new();
        let mut unanswered = Vec::new();
        for (id, ch) in self.channels.iter_mut() {
            for p in ch.parents.logins_unanswered(now, silence_us) {
                unanswered.push((*id, p));
            }
            if !ch.logged_in {
                continue;
            }
            let newest = ch.newest_block_at();
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
                // A lazy link pushes nothing: its silence says nothing.
                let pushes = l.feed != tiercast_proto::Feed::Lazy;
                if l.state == ParentState::Connected && pushes && silent && !l.downgraded {
                    reports.push((*id, *p));
                }
            }
        }
        for (channel, parent) in unanswered {
            let Some(ch) = self.channels.get_mut(&channel) else {
                continue;
            };
            ch.parents.set_state(parent, ParentState::Assigned);
            self.events
                .push_back(Event::LoginUnanswered { channel, parent });
            reports.push((channel, parent));
        }
        for (channel, parent) in reports {
            self.report_downgrade(channel, parent);
        }
    }

    /// Protocol viewer: when its stream falls silent for `parent_silence_ms` (since
    /// the last block, or since it logged in if none came) — typically its relay died
    /// and the link has not timed out yet — the deadline to give up on that relay.
    pub(crate) fn viewer_silence_deadline(&self) -> Option<Timestamp> {
        if self.cfg.role != NodeRole::Viewer || self.cfg.viewer_silence_ms == 0 {
            return None;
        }
        self.channels
            .values()
            .filter(|c| c.logged_in)
            .filter_map(|c| c.silent_since())
            .map(|t| t.plus_millis(self.cfg.viewer_silence_ms))
            .min()
    }

    /// Protocol viewer: gives up on relays that fell silent and asks the coordinator
    /// again (V10 for the viewer's own link).
    pub(crate) fn check_viewer_silence(&mut self, now: Timestamp) {
        let Some(deadline) = self.viewer_silence_deadline() else {
            return;
        };
        if now < deadline {
            return;
        }
        let silence = self.cfg.viewer_silence_ms;
        let silent: Vec<(ChannelId, NodeId)> = self
            .channels
            .values()
            .filter(|c| c.logged_in)
            .filter(|c| {
                c.silent_since()
                    .is_some_and(|t| now >= t.plus_millis(silence))
            })
            .flat_map(|c| c.parents.ids().into_iter().map(move |p| (c.desc.id, p)))
            .collect();
        for (channel, p) in silent {
            // In case it is alive after all, it should not keep counting us.
            self.send(p, Message::Logoff { channel });
            self.peer_lost(now, p);
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

    /// Relay 21, registered, active in channel 1 with parents 11 and 12, and a
    /// child (99) that makes it log in at both.
    fn relay_with_two_parents(cfg: NodeConfig) -> (Node, ChannelId) {
        let mut n = crate::test_fixture::registered(cfg);
        let coord = tiercast_proto::COORDINATOR_ID;
        let ch = ChannelId(1);
        let desc = ChannelDesc {
            id: ch,
            name: "live".into(),
            public_key: [0; 32],
        };
        n.handle_message(
            Timestamp::ZERO,
            coord,
            Message::ParentSet {
                channel: desc,
                version: 1,
                placement: tiercast_proto::Placement::Tier {
                    tier: 2,
                    activate: true,
                },
                parents: vec![peer(11), peer(12)]
                    .into_iter()
                    .map(|peer| tiercast_proto::PeerFeed {
                        peer,
                        feed: tiercast_proto::Feed::All,
                    })
                    .collect(),
            },
        );
        n.handle_message(
            Timestamp::ZERO,
            NodeId(99),
            Message::Login {
                channel: ch,
                from_seq: None,
                feed: tiercast_proto::Feed::All,
            },
        );
        (n, ch)
    }

    #[test]
    fn a_silent_parent_is_reported_once_while_another_delivers() {
        let cfg = NodeConfig {
            id: NodeId(21),
            verify_blocks: false,
            ..NodeConfig::default()
        };
        let (mut n, ch) = relay_with_two_parents(cfg);
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

    #[test]
    fn a_login_that_gets_no_answer_is_reported_and_sent_again() {
        let cfg = NodeConfig {
            id: NodeId(21),
            verify_blocks: false,
            heartbeat_interval_ms: 1000,
            parent_silence_ms: 2000,
            ..NodeConfig::default()
        };
        // The child makes it log in at both parents; only 12 answers (the LOGIN
        // to 11 was lost in a partition).
        let (mut n, ch) = relay_with_two_parents(cfg);
        let logins = |n: &mut Node| -> (Vec<u32>, Vec<u32>) {
            let (mut l, mut d) = (Vec::new(), Vec::new());
            while let Some(t) = n.poll_transmit() {
                match t.msg {
                    Message::Login { .. } => l.push(t.to.0),
                    Message::LinkDowngrade { parent, .. } => d.push(parent.0),
                    _ => {}
                }
            }
            (l, d)
        };
        assert_eq!(logins(&mut n).0, vec![11, 12]);
        n.handle_message(
            Timestamp::ZERO,
            NodeId(12),
            Message::LoginAccepted { channel: ch },
        );
        let mut again = Vec::new();
        for s in 1..=6u64 {
            let t = Timestamp::from_millis(s * 1000);
            n.handle_timeout(t);
            let (l, d) = logins(&mut n);
            if !l.is_empty() || !d.is_empty() {
                again.push((s, l, d));
            }
        }
        // Sent at 0, unanswered for 2 s at 2 s: reported once and sent again; the
        // second LOGIN unanswered too, sent again every 2 s (reported once until
        // it delivers).
        assert_eq!(
            again,
            vec![
                (2, vec![11], vec![11]),
                (4, vec![11], vec![]),
                (6, vec![11], vec![])
            ],
            "the lost LOGIN is retried, the answered one is not"
        );
        let unanswered = std::iter::from_fn(|| n.poll_event())
            .filter(|e| matches!(e, crate::Event::LoginUnanswered { .. }))
            .count();
        assert_eq!(unanswered, 3);
    }

    #[test]
    fn a_viewer_gives_up_on_a_silent_relay_and_asks_again() {
        let cfg = NodeConfig {
            id: NodeId(100),
            role: tiercast_proto::NodeRole::Viewer,
            capacity: 0,
            verify_blocks: false,
            send_heartbeats: false,
            viewer_silence_ms: 2000,
            ..NodeConfig::default()
        };
        let mut n = crate::test_fixture::registered(cfg);
        let coord = tiercast_proto::COORDINATOR_ID;
        n.watch(Timestamp::ZERO, "live");
        let ch = ChannelId(1);
        let desc = ChannelDesc {
            id: ch,
            name: "live".into(),
            public_key: [0; 32],
        };
        n.handle_message(
            Timestamp::ZERO,
            coord,
            Message::WatchAt {
                channel: desc,
                relay: peer(21),
            },
        );
        n.handle_message(
            Timestamp::ZERO,
            NodeId(21),
            Message::LoginAccepted { channel: ch },
        );
        for s in 0..10u64 {
            let t = Timestamp::from_millis(s * 100);
            n.handle_message(
                t,
                NodeId(21),
                Message::Block(Block::new(ch, s, t, s == 0, Bytes::from_static(b"x"))),
            );
        }
        while n.poll_transmit().is_some() {}
        // Blocks stop at 0.9 s: the deadline is 2 s later.
        assert_eq!(n.poll_timeout(), Some(Timestamp::from_millis(2900)));
        n.handle_timeout(Timestamp::from_millis(2900));
        let sent: Vec<(NodeId, &'static str)> = std::iter::from_fn(|| n.poll_transmit())
            .map(|t| (t.to, t.msg.kind()))
            .collect();
        assert_eq!(sent, vec![(NodeId(21), "logoff")]);
        assert!(
            n.channel(ch).is_none(),
            "the channel is dropped until the coordinator answers"
        );
        // The coordinator is asked again after the retry delay.
        n.handle_timeout(Timestamp::from_millis(3500));
        let sent: Vec<&'static str> = std::iter::from_fn(|| n.poll_transmit())
            .map(|t| t.msg.kind())
            .collect();
        assert_eq!(sent, vec!["watch"]);
    }

    #[test]
    fn a_refused_login_is_sent_again_after_1_2_4_then_every_8_intervals_and_an_accepted_one_resets_it(
    ) {
        let cfg = NodeConfig {
            id: NodeId(21),
            verify_blocks: false,
            heartbeat_interval_ms: 1000,
            parent_silence_ms: 60_000,
            ..NodeConfig::default()
        };
        let (mut n, ch) = relay_with_two_parents(cfg);
        n.handle_message(
            Timestamp::ZERO,
            NodeId(12),
            Message::LoginAccepted { channel: ch },
        );
        let logins_to_11 = |n: &mut Node| {
            std::iter::from_fn(|| n.poll_transmit())
                .filter(|t| matches!(t.msg, Message::Login { .. }) && t.to == NodeId(11))
                .count()
        };
        let _ = logins_to_11(&mut n);
        // Parent 11 refuses every LOGIN at once.
        let deny = |n: &mut Node, ms: u64| {
            n.handle_message(
                Timestamp::from_millis(ms),
                NodeId(11),
                Message::LoginDenied {
                    channel: ch,
                    reason: tiercast_proto::DenyReason::Full,
                },
            );
        };
        deny(&mut n, 0);
        let mut sent_at = Vec::new();
        for s in 1..=40u64 {
            n.handle_timeout(Timestamp::from_millis(s * 1000));
            if logins_to_11(&mut n) > 0 {
                sent_at.push(s);
                deny(&mut n, s * 1000);
            }
        }
        assert_eq!(sent_at, vec![1, 3, 7, 15, 23, 31, 39]);
        // A parent that does not carry the channel is asked at the next interval.
        n.handle_message(
            Timestamp::from_millis(40_500),
            NodeId(11),
            Message::LoginDenied {
                channel: ch,
                reason: tiercast_proto::DenyReason::NotActive,
            },
        );
        n.handle_timeout(Timestamp::from_millis(41_000));
        assert_eq!(logins_to_11(&mut n), 1, "not full: no backoff");
        // Accepted at last: the next refusal waits one interval again.
        n.handle_message(
            Timestamp::from_millis(41_000),
            NodeId(11),
            Message::LoginAccepted { channel: ch },
        );
        deny(&mut n, 41_500);
        n.handle_timeout(Timestamp::from_millis(42_000));
        assert_eq!(logins_to_11(&mut n), 0, "one interval from the refusal");
        n.handle_timeout(Timestamp::from_millis(43_000));
        assert_eq!(logins_to_11(&mut n), 1);
    }
}
