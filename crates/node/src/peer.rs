//! A peer's parents as the coordinator assigns them (C4, C6, D3, D4): a
//! `PeerAssign` lists every parent of the channel with what it pushes on the link
//! (all blocks, some substreams, or a lazy link). New links are logged in to, links
//! whose feed changed are logged in to again with the new feed; a link no longer
//! listed keeps pushing until every new link taking over one of its substreams is
//! connected, then is dropped (connect before disconnect, V9, C7), and its blocks
//! still in flight are taken ([`crate::parents`]).
//! Relays take the same message when they are waypoints of the top-level mesh.

use crate::channel::ChannelState;
use crate::event::Event;
use crate::node::Node;
use crate::parents::{feeds_overlap, ParentState};
use std::collections::BTreeMap;
use tiercast_proto::{ChannelDesc, Message, NodeId, NodeRole, PeerFeed, Timestamp, COORDINATOR_ID};

/// Most parents one assignment may list.
pub const MAX_ASSIGNED_PARENTS: usize = 128;
impl Node {
    pub(crate) fn on_peer_assign(
        &mut self,
        now: Timestamp,
        desc: ChannelDesc,
        parents: Vec<PeerFeed>,
    ) {
        if !matches!(self.cfg.role, NodeRole::Peer | NodeRole::Relay) {
            self.invalid(
                COORDINATOR_ID,
                "peer_assign",
                "only peers and relays take one",
            );
            return;
        }
        let me = self.cfg.id;
        let bad = parents.len() > MAX_ASSIGNED_PARENTS
            || parents
                .iter()
                .any(|p| p.peer.id == me || !p.feed.is_valid());
        if bad {
            self.invalid(COORDINATOR_ID, "peer_assign", "malformed parent list");
            return;
        }
        if !self.channels.contains_key(&desc.id) && self.channels.len() >= self.cfg.max_channels {
            self.invalid(COORDINATOR_ID, "peer_assign", "channel limit reached");
            return;
        }
        let channel = desc.id;
        self.watches.remove(&desc.name);
        self.names.insert(desc.name.clone(), channel);
        let buffer_blocks = self.cfg.buffer_blocks;
        let fresh = !self.channels.contains_key(&channel);
        let ch = self
            .channels
            .entry(channel)
            .or_insert_with(|| ChannelState::new(desc.clone(), u8::MAX, buffer_blocks));
        ch.keep = true;
        ch.logged_in = true;
        if ch.watching_since.is_none() {
            ch.watching_since = Some(now);
        }
        let from_seq = ch.resume_seq();
        // Nothing stored yet and several substream parents: one start for all
        // of them ([`crate::start`]).
        if ch.buffer.is_empty()
            && ch.start_gate.is_none()
            && crate::start::StartGate::needed(parents.iter().map(|p| &p.feed))
        {
            ch.start_gate = Some(crate::start::StartGate::default());
        }
        // (parent, resume at) for each LOGIN to send.
        let mut logins: Vec<(NodeId, Option<u64>)> = Vec::new();
        for p in &parents {
            let id = p.peer.id;
            let known = ch.parents.contains(id);
            let changed = ch.parents.assign_feed(p.peer.clone(), p.feed);
            ch.foreign.forget(id);
            // Listed again: no longer one to drop once another delivers.
            ch.parents.keep(id);
            let state = ch.parents.get(id).map(|l| l.state);
            if !known
                || state == Some(ParentState::Assigned)
                || state == Some(ParentState::Disconnecting)
            {
                ch.parents.logging_in(id, now);
                logins.push((id, ch.resume_seq_for(&p.feed).or(from_seq)));
            } else if changed {
                // Same parent, other substreams: no backlog, just the new feed.
                logins.push((id, None));
            }
        }
        let gone: Vec<NodeId> = ch
            .parents
            .ids()
            .into_iter()
            .filter(|id| !parents.iter().any(|p| p.peer.id == *id))
            .collect();
        // Connect before disconnect (V9, C7): a parent no longer listed keeps pushing
        // until every new link taking over one of its substreams is connected; one
        // nothing takes over from (a lazy link) goes at once.
        let mut takes_over: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        let mut logoffs = Vec::new();
        for g in gone {
            let Some(old) = ch.parents.get(g).map(|l| l.feed) else {
                continue;
            };
            let successors: Vec<NodeId> = logins
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| {
                    ch.parents
                        .get(*id)
                        .is_some_and(|l| feeds_overlap(l.feed, old))
                })
                .collect();
            if successors.is_empty() {
                if let Some(link) = ch.parents.retire(g, now) {
                    if link.state != ParentState::Assigned {
                        logoffs.push(g);
                    }
                }
                continue;
            }
            ch.parents.set_state(g, ParentState::Disconnecting);
            for n in successors {
                takes_over.entry(n).or_default().push(g);
            }
        }
        for (n, mut old) in takes_over {
            // Still waiting to replace others from an earlier assignment: keep them.
            if let Some(l) = ch.parents.get(n) {
                let earlier: Vec<NodeId> = l
                    .replaces
                    .iter()
                    .copied()
                    .filter(|r| !old.contains(r))
                    .collect();
                old.extend(earlier);
            }
            ch.parents.set_replaces(n, old, now);
        }
        if fresh {
            self.events.push_back(Event::Watching {
                channel: desc,
                relay: parents.first().map_or(me, |p| p.peer.id),
            });
        }
        for (p, from) in logins {
            self.send_login(p, channel, from);
        }
        for g in logoffs {
            self.send(g, Message::Logoff { channel });
            self.events
                .push_back(Event::ParentDropped { channel, parent: g });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parents::{ParentState, RETIRED_GRACE_MS};
    use crate::{Node, NodeConfig};
    use bytes::Bytes;
    use tiercast_proto::{
        Block, ChannelDesc, ChannelId, Feed, Message, NodeId, NodeRole, PeerFeed, PeerInfo,
        SubstreamSet, Timestamp, COORDINATOR_ID,
    };

    const CH: ChannelId = ChannelId(1);

    fn feed(id: u32, subs: &[u8]) -> PeerFeed {
        let mut s = SubstreamSet::single(4, subs[0]).unwrap();
        for x in &subs[1..] {
            s = s.with(*x);
        }
        PeerFeed {
            peer: PeerInfo {
                id: NodeId(id),
                addr: String::new(),
                http_addr: String::new(),
            },
            feed: Feed::Substreams(s),
        }
    }

    fn assign(n: &mut Node, t: Timestamp, parents: Vec<PeerFeed>) {
        let channel = ChannelDesc {
            id: CH,
            name: "live".into(),
            public_key: [0; 32],
        };
        n.handle_message(t, COORDINATOR_ID, Message::PeerAssign { channel, parents });
    }

    fn logoffs(n: &mut Node) -> Vec<u32> {
        std::iter::from_fn(|| n.poll_transmit())
            .filter(|t| matches!(t.msg, Message::Logoff { .. }))
            .map(|t| t.to.0)
            .collect()
    }

    fn block(seq: u64) -> Message {
        Message::Block(Block::new(
            CH,
            seq,
            Timestamp(seq),
            false,
            Bytes::from_static(b"x"),
        ))
    }

    /// A peer fed substreams 0, 1 by node 5 and 2, 3 by node 6.
    fn peer() -> Node {
        let cfg = NodeConfig {
            id: NodeId(9),
            role: NodeRole::Peer,
            verify_blocks: false,
            ..NodeConfig::default()
        };
        let mut n = Node::new(cfg, Timestamp::ZERO);
        assign(
            &mut n,
            Timestamp::ZERO,
            vec![feed(5, &[0, 1]), feed(6, &[2, 3])],
        );
        for p in [5, 6] {
            n.handle_message(
                Timestamp::ZERO,
                NodeId(p),
                Message::LoginAccepted { channel: CH },
            );
        }
        logoffs(&mut n);
        n
    }

    #[test]
    fn a_child_far_behind_gets_the_last_second_of_backlog_one_near_all_it_asks() {
        let mut n = peer();
        // 5 s of blocks, 10 a second (origin time seq·100 ms).
        for s in 0..50u64 {
            let t = Timestamp::from_millis(s * 100);
            let b = Block::new(CH, s, t, s % 10 == 0, Bytes::from_static(b"x"));
            let from = if s % 4 < 2 { 5 } else { 6 };
            n.handle_message(t, NodeId(from), Message::Block(b));
        }
        let _ = std::iter::from_fn(|| n.poll_transmit()).count();
        let resume = |n: &mut Node, child: u32, from: u64| -> Vec<u64> {
            n.handle_message(
                Timestamp::from_millis(5000),
                NodeId(child),
                Message::Login {
                    channel: CH,
                    from_seq: Some(from),
                    feed: Feed::All,
                },
            );
            std::iter::from_fn(|| n.poll_transmit())
                .filter_map(|t| match t.msg {
                    Message::Block(b) if t.to == NodeId(child) => Some(b.seq),
                    _ => None,
                })
                .collect()
        };
        // 4.9 s behind (cut off): older blocks would only hold back the live ones.
        let gap = crate::watch::PEER_RESUME_GAP_MS / 100;
        assert_eq!(resume(&mut n, 30, 0), (49 - gap..50).collect::<Vec<_>>());
        // 2 s behind (a parent switch): everything it asked for.
        let near = 49 - (crate::watch::PEER_RESYNC_MS / 100 - 10);
        assert_eq!(resume(&mut n, 31, near), (near..50).collect::<Vec<_>>());
    }

    #[test]
    fn a_peer_that_kept_its_links_at_a_reregistration_asks_again_if_its_stream_stalls() {
        // Registered, fed until 1.5 s, registered again at 2 s (the coordinator
        // lost it): it looks fed and keeps its links. Its parents were fed from
        // inside a cut: `stall` — nothing more arrives, and one interval later it
        // asks for its place again; otherwise the stream goes on and it does not.
        let watches_at_3s = |stall: bool| -> usize {
            let mut n = peer();
            let registered = Message::Registered {
                heartbeat_interval_ms: 1000,
            };
            n.handle_message(Timestamp::ZERO, COORDINATOR_ID, registered.clone());
            let feed_until = |n: &mut Node, from: u64, to: u64| {
                for s in from..to {
                    let t = Timestamp::from_millis(s * 100);
                    let b = Block::new(CH, s, t, s % 10 == 0, Bytes::from_static(b"x"));
                    n.handle_message(t, NodeId(if s % 4 < 2 { 5 } else { 6 }), Message::Block(b));
                }
            };
            feed_until(&mut n, 0, 16);
            n.handle_message(Timestamp::from_millis(2000), COORDINATOR_ID, registered);
            if !stall {
                feed_until(&mut n, 20, 30);
            }
            let _ = std::iter::from_fn(|| n.poll_transmit()).count();
            n.handle_timeout(Timestamp::from_millis(3000));
            std::iter::from_fn(|| n.poll_transmit())
                .filter(|t| matches!(t.msg, Message::Watch { .. }))
                .count()
        };
        assert_eq!(watches_at_3s(true), 1, "stalled: asks again");
        assert_eq!(watches_at_3s(false), 0, "still fed: keeps its place");
    }

    #[test]
    fn a_peer_the_coordinator_lost_sends_its_links_and_its_watch_right_behind_its_register() {
        // Fed until 1.5 s, then cut off; at 5 s its heartbeat meets "not
        // registered". Register, heartbeat (its links) and Watch (it is unfed) go
        // at once, in that order on the one ordered link — not a round trip later —
        // and the coordinator's answer to the Register sends none of them again.
        let mut n = peer();
        let registered = Message::Registered {
            heartbeat_interval_ms: 1000,
        };
        n.handle_message(Timestamp::ZERO, COORDINATOR_ID, registered.clone());
        for s in 0..16 {
            let t = Timestamp::from_millis(s * 100);
            let b = Block::new(CH, s, t, s % 10 == 0, Bytes::from_static(b"x"));
            n.handle_message(t, NodeId(if s % 4 < 2 { 5 } else { 6 }), Message::Block(b));
        }
        let _ = std::iter::from_fn(|| n.poll_transmit()).count();
        let to_coordinator = |n: &mut Node| -> Vec<&'static str> {
            std::iter::from_fn(|| n.poll_transmit())
                .filter(|t| t.to == COORDINATOR_ID)
                .map(|t| t.msg.kind())
                .collect()
        };
        n.handle_message(
            Timestamp::from_millis(5000),
            COORDINATOR_ID,
            Message::RegisterDenied {
                reason: tiercast_proto::DenyReason::NotRegistered,
            },
        );
        assert_eq!(
            to_coordinator(&mut n),
            vec!["register", "heartbeat", "watch"],
            "all three at once, the Register first"
        );
        n.handle_message(Timestamp::from_millis(5300), COORDINATOR_ID, registered);
        assert_eq!(
            to_coordinator(&mut n),
            Vec::<&str>::new(),
            "nothing sent twice when the Register is answered"
        );
        // Unanswered, the Watch is asked again on its own retry.
        n.handle_timeout(Timestamp::from_millis(6500));
        assert!(to_coordinator(&mut n).contains(&"watch"));
    }

