//! LOGIN and LOGOFF at a node (V3), and the load thresholds that make a node ask
//! the coordinator to DISTRIBUTE (V4) or CONSOLIDATE (V5).
//!
//! A node logs in at its parents only when its first child arrives, and logs off
//! from them when its last child leaves. Load counts child nodes and local viewers
//! over all channels (V8); DISTRIBUTE is sent once per expansion phase, when the
//! machine-wide load reaches the max threshold; CONSOLIDATE while contracting, when
//! the channel's load falls below the min threshold. With the ΔT look-ahead on
//! (V7, [`crate::predict`]) DISTRIBUTE is also sent when the max threshold is
//! foreseen within ΔT, and CONSOLIDATE only while log-offs exceed log-ins.

use crate::channel::Phase;
use crate::event::Event;
use crate::node::Node;
use crate::parents::ParentState;
use tiercast_proto::{
    ChannelId, DenyReason, Feed, Message, NodeId, NodeRole, PeerInfo, Timestamp, ViewerId,
    COORDINATOR_ID,
};

/// A new child without a backlog is pushed what is stored later only if it is
/// at most this much older than the newest block at its LOGIN (the slack between
/// substream paths); older, it is a repair it joined after.
const START_SLACK_MS: u64 = 1000;

impl Node {
    /// A child node asks for a channel.
    pub(crate) fn on_login(
        &mut self,
        now: Timestamp,
        from: NodeId,
        channel: ChannelId,
        from_seq: Option<u64>,
        feed: Feed,
    ) {
        if !feed.is_valid() {
            let reason = DenyReason::Invalid("malformed substream set".into());
            self.send(from, Message::LoginDenied { channel, reason });
            return;
        }
        if let Err(reason) = self.admit(channel, Some(from)) {
            self.send(from, Message::LoginDenied { channel, reason });
            return;
        }
        let ch = self
            .channels
            .get_mut(&channel)
            .expect("admit checked the channel");
        let fresh = !ch.children.nodes.contains_key(&from);
        if let (true, Some(s)) = (ch.buffer.is_empty(), from_seq) {
            ch.children_resume_at = Some(ch.children_resume_at.map_or(s, |c| c.min(s)));
        }
        let link = ch.children.nodes.entry(from).or_default();
        if link.feed != feed {
            // What was sent on the old feed says nothing about the new one (a
            // lazy link's report must not compare with old pushes, C2).
            link.last_seq_sent = None;
        }
        link.feed = feed;
        // Send what the child asked for (what this buffer holds of it), or start
        // a new child at the latest keyframe; a child that only changes its feed
        // gets no backlog. A relay or the origin sends at most the last
        // `MAX_RESUME_GAP_MS` of it (hundreds of viewers and their relays come
        // back at once after a partition); a peer sends a child that asks for
        // more than the last `PEER_RESYNC_MS` only the last `PEER_RESUME_GAP_MS`
        // (see there), a child less far behind all it asked for.
        let peer = self.cfg.role == tiercast_proto::NodeRole::Peer;
        let (gap_ms, resync_ms) = if peer {
            (
                crate::watch::PEER_RESUME_GAP_MS,
                crate::watch::PEER_RESYNC_MS,
            )
        } else {
            (
                crate::watch::MAX_RESUME_GAP_MS,
                crate::watch::MAX_RESUME_GAP_MS,
            )
        };
        let start = from_seq
            .and_then(|s| ch.buffer.resume_from(s))
            .map(|s| {
                let far_behind = ch
                    .buffer
                    .newer_than(resync_ms * 1000)
                    .is_some_and(|r| s < r);
                if !far_behind {
                    return s;
                }
                let recent = ch.buffer.newer_than(gap_ms * 1000);
                recent.map_or(s, |r| s.max(r))
            })
            .or_else(|| fresh.then(|| ch.buffer.latest_keyframe()).flatten());
        let mut backlog: Vec<_> = match start {
            Some(s) => ch
                .buffer
                .blocks_from(s)
                .filter(|b| feed.pushes(b.seq))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        // A new child's start at the latest keyframe is a repair, not a push: it
        // comes out of the repair budget, whole or not at all (then the child
        // starts at the live edge and plays from the next keyframe). Booked to
        // its uplink, a parent sending it anyway delays every sibling by it, and
        // in a flash crowd those delays add up along the tree (a tight
        // population's lag p95 3.9 s; its admitted continuity 0.97).
        if fresh && from_seq.is_none() && !backlog.is_empty() {
            let bytes: f64 = backlog.iter().map(|b| b.wire_len() as f64).sum();
            if !self.take_repair_tokens(now, bytes) {
                self.stats.backlogs_skipped += 1;
                backlog.clear();
            }
        }
        if fresh && from_seq.is_none() {
            let ch = self
                .channels
                .get_mut(&channel)
                .expect("admit checked the channel");
            // Near the live edge: substreams come by paths of their own, a
            // second apart at most, so the newest second is pushed to it.
            let live_edge = ch.buffer.newer_than(START_SLACK_MS * 1000);
            if let Some(link) = ch.children.nodes.get_mut(&from) {
                link.starts_at = backlog.first().map(|b| b.seq).or(live_edge);
            }
        }
        self.send(from, Message::LoginAccepted { channel });
        for b in backlog {
            self.send_block_to_child(now, channel, from, b);
        }
        if fresh {
            self.events.push_back(Event::ChildJoined {
                channel,
                child: from,
            });
            self.after_login(now, channel);
        }
    }

    /// The channel a local viewer names, or `NotActive` when this node does not
    /// carry it.
    pub(crate) fn channel_named(&self, channel_name: &str) -> Result<ChannelId, DenyReason> {
        self.names
            .get(channel_name)
            .copied()
            .ok_or(DenyReason::NotActive)
    }

    /// A local viewer (HTTP player) asks for a channel. Returns its id; the driver
    /// serves it from `channel(..).buffer` starting at the latest keyframe.
    pub fn viewer_login(
        &mut self,
        now: Timestamp,
        channel_name: &str,
    ) -> Result<(ChannelId, ViewerId), DenyReason> {
        let channel = self.channel_named(channel_name)?;
        self.admit(channel, None)?;
        let viewer = ViewerId(self.next_viewer);
        self.next_viewer += 1;
        let ch = self
            .channels
            .get_mut(&channel)
            .expect("admit checked the channel");
        ch.children.viewers.insert(viewer);
        self.events
            .push_back(Event::ViewerJoined { channel, viewer });
        self.after_login(now, channel);
        Ok((channel, viewer))
    }

    pub fn viewer_logoff(&mut self, _now: Timestamp, channel: ChannelId, viewer: ViewerId) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if ch.children.viewers.remove(&viewer) || ch.children.audio_viewers.remove(&viewer) {
            self.events.push_back(Event::ViewerLeft { channel, viewer });
            self.note_logoff();
            self.after_logoff(channel);
        }
    }

