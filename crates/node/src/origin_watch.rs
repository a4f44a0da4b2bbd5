//! The tier-1 relays' watch on the channel's origin (D7, issue 12: the backup
//! origin promoted in well under a GOP). The parent of a tier-1 relay is the
//! origin: when it stops, it is a relay's *only* parent that falls silent, and
//! the general rule of `monitor.rs` (a parent silent while another delivers)
//! never fires — the relay cannot tell a dead origin from a paused encoder.
//! So a tier-1 relay reports a parent that delivered and then stayed silent
//! for `origin_silence_ms` at once (`LinkDowngrade`, once until it delivers
//! again), on its own deadline rather than the heartbeat tick; the coordinator
//! decides (`coordinator::content_directory::backup`: it probes the origin and
//! promotes the standby only if the origin does not answer). A `Probe` from
//! the coordinator is answered at once with a heartbeat.

use crate::node::Node;
use crate::parents::ParentState;
use tiercast_proto::{ChannelId, Feed, NodeId, NodeRole, Timestamp};

impl Node {
    /// The pushing, connected parents of tier-1 channels that delivered, not
    /// reported yet, with when each falls silent past `origin_silence_ms`.
    fn origin_silence_deadlines(
        &self,
    ) -> impl Iterator<Item = (ChannelId, NodeId, Timestamp)> + '_ {
        let silence_ms = self.cfg.origin_silence_ms;
        let watching = silence_ms > 0 && self.cfg.role == NodeRole::Relay;
        self.channels
            .iter()
            .filter(move |(_, c)| watching && c.tier == 1 && c.logged_in && !c.member)
            .flat_map(move |(id, c)| {
                c.parents.iter().filter_map(move |(p, l)| {
                    let live = l.state == ParentState::Connected && l.feed != Feed::Lazy;
                    let t = l.last_block_at?;
                    (live && !l.downgraded).then(|| (*id, *p, t.plus_millis(silence_ms)))
                })
            })
    }

    /// When the next origin falls silent (for `poll_timeout`).
    pub(crate) fn origin_silence_deadline(&self) -> Option<Timestamp> {
        self.origin_silence_deadlines().map(|(_, _, t)| t).min()
    }

    /// Reports every origin link silent past its deadline (once each).
    pub(crate) fn check_origin_silence(&mut self, now: Timestamp) {
        let due: Vec<(ChannelId, NodeId)> = self
            .origin_silence_deadlines()
            .filter(|(_, _, t)| *t <= now)
            .map(|(c, p, _)| (c, p))
            .collect();
        for (channel, parent) in due {
            self.report_downgrade(channel, parent);
        }
    }

    /// The coordinator asks whether this origin is alive: a heartbeat now.
    pub(crate) fn on_probe(&mut self, now: Timestamp) {
        self.send_heartbeat(now);
    }
}

#[cfg(test)]
mod tests {
    use crate::test_fixture::{all, set, CH};
    use crate::{Node, NodeConfig};
    use bytes::Bytes;
    use tiercast_proto::{
        Block, ChannelId, Feed, Message, NodeId, NodeRole, Placement, Timestamp, COORDINATOR_ID,
    };

    const ORIGIN: NodeId = NodeId(1);

    /// Relay 11 at `tier`, its only parent the origin (1), a child (99) that
    /// makes it log in; blocks every 100 ms from 0 to 2.0 s.
    fn relay_fed_until_2s(tier: u8, origin_silence_ms: u64) -> (Node, ChannelId) {
        let cfg = NodeConfig {
            id: NodeId(11),
            tier,
            verify_blocks: false,
            origin_silence_ms,
            ..NodeConfig::default()
        };
        let mut n = crate::test_fixture::registered(cfg);
        let z = Timestamp::ZERO;
        let ch = CH;
        let placement = Placement::Tier {
            tier,
            activate: true,
        };
        set(&mut n, z, 1, placement, vec![all(ORIGIN.0)]);
        let login = Message::Login {
            channel: ch,
            from_seq: None,
            feed: Feed::All,
        };
        n.handle_message(z, NodeId(99), login);
        n.handle_message(z, ORIGIN, Message::LoginAccepted { channel: ch });
        for s in 0..=20u64 {
            let t = Timestamp::from_millis(s * 100);
            let b = Block::new(ch, s, t, s % 10 == 0, Bytes::from_static(b"x"));
            n.handle_message(t, ORIGIN, Message::Block(b));
        }
        while n.poll_transmit().is_some() {}
        (n, ch)
    }