    #[test]
    fn an_old_parent_keeps_its_substreams_until_every_link_taking_them_over_connects() {
        let mut n = peer();
        let t = |ms| Timestamp::ZERO.plus_millis(ms);
        // 5's substreams go to 7 (0) and 8 (1); 6 stays.
        assign(
            &mut n,
            t(100),
            vec![feed(7, &[0]), feed(8, &[1]), feed(6, &[2, 3])],
        );
        assert!(
            logoffs(&mut n).is_empty(),
            "nothing dropped before a new link connects"
        );
        let state = |n: &Node, id| {
            n.channel(CH)
                .unwrap()
                .parents
                .get(NodeId(id))
                .map(|l| l.state)
        };
        assert_eq!(state(&n, 5), Some(ParentState::Disconnecting));
        n.handle_message(t(150), NodeId(5), block(4));
        assert!(
            n.channel(CH).unwrap().buffer.get(4).is_some(),
            "5 still feeds"
        );
        n.handle_message(t(200), NodeId(7), Message::LoginAccepted { channel: CH });
        assert!(
            logoffs(&mut n).is_empty(),
            "8 still has to take substream 1 over"
        );
        n.handle_message(t(300), NodeId(8), Message::LoginAccepted { channel: CH });
        assert_eq!(logoffs(&mut n), vec![5]);
        assert_eq!(state(&n, 6), Some(ParentState::Connected), "6 untouched");
    }

