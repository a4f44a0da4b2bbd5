//! The `Node` machine: the verbs of DESIGN.md §1 and the dispatch of incoming
//! messages to the concern that handles them (login, forward, parent sets, switch,
//! watch; V2, V3, V9, C1).

use crate::channel::ChannelState;
use crate::config::NodeConfig;
use crate::event::Event;
use crate::uplink::{UplinkPacer, UplinkStats};
use std::collections::{BTreeMap, VecDeque};
use tiercast_proto::{
    ChannelDesc, ChannelId, Feed, Message, NodeId, NodeRole, Timestamp, COORDINATOR_ID,
};

pub use tiercast_proto::Transmit;

/// Counters a driver or the simulator can read at any time.
#[derive(Clone, Debug, Default)]
pub struct NodeStats {
    pub blocks_in: u64,
    pub blocks_out: u64,
    pub bytes_out: u64,
    pub control_out: u64,
    pub invalid_messages: u64,
    /// `Want`s cut short by the repair budget.
    pub repairs_refused: u64,
    /// New children started at the live edge: their backlog (from the latest
    /// keyframe) did not fit the repair budget.
    pub backlogs_skipped: u64,
    /// Blocks a fresh peer dropped as older than its start across its
    /// substream parents ([`crate::start`]).
    pub start_blocks_dropped: u64,
    /// Middle level (D5, [`crate::middle`]): recovery shards taken from coded
    /// parents and sent to coded children; shards refused (not from a coded
    /// parent, not in its feed, wrong size, duplicate, unrebuildable group).
    pub shards_in: u64,
    pub shards_out: u64,
    pub shards_invalid: u64,
    /// Groups in which blocks were rebuilt from recovery shards, and those blocks.
    pub groups_rebuilt: u64,
    pub blocks_rebuilt: u64,
    /// Orders of a coordinator epoch older than the node's ([`crate::epoch`]).
    pub stale_orders: u64,
}

pub struct Node {
    pub(crate) cfg: NodeConfig,
    pub(crate) registered: bool,
    /// The coordinator answered a Register before (a later answer is a re-registration).
    pub(crate) registered_before: bool,
    /// What `rejoined` sends went right behind a Register (not sent again when it
    /// is answered).
    rejoin_sent: bool,
    /// `ServedElsewhere` answers since the node was last registered ([`crate::elsewhere`]).
    pub(crate) moves_in_a_row: u32,
    /// Unanswered registration attempts and the next retry (see [`crate::register`]).
    pub(crate) registration: crate::register::Registration,
    pub(crate) channels: BTreeMap<ChannelId, ChannelState>,
    pub(crate) names: BTreeMap<String, ChannelId>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) next_heartbeat: Timestamp,
    /// Next Have/Want round of the lazy links (D3).
    pub(crate) next_have: Timestamp,
    /// Bytes of repair (answers to `Want`) allowed now, and when last refilled.
    pub(crate) repair_tokens: (f64, Timestamp),
    pub(crate) heartbeat_seq: u64,
    pub(crate) next_viewer: u64,
    /// Origin: every channel it serves, with its key (announced again at every
    /// registration: after the coordinator restarted or presumed it dead, D7).
    pub(crate) announcing: BTreeMap<String, [u8; 32]>,
    /// Origin: the channels it stands by for as their backup (D7, `standby.rs`).
    pub(crate) standby: std::collections::BTreeSet<String>,
    /// Origin: blocks its ingest cut while an announce was unanswered (a restart
    /// before the coordinator confirmed the channel, D7), at most `buffer_blocks`;
    /// stored once the channel is announced, so its children still get them.
    pub(crate) held_ingest: VecDeque<tiercast_proto::Block>,
    /// Protocol viewer: channels asked of the coordinator, with a retry time.
    pub(crate) watches: BTreeMap<String, crate::watch::PendingWatch>,
    pub(crate) stats: NodeStats,
    /// The ΔT look-ahead's rates (V7), when `predict_delta_t_ms` is set on a relay.
    pub(crate) trend: Option<crate::predict::LoadTrend>,
    /// Protocol viewer: its seqs over the whole run, across relay switches.
    pub(crate) continuity: crate::continuity::Continuity,
    /// A peer's uplink cap (C4): its blocks for other nodes leave at its declared
    /// rate, everything else is charged to it.
    pub(crate) pacer: Option<UplinkPacer>,
    /// The last parent set applied per channel (C1, [`crate::parent_set`]).
    pub(crate) set_versions: crate::parent_set::SetVersions,
    /// The highest coordinator epoch heard (0: none yet, [`crate::epoch`]).
    pub(crate) coordinator_epoch: u64,
    /// Startup, lag and bytes stored per channel, when the driver reports them
    /// ([`crate::timings`]; boxed: off in the simulator).
    pub(crate) timings: Option<Box<crate::timings::Timings>>,
}