    fn downgrades(n: &mut Node) -> Vec<NodeId> {
        std::iter::from_fn(|| n.poll_transmit())
            .filter_map(|t| match t.msg {
                Message::LinkDowngrade { parent, .. } if t.to == COORDINATOR_ID => Some(parent),
                _ => None,
            })
            .collect()
    }

    /// Runs the node's timers up to `ms` (as a driver would).
    fn run_to(n: &mut Node, ms: u64) {
        let end = Timestamp::from_millis(ms);
        while let Some(t) = n.poll_timeout().filter(|t| *t <= end) {
            n.handle_timeout(t);
        }
    }

    #[test]
    fn a_tier1_relays_silent_only_parent_is_reported_at_its_deadline_once() {
        let (mut n, ch) = relay_fed_until_2s(1, 500);
        // The last block came at 2.0 s: the deadline is 2.5 s, before the
        // heartbeat tick (3 s) — its own timer.
        run_to(&mut n, 2_000);
        assert!(downgrades(&mut n).is_empty(), "fed until now");
        assert_eq!(n.poll_timeout(), Some(Timestamp::from_millis(2500)));
        run_to(&mut n, 2_499);
        assert!(downgrades(&mut n).is_empty(), "not before the deadline");
        run_to(&mut n, 2_500);
        assert_eq!(downgrades(&mut n), vec![ORIGIN]);
        run_to(&mut n, 10_000);
        assert!(downgrades(&mut n).is_empty(), "reported once");
        // It delivers again (a paused encoder), then stops: reported again.
        let b = Block::new(ch, 21, Timestamp::from_millis(10_000), false, Bytes::new());
        n.handle_message(Timestamp::from_millis(10_000), ORIGIN, Message::Block(b));
        run_to(&mut n, 10_499);
        assert!(downgrades(&mut n).is_empty());
        run_to(&mut n, 10_500);
        assert_eq!(downgrades(&mut n), vec![ORIGIN]);
    }

    #[test]
    fn a_delivering_origin_a_tier2_relay_or_the_watch_off_report_nothing_early() {
        // Blocks keep coming every 100 ms: never silent.
        let (mut n, ch) = relay_fed_until_2s(1, 500);
        for s in 21..=60u64 {
            let t = Timestamp::from_millis(s * 100);
            run_to(&mut n, s * 100);
            let b = Block::new(ch, s, t, false, Bytes::new());
            n.handle_message(t, ORIGIN, Message::Block(b));
        }
        assert!(downgrades(&mut n).is_empty(), "a delivering origin");
        // A tier-2 relay's only parent is a relay: the general rule's (it may be
        // the whole stream that paused).
        let (mut n, _) = relay_fed_until_2s(2, 500);
        run_to(&mut n, 3_500);
        assert!(downgrades(&mut n).is_empty(), "tier 2");
        let (mut n, _) = relay_fed_until_2s(1, 0);
        run_to(&mut n, 3_500);
        assert!(downgrades(&mut n).is_empty(), "origin_silence_ms 0: off");
    }

    #[test]
    fn a_probe_is_answered_with_a_heartbeat_at_once() {
        let cfg = NodeConfig {
            id: ORIGIN,
            role: NodeRole::Origin,
            tier: 0,
            ..NodeConfig::default()
        };
        let mut n = crate::test_fixture::registered(cfg);
        while n.poll_transmit().is_some() {}
        n.handle_message(Timestamp::from_millis(300), COORDINATOR_ID, Message::Probe);
        let sent: Vec<_> = std::iter::from_fn(|| n.poll_transmit())
            .map(|t| (t.to, t.msg.kind()))
            .collect();
        assert_eq!(sent, vec![(COORDINATOR_ID, "heartbeat")]);
        // From anyone else it is not an order.
        n.handle_message(Timestamp::from_millis(400), NodeId(5), Message::Probe);
        assert!(n.poll_transmit().is_none());
    }
}