    pub(crate) fn on_logoff(&mut self, _now: Timestamp, from: NodeId, channel: ChannelId) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            self.invalid(from, "logoff", "channel not carried");
            return;
        };
        if ch.children.nodes.remove(&from).is_some() {
            self.events.push_back(Event::ChildLeft {
                channel,
                child: from,
            });
            self.forget_child_queue(from);
            self.note_logoff();
            self.after_logoff(channel);
        }
    }

    /// A child node vanished (its link is gone): same as its LOGOFF on every channel.
    pub fn child_lost(&mut self, now: Timestamp, child: NodeId) {
        let chans: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| c.children.nodes.contains_key(&child))
            .map(|(id, _)| *id)
            .collect();
        for c in chans {
            self.on_logoff(now, child, c);
        }
    }

    pub(crate) fn admit(
        &self,
        channel: ChannelId,
        child: Option<NodeId>,
    ) -> Result<(), DenyReason> {
        if self.cfg.role == NodeRole::Viewer {
            return Err(DenyReason::Invalid("a viewer does not serve others".into()));
        }
        let ch = self.channels.get(&channel).ok_or(DenyReason::NotActive)?;
        if ch.consolidated {
            return Err(DenyReason::NotActive);
        }
        let already = child.is_some_and(|c| ch.children.nodes.contains_key(&c));
        if !already && self.machine_load() >= self.cfg.capacity {
            return Err(DenyReason::Full);
        }
        Ok(())
    }

    fn after_login(&mut self, now: Timestamp, channel: ChannelId) {
        self.ensure_logged_in(now, channel);
        if self.cfg.role != NodeRole::Relay {
            return;
        }
        self.note_login();
        let load = self.machine_load();
        if load >= self.cfg.max_threshold() || self.foresees_full(load) {
            self.distribute_expanding(load);
        }
    }

    /// The machine is full, or will be within ΔT (V7): every channel still expanding
    /// here asks for help (V4, V8).
    pub(crate) fn distribute_expanding(&mut self, load: u32) {
        let expanding: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| c.phase == Phase::Expanding && !c.consolidated)
            .map(|(id, _)| *id)
            .collect();
        for c in expanding {
            if let Some(ch) = self.channels.get_mut(&c) {
                ch.phase = Phase::Contracting;
            }
            self.send(COORDINATOR_ID, Message::Distribute { channel: c, load });
            self.events
                .push_back(Event::DistributeSent { channel: c, load });
        }
    }

    fn after_logoff(&mut self, channel: ChannelId) {
        let min = self.cfg.min_threshold;
        let is_relay = self.cfg.role == NodeRole::Relay;
        let contracting_mode = self.in_contracting_mode();
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        let load = ch.load();
        // Audio-only viewers are no load, but they still need the blocks.
        let nobody = ch.children.is_empty();
        if nobody && ch.logged_in && !ch.parents.is_empty() && !ch.keep {
            // Last child gone: log off from the parents (V3).
            ch.logged_in = false;
            let parents = ch.parents.ids();
            for p in &parents {
                ch.parents.set_state(*p, ParentState::Assigned);
            }
            for p in parents {
                self.send(p, Message::Logoff { channel });
            }
        }
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if ch.consolidated && nobody {
            self.drop_channel(channel);
            return;
        }
        if is_relay
            && contracting_mode
            && ch.phase == Phase::Contracting
            && load < min
            && !ch.consolidate_pending
            && !ch.consolidated
        {
            ch.consolidate_pending = true;
            self.send(COORDINATOR_ID, Message::Consolidate { channel, load });
            self.events
                .push_back(Event::ConsolidateSent { channel, load });
        } else if let Some(ch) = self.channels.get_mut(&channel) {
            // Ask again on a later change if the coordinator ignored the request.
            if ch.consolidate_pending && load < min {
                ch.consolidate_pending = false;
            }
        }
    }

    /// Logs in at every assigned parent if the channel has children to feed.
    pub(crate) fn ensure_logged_in(&mut self, now: Timestamp, channel: ChannelId) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if ch.logged_in || ch.parents.is_empty() {
            return;
        }
        ch.logged_in = true;
        let from_seq = ch.parent_resume_seq();
        let to_login = ch.parents.in_state(ParentState::Assigned);
        for p in &to_login {
            ch.parents.logging_in(*p, now);
        }
        for p in to_login {
            self.send_login(p, channel, from_seq);
        }
    }

    /// Parents that dropped out (a lost link) while the node still has children are
    /// logged in to again, once per heartbeat interval, until the coordinator
    /// replaces them.
    pub(crate) fn retry_parent_logins(&mut self, now: Timestamp) {
        let mut logins = Vec::new();
        for (id, ch) in self.channels.iter_mut() {
            if !ch.logged_in {
                continue;
            }
            let from_seq = ch.parent_resume_seq();
            for p in ch.parents.to_log_in(now) {
                ch.parents.logging_in(p, now);
                logins.push((p, *id, from_seq));
            }
        }
        for (p, channel, from_seq) in logins {
            self.send_login(p, channel, from_seq);
        }
    }

    /// Every LOGIN still unanswered is sent again (the node heard back from the
    /// coordinator after a silence: the path that lost them is back), except in
    /// the channels `skip`.
    pub(crate) fn relogin_unanswered(&mut self, now: Timestamp, skip: &[ChannelId]) {
        for (id, ch) in self.channels.iter_mut() {
            if skip.contains(id) {
                continue;
            }
            for p in ch.parents.in_state(ParentState::Connecting) {
                ch.parents.set_state(p, ParentState::Assigned);
            }
        }
        self.retry_parent_logins(now);
    }

    /// LOGIN at `parent` with the feed its link was assigned.
    pub(crate) fn send_login(&mut self, parent: NodeId, channel: ChannelId, from_seq: Option<u64>) {
        let feed = self
            .channels
            .get(&channel)
            .and_then(|c| c.parents.get(parent))
            .map_or(Feed::All, |l| l.feed);
        self.send(
            parent,
            Message::Login {
                channel,
                from_seq,
                feed,
            },
        );
    }

    /// The coordinator accepted our CONSOLIDATE: move the children elsewhere.
    pub(crate) fn on_consolidate_order(
        &mut self,
        _now: Timestamp,
        channel: ChannelId,
        move_to: PeerInfo,
    ) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            self.invalid(COORDINATOR_ID, "consolidate_order", "channel not carried");
            return;
        };
        ch.consolidated = true;
        ch.consolidate_pending = false;
        let desc = ch.desc.clone();
        let children: Vec<NodeId> = ch.children.nodes.keys().copied().collect();
        let has_viewers = !ch.children.viewers.is_empty() || !ch.children.audio_viewers.is_empty();
        for c in children {
            self.send(
                c,
                Message::Redirect {
                    channel: desc.clone(),
                    to: move_to.clone(),
                },
            );
        }
        if has_viewers {
            self.events.push_back(Event::ViewersMustMove {
                channel,
                to: move_to,
            });
        }
        self.after_logoff(channel);
    }
}