impl Node {
    /// A node that registers with the coordinator at once.
    pub fn new(cfg: NodeConfig, now: Timestamp) -> Self {
        let trend = (cfg.role == NodeRole::Relay && cfg.predict_delta_t_ms > 0)
            .then(|| crate::predict::LoadTrend::new(now, cfg.predict_delta_t_ms));
        let pacer = cfg.uplink().map(|up| UplinkPacer::new(up, now));
        let timings = cfg
            .timings
            .map(|t| Box::new(crate::timings::Timings::new(t)));
        let mut node = Node {
            timings,
            pacer,
            trend,
            next_heartbeat: now.plus_millis(cfg.heartbeat_interval_ms),
            next_have: now.plus_millis(cfg.have_interval_ms.max(1)),
            repair_tokens: (0.0, now),
            cfg,
            registered: false,
            registered_before: false,
            rejoin_sent: false,
            moves_in_a_row: 0,
            registration: Default::default(),
            channels: BTreeMap::new(),
            names: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            heartbeat_seq: 0,
            next_viewer: 1,
            watches: BTreeMap::new(),
            announcing: BTreeMap::new(),
            standby: Default::default(),
            held_ingest: VecDeque::new(),
            stats: NodeStats::default(),
            continuity: Default::default(),
            set_versions: Default::default(),
            coordinator_epoch: 0,
        };
        node.send_register(now);
        node
    }

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    pub fn is_registered(&self) -> bool {
        self.registered
    }

    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// The uplink cap's counters, when this node paces its uplink (a peer).
    pub fn uplink_stats(&self) -> Option<UplinkStats> {
        self.pacer.as_ref().map(|p| p.stats())
    }

    pub fn channel(&self, id: ChannelId) -> Option<&ChannelState> {
        self.channels.get(&id)
    }

    /// The simulator's rate data plane, where no block moves: `channel`'s stream
    /// reached this node at `now` over its connected pushing parent links, as
    /// their blocks would have (its heartbeats then show it fed, D7/D8).
    pub fn rate_fed(&mut self, channel: ChannelId, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        ch.advanced_at = Some(now);
        let pushing: Vec<NodeId> = ch
            .parents
            .iter()
            .filter(|(_, l)| {
                l.feed != Feed::Lazy && l.state == crate::parents::ParentState::Connected
            })
            .map(|(p, _)| *p)
            .collect();
        for p in pushing {
            if let Some(l) = ch.parents.get_mut(p) {
                l.last_block_at = Some(now);
            }
        }
    }

    pub fn channel_id(&self, name: &str) -> Option<ChannelId> {
        self.names.get(name).copied()
    }

    pub fn channels(&self) -> impl Iterator<Item = (&ChannelId, &ChannelState)> {
        self.channels.iter()
    }

    /// Protocol viewer: the seq accounting of every channel it watched.
    pub fn continuity(&self) -> &crate::continuity::Continuity {
        &self.continuity
    }

    /// Startup, lag and bytes stored per channel, when measured
    /// ([`NodeConfig::timings`]).
    pub fn timings(&self) -> Option<&crate::timings::Timings> {
        self.timings.as_deref()
    }

    /// The node asked for channel `name`, or was placed on it: its startup starts
    /// now unless it did before ([`crate::timings`]).
    pub(crate) fn timing_asked(&mut self, now: Timestamp, name: &str) {
        let limit = self.cfg.max_channels;
        if let Some(t) = self.timings.as_mut() {
            t.asked(now, name, limit);
        }
    }

    /// Emits `BlockStored` for `block` (what the simulator counts and local
    /// viewers are served from) and measures it ([`crate::timings`]).
    pub(crate) fn emit_stored(&mut self, now: Timestamp, block: tiercast_proto::Block) {
        if let Some(t) = self.timings.as_mut() {
            if let Some(ch) = self.channels.get(&block.channel) {
                t.stored(now, &ch.desc.name, &block);
            }
        }
        self.events.push_back(Event::BlockStored { block });
    }

    /// Children over all channels (V8: capacity is machine-wide).
    pub fn machine_load(&self) -> u32 {
        self.channels.values().map(|c| c.load()).sum()
    }