    #[test]
    fn a_dropped_parents_blocks_in_flight_are_taken_for_the_grace_only() {
        let mut n = peer();
        let t = |ms| Timestamp::ZERO.plus_millis(ms);
        assign(&mut n, t(100), vec![feed(7, &[0, 1]), feed(6, &[2, 3])]);
        n.handle_message(t(200), NodeId(7), Message::LoginAccepted { channel: CH });
        assert_eq!(logoffs(&mut n), vec![5]);
        n.handle_message(t(250), NodeId(5), block(8));
        assert!(
            n.channel(CH).unwrap().buffer.get(8).is_some(),
            "in flight: taken"
        );
        let late = 200 + RETIRED_GRACE_MS + 1;
        n.handle_message(t(late), NodeId(5), block(9));
        assert!(
            n.channel(CH).unwrap().buffer.get(9).is_none(),
            "after the grace: refused"
        );
    }

    #[test]
    fn a_replacement_that_never_connects_drops_the_old_parent_after_the_timeout() {
        let mut n = peer();
        let t = |ms| Timestamp::ZERO.plus_millis(ms);
        assign(&mut n, t(100), vec![feed(7, &[0, 1]), feed(6, &[2, 3])]);
        n.handle_timeout(t(1100));
        assert!(logoffs(&mut n).is_empty());
        n.handle_timeout(t(100 + crate::parents::REPLACE_TIMEOUT_MS + 1000));
        assert_eq!(logoffs(&mut n), vec![5]);
    }
}