    pub fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: Message) {
        self.pace_from(now);
        if let Some(msg) = self.fence(from, msg) {
            self.dispatch(now, from, msg);
        }
        self.pace(now);
    }

    fn dispatch(&mut self, now: Timestamp, from: NodeId, msg: Message) {
        let from_coordinator = from == COORDINATOR_ID;
        if from_coordinator {
            // (A parent set's description is taken once the set is known to be
            // current, [`crate::parent_set`].)
            if let Message::WatchAt { channel, .. } = &msg {
                self.learn_desc(channel);
            }
        }
        match msg {
            Message::Block(block) => self.on_block(now, from, block),
            shard @ Message::Shard { .. } => self.on_shard(now, from, shard),
            Message::Login {
                channel,
                from_seq,
                feed,
            } => self.on_login(now, from, channel, from_seq, feed),
            Message::Have { channel, highest } => self.on_have(now, from, channel, highest),
            Message::Want { channel, seqs } => self.on_want(now, from, channel, seqs),
            Message::WantUnmet { channel, seqs } => self.on_want_unmet(now, from, channel, seqs),
            Message::ParentSet {
                channel,
                version,
                placement,
                parents,
            } if from_coordinator => self.on_parent_set(now, channel, version, placement, parents),
            Message::Logoff { channel } => self.on_logoff(now, from, channel),
            Message::LoginAccepted { channel } => self.on_login_accepted(now, from, channel),
            Message::LoginDenied { channel, reason } => {
                self.on_login_denied(now, from, channel, reason)
            }
            Message::Redirect { channel, to } => self.on_redirect(now, from, channel, to),
            Message::Registered { .. } if from_coordinator => self.on_registered(now),
            Message::RegisterDenied { reason } if from_coordinator => {
                self.registration_answered();
                if reason == tiercast_proto::DenyReason::NotRegistered && self.registered {
                    // The coordinator restarted or presumed us dead: register again
                    // at once (later denials wait for the heartbeat tick); what we
                    // carry stays. It is there and answering, so what we would
                    // send once it answers goes now, right behind the Register on
                    // the same ordered link: one round trip to the coordinator
                    // sooner back in the overlay (a healed partition's peers).
                    self.registered = false;
                    self.send_register(now);
                    self.rejoined(now);
                    self.rejoin_sent = true;
                }
                self.events.push_back(Event::RegisterDenied(reason));
            }
            Message::ServedElsewhere { leader } if from_coordinator => {
                self.on_served_elsewhere(now, leader)
            }
            Message::Coordinators { addrs } if from_coordinator => self.on_coordinators(addrs),
            Message::ChannelRetired { channel } if from_coordinator => {
                self.on_channel_retired(channel)
            }
            Message::ClusterAssigned { channel, cluster } if from_coordinator => {
                self.on_cluster_assigned(channel, cluster)
            }
            Message::ChannelUpdate { channel } if from_coordinator => {
                self.on_channel_update(channel)
            }
            Message::AnnounceDenied {
                channel_name,
                reason,
            } if from_coordinator => {
                self.announcing.remove(&channel_name);
                self.standby.remove(&channel_name);
                self.events.push_back(Event::AnnounceDenied {
                    channel_name,
                    reason,
                });
            }
            Message::StandbyAccepted { channel } if from_coordinator => {
                self.on_standby_accepted(channel)
            }
            Message::Probe if from_coordinator => self.on_probe(now),
            Message::PublishKeys {
                channel_name,
                digests,
            } if from_coordinator => {
                if digests.len() > tiercast_proto::MAX_PUBLISH_KEYS {
                    self.invalid(from, "publish_keys", "more keys than a channel may have");
                } else {
                    self.events.push_back(Event::PublishKeys {
                        channel_name,
                        digests,
                    });
                }
            }
            Message::Announced { channel, next_seq } if from_coordinator => {
                self.on_announced(now, channel, next_seq)
            }
            Message::ConsolidateOrder { channel, move_to } if from_coordinator => {
                self.on_consolidate_order(now, channel, move_to)
            }
            Message::WatchAt { channel, relay } if from_coordinator => {
                self.on_watch_at(now, channel, relay)
            }
            Message::WatchDenied {
                channel_name,
                reason,
                retry_after_ms,
            } if from_coordinator => {
                self.on_watch_denied(now, channel_name, reason, retry_after_ms)
            }
            other => self.invalid(
                from,
                other.kind(),
                "not accepted by a node from this sender",
            ),
        }
    }

    /// Runs every row of the timer table ([`crate::timers`]) that is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.pace_from(now);
        for t in crate::timers::NodeTimer::TABLE {
            t.fire(self, now);
        }
    }

    /// The driver's link to the coordinator died (the coordinator restarted, or the
    /// network failed): register again at once rather than at the next heartbeat
    /// (D7); parents, children and blocks stay as they are. A coordinator that
    /// still knows this node answers the retry as before.
    pub fn coordinator_lost(&mut self, now: Timestamp) {
        if self.registered {
            self.registered = false;
            self.send_register(now);
        }
    }

    #[must_use = "a transmit left in the machine is a message never sent"]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use = "an event left in the machine is never reported"]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline of the timer table ([`crate::timers`]).
    #[must_use = "a deadline not armed is a timer that never fires"]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.earliest_timer()
    }

    /// The origin starts a channel (its blocks will be signed with `public_key`'s pair).
    pub fn announce(&mut self, channel_name: &str, public_key: [u8; 32]) {
        self.announcing.insert(channel_name.to_string(), public_key);
        if !self.registered {
            // Sent once the coordinator knows us (see `Registered`).
            return;
        }
        self.send_announce(channel_name, public_key);
    }

    fn send_announce(&mut self, channel_name: &str, public_key: [u8; 32]) {
        let channel = self.names.get(channel_name).copied();
        self.send(
            COORDINATOR_ID,
            Message::Announce {
                channel_name: channel_name.to_string(),
                public_key,
                channel,
                backup: self.standby.contains(channel_name),
            },
        );
    }

    fn on_registered(&mut self, now: Timestamp) {
        self.registered = true;
        self.moves_in_a_row = 0;
        // The coordinator numbers this node's parent sets afresh from here.
        self.set_versions.clear();
        self.registration_answered();
        self.events.push_back(Event::Registered);
        // Every channel this origin serves is announced again (a restarted
        // coordinator knows none of them; D7), with the id it already has.
        let channels: Vec<(String, [u8; 32])> = self
            .announcing
            .iter()
            .map(|(n, k)| (n.clone(), *k))
            .collect();
        for (name, key) in channels {
            self.send_announce(&name, key);
        }
        // (A Watch already sent behind the Register has its own retry.)
        let watches: Vec<String> = self
            .watches
            .iter()
            .filter(|(_, w)| !w.behind_register)
            .map(|(n, _)| n.clone())
            .collect();
        for w in self.watches.values_mut() {
            w.behind_register = false;
        }
        for name in watches {
            self.watch(now, &name);
        }
        let sent = std::mem::take(&mut self.rejoin_sent);
        if std::mem::replace(&mut self.registered_before, true) && !sent {
            self.rejoined(now);
        }
    }

    /// Registered again after the coordinator lost us (a partition, its restart; D7):
    /// report our links at once, so it takes them back rather than rebuilding, and a
    /// peer asks for its place in the overlay again (the coordinator dropped it).
    /// Sent when the coordinator answers our Register, or right behind the Register
    /// when it told us it lost us (it is there: the link is ordered).
    fn rejoined(&mut self, now: Timestamp) {
        self.send_heartbeat_now(now);
        self.next_heartbeat = now.plus_millis(self.cfg.heartbeat_interval_ms);
        // A peer asks again only for a channel it is no longer fed on — its stream
        // has not advanced for two intervals (blocks swapped inside a cut region
        // are all older than what it holds and do not count): a peer still
        // receiving (the coordinator restarted, or its parents were on its side of
        // a cut) keeps its links — asking again would make the coordinator place
        // it from scratch and move it (measured: continuity 0.16 after a
        // coordinator restart under 1 500 peers when every peer asked again).
        let fresh_us = 2 * self.cfg.heartbeat_interval_ms * 1000;
        let peer = self.cfg.role == NodeRole::Peer;
        let unfed: Vec<ChannelId> = self
            .channels
            .iter()
            .filter(|(_, c)| peer && c.keep && !self.watches.contains_key(&c.desc.name))
            .filter(|(_, c)| {
                c.advanced_at
                    .is_none_or(|t| now.saturating_since(t) > fresh_us)
            })
            .map(|(id, _)| *id)
            .collect();
        // The channels it keeps: the coordinator hears us again, so may the parents
        // whose LOGIN the cut swallowed — asked again now, not when overdue. (An
        // unfed peer's old parents are the coordinator's to replace: logging in
        // there as well overloads them with children already re-homed.)
        self.relogin_unanswered(now, &unfed);
        // A kept channel whose stream then stalls is asked again one interval
        // later (`recheck_kept`): its parents' last blocks came from inside the
        // cut.
        for (id, c) in self.channels.iter_mut() {
            if peer && c.keep && !unfed.contains(id) {
                c.kept_at_rejoin = Some(now);
            }
        }
        for channel in unfed {
            if let Some(name) = self.channels.get(&channel).map(|c| c.desc.name.clone()) {
                self.send_watch(now, &name);
            }
        }
    }

    /// One interval after a re-registration: a channel kept then whose stream has
    /// not advanced since was fed only from inside the cut (its parents' last
    /// blocks), so the peer asks for its place again.
    pub(crate) fn recheck_kept(&mut self, now: Timestamp) {
        let interval_us = self.cfg.heartbeat_interval_ms * 1000;
        let mut unfed = Vec::new();
        for c in self.channels.values_mut() {
            let Some(at) = c.kept_at_rejoin else { continue };
            if now.saturating_since(at) < interval_us {
                continue;
            }
            c.kept_at_rejoin = None;
            if c.keep && c.advanced_at.is_none_or(|t| t <= at) {
                unfed.push(c.desc.name.clone());
            }
        }
        for name in unfed {
            if !self.watches.contains_key(&name) {
                self.watch(now, &name);
            }
        }
    }

    pub(crate) fn on_announced(&mut self, now: Timestamp, desc: ChannelDesc, next_seq: u64) {
        if self.cfg.role != NodeRole::Origin || !self.announcing.contains_key(&desc.name) {
            self.invalid(
                COORDINATOR_ID,
                "announced",
                "not a channel this origin announced",
            );
            return;
        }
        if let Some(old) = self.names.get(&desc.name).copied() {
            if old != desc.id {
                // A coordinator that could not keep the id (taken): move the state.
                if let Some(mut ch) = self.channels.remove(&old) {
                    ch.desc.id = desc.id;
                    self.channels.insert(desc.id, ch);
                }
            }
        }
        self.names.insert(desc.name.clone(), desc.id);
        // A standby promoted: from now on it announces as the origin.
        self.standby.remove(&desc.name);
        let fresh = !self.channels.contains_key(&desc.id);
        self.channels
            .entry(desc.id)
            .or_insert_with(|| ChannelState::new(desc.clone(), 0, self.cfg.buffer_blocks));
        let id = desc.id;
        if fresh {
            self.events
                .push_back(Event::ChannelReady { desc, next_seq });
        }
        self.store_held_ingest(now, id);
    }

    /// Queues a message; a paced node's blocks for other nodes wait for its uplink
    /// cap instead ([`Node::pace`] releases them).
    pub(crate) fn send(&mut self, to: NodeId, msg: Message) {
        if !msg.is_media() {
            self.stats.control_out += 1;
        }
        if let Some(pacer) = self.pacer.as_mut() {
            match msg {
                Message::Block(block) if to != COORDINATOR_ID => {
                    pacer.push_now(to, block);
                    return;
                }
                ref other => pacer.charge(tiercast_proto::codec::frame_len(other)),
            }
        }
        self.transmits.push_back(Transmit::plain(to, msg));
    }

    /// An input arrived at `now`: the uplink cap's clock moves on first, so the
    /// blocks this input makes wait from now.
    fn pace_from(&mut self, now: Timestamp) {
        if let Some(pacer) = self.pacer.as_mut() {
            pacer.advance(now);
        }
    }

    /// Moves the blocks the uplink cap lets out now to the transmit queue.
    pub(crate) fn pace(&mut self, now: Timestamp) {
        let Some(pacer) = self.pacer.as_mut() else {
            return;
        };
        while let Some((to, block)) = pacer.poll_send(now) {
            self.transmits
                .push_back(Transmit::plain(to, Message::Block(block)));
        }
    }

    /// `child` is no child on any channel any more: its queued blocks go.
    pub(crate) fn forget_child_queue(&mut self, child: NodeId) {
        let still = self
            .channels
            .values()
            .any(|c| c.children.nodes.contains_key(&child));
        if let (false, Some(p)) = (still, self.pacer.as_mut()) {
            p.forget(child);
        }
    }

    pub(crate) fn invalid(&mut self, from: NodeId, kind: &'static str, why: &'static str) {
        self.stats.invalid_messages += 1;
        self.events.push_back(Event::Invalid { from, kind, why });
    }

    /// Forgets a channel this node no longer carries.
    pub(crate) fn drop_channel(&mut self, channel: ChannelId) {
        if let Some(ch) = self.channels.remove(&channel) {
            self.names.remove(&ch.desc.name);
            self.events.push_back(Event::Deactivated { channel });
        }
    }
}

/// The driving contract ([`tiercast_proto::machine`]): the drivers and the
/// simulator drive a node through it.
impl tiercast_proto::Machine for Node {
    type Event = Event;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: Message) {
        Node::handle_message(self, now, from, msg)
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        Node::handle_timeout(self, now)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        Node::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<Event> {
        Node::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        Node::poll_timeout(self)
    }
}
