//! The `Coordinator` machine, the router of the control center (C1): it owns the
//! parts and hands each message and tick to the part it belongs to — a
//! registration and a heartbeat to the client manager, an announce and an
//! origin's ingest health report to the content directory, and what the managers do (watch, LOGOFF, LinkDowngrade,
//! DISTRIBUTE, CONSOLIDATE, the tick, a node registered) through the routed
//! verbs of `service_manager/verbs.rs`, never into a strategy's fields; at the
//! tick, the service manager retires unused channels' managers
//! (`service_manager/retire.rs`).

use crate::config::CoordinatorConfig;
use crate::event::CoordEvent;
use crate::manager::ChannelManager;
use crate::registry::Registry;
use crate::service_manager::verbs::{LoadAsk, ManagerVerbs, Peers, Van};
use std::collections::{BTreeMap, VecDeque};
use tiercast_proto::{ChannelId, DenyReason, Message, NodeId, NodeRole, Register, Timestamp};

/// A message to send, addressed by node id, decided in this coordinator's
/// epoch (D7, X7: the fencing token, [`CoordinatorConfig::epoch`]). On the wire
/// it is [`Transmit::into_wire`]: every driver sends that, never `msg` bare.
pub use tiercast_proto::Transmit;

#[derive(Clone, Debug, Default)]
pub struct CoordStats {
    pub distribute_events: u64,
    pub consolidate_events: u64,
    pub redirects: u64,
    pub denied: u64,
    /// HTTP viewers sent to an audio-only feed (C3), asked for or as a fall-back.
    pub audio_redirects: u64,
    pub heartbeats: u64,
    pub invalid_messages: u64,
    /// Peers moved from the overlay to a relay, and from a relay into the
    /// overlay, because the servers-or-peers rule in force changed (C3).
    pub source_moves_to_servers: u64,
    pub source_moves_to_peers: u64,
    /// Heartbeats of nodes following a newer epoch than this coordinator's
    /// (D7, X7): answered `ServedElsewhere`, not read.
    pub newer_epoch_heartbeats: u64,
    /// Orders not sent because a successor holds the managers (D7, X7).
    pub orders_withheld: u64,
}

pub struct Coordinator {
    pub(crate) cfg: CoordinatorConfig,
    pub(crate) registry: Registry,
    /// The relays' VAN manager per channel (created by `service_manager`).
    pub(crate) channels: crate::service_manager::ManagerMap<ChannelManager>,
    pub(crate) names: BTreeMap<String, ChannelId>,
    pub(crate) next_channel: u32,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<CoordEvent>,
    pub(crate) next_check: Timestamp,
    /// When this coordinator started (a new one is still learning the nodes).
    pub(crate) started: Timestamp,
    pub(crate) stats: CoordStats,
    /// Login/logoff rate predictions (V7; fed only when `prediction` is on).
    pub(crate) forecast: crate::predict::Forecast,
    /// Peer overlays per channel (D2-D4; created by `service_manager`).
    pub(crate) peers: crate::service_manager::ManagerMap<crate::peers::PeerOverlay>,
    /// The network-condition monitor: links measured, congestion found (C1, C2).
    pub(crate) network: crate::network_monitor::NetworkMonitor,
    /// Where each protocol viewer watches (V10: moved when its relay is lost).
    pub(crate) viewer_map: crate::viewer_moves::ViewerMap,
    /// The operators' policies in force (C3; `policy_store.rs`).
    pub(crate) policy: crate::policy_store::InstalledPolicies,
    /// What the coordinator remembers of every node (issue 11 item 5).
    pub(crate) history: crate::history::History,
    /// Reservations of the managers on capped links (C5; `link_caps.rs`).
    pub(crate) reservations: crate::reservation::Reservations,
    /// The policies' parent-selection rules (C3 → C4; `policy/parent_rules.rs`),
    /// with the count of regions known when built; `None`: no such rule.
    pub(crate) parent_rules: Option<std::sync::Arc<crate::policy::parent_rules::ParentRules>>,
    pub(crate) parent_rules_regions: usize,
    /// The UTC hour the relaying rules were last applied for (`relay_rules.rs`).
    pub(crate) relay_hour: Option<u8>,
    /// The servers-or-peers rule in force and the peers it sent to relays (C3).
    pub(crate) source_switches: crate::policy::source_switch::SourceSwitches,
    /// Each node's uplink shared by the channels it is on (C9; `uplink_ledger/`).
    pub(crate) uplinks: crate::uplink_ledger::UplinkLedger,
    /// The version of the last parent set sent per (node, channel) (C1).
    pub(crate) parent_sets: crate::client_manager::parent_sets::SetVersions,
    /// Per channel, when its peer overlay last turned a peer away for want of
    /// room (C9's lending: such a channel borrows, it never lends; one entry
    /// per channel).
    pub(crate) unmet_demand: std::collections::BTreeMap<ChannelId, Timestamp>,
    /// Channels without origin or viewer, on their way to retirement (C1;
    /// `service_manager/retire.rs`).
    pub(crate) retiring: crate::service_manager::retire::Retiring,
    /// Each channel's standby origin (D7, issue 12; `content_directory/backup.rs`).
    pub(crate) backups: crate::content_directory::backup::BackupSlots,
    /// The newest epoch a node reported following, when newer than ours: a
    /// successor holds our managers and we order nothing more (D7, X7;
    /// `client_manager/epoch_gate.rs`).
    pub(crate) superseded_by: Option<u64>,
    /// The last ingest report of each channel's origin (X1, issue 17;
    /// `content_directory/ingest_health.rs`).
    pub(crate) ingest: crate::content_directory::ingest_health::IngestReports,
    pub(crate) publish_keys: crate::content_directory::publish_keys::PublishKeyBook,
}

impl Coordinator {
    pub fn new(cfg: CoordinatorConfig, now: Timestamp) -> Self {
        let cfg_hb = cfg.heartbeat_interval_ms.max(1);
        let measured = cfg.reservations_measured;
        let uplinks =
            crate::uplink_ledger::UplinkLedger::new(cfg.max_nodes).with_lending(cfg.uplink_lending);
        Coordinator {
            next_check: now.plus_millis(cfg.heartbeat_interval_ms),
            started: now,
            forecast: crate::predict::Forecast::new(
                now,
                cfg.smoothing_alpha,
                cfg.smoothing_beta,
                cfg.prediction_period_ms(),
            ),
            cfg,
            registry: Registry::default(),
            channels: Default::default(),
            names: BTreeMap::new(),
            next_channel: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: CoordStats::default(),
            peers: Default::default(),
            network: Default::default(),
            viewer_map: Default::default(),
            policy: Default::default(),
            history: crate::history::History::new(crate::history::HistoryConfig::default()),
            reservations: crate::reservation::Reservations::new(
                crate::reservation::ReservationConfig {
                    ttl_ms: 3 * cfg_hb,
                    measured,
                    ..Default::default()
                },
            ),
            parent_rules: None,
            parent_rules_regions: 0,
            relay_hour: None,
            source_switches: Default::default(),
            uplinks,
            parent_sets: Default::default(),
            unmet_demand: Default::default(),
            retiring: Default::default(),
            backups: Default::default(),
            superseded_by: None,
            ingest: Default::default(),
            publish_keys: Default::default(),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn channel(&self, id: ChannelId) -> Option<&ChannelManager> {
        self.channels.get(&id)
    }

    pub fn channel_by_name(&self, name: &str) -> Option<&ChannelManager> {
        self.names.get(name).and_then(|id| self.channels.get(id))
    }

    pub fn channels(&self) -> impl Iterator<Item = &ChannelManager> {
        self.channels.values()
    }

    pub fn stats(&self) -> &CoordStats {
        &self.stats
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.cfg
    }

    /// The history store (read-only; the driver exports it to persist it).
    pub fn history(&self) -> &crate::history::History {
        &self.history
    }

    /// Node histories kept before a restart (from the driver's store).
    pub fn restore_history(
        &mut self,
        now: Timestamp,
        records: impl IntoIterator<Item = (NodeId, crate::history::record::NodeHistory)>,
    ) {
        self.history.import(now, records);
    }

    pub fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: Message) {
        if self.newer_epoch_refused(from, &msg) {
            return;
        }
        if let Message::Register(reg) = msg {
            self.on_register(now, from, reg);
            return;
        }
        if !self.registry.is_alive(from) {
            self.invalid(from, msg.kind(), "sender is not registered");
            // Tell it, so a node presumed crashed (or known before a restart) comes back.
            self.send(
                from,
                Message::RegisterDenied {
                    reason: DenyReason::NotRegistered,
                },
            );
            return;
        }
        self.registry.heard_from(from, now);
        // Anything from a probed origin answers its probe (D7).
        self.probe_answered(from);
        // Each message goes to its part; what a manager does goes through the
        // routed verbs (`service_manager/verbs.rs`), to the peer overlay for a
        // peer's watch and LOGOFF, to the VAN for the relays' and viewers'.
        match msg {
            Message::Announce {
                channel_name,
                public_key,
                channel,
                backup,
            } => {
                if backup {
                    self.on_announce_backup(now, from, channel_name, public_key)
                } else {
                    self.on_announce(now, from, channel_name, public_key, channel)
                }
            }
            Message::Heartbeat(hb) => self.on_heartbeat(now, from, hb),
            Message::IngestHealth(report) => self.on_ingest_health(now, from, report),
            Message::Distribute { channel, load } => {
                Van::on_load(self, now, from, channel, load, LoadAsk::Distribute);
            }
            Message::Consolidate { channel, load } => {
                Van::on_load(self, now, from, channel, load, LoadAsk::Consolidate);
            }
            Message::LinkDowngrade { channel, parent } => {
                if !self.backup_on_origin_silent(now, from, channel, parent)
                    && !Peers::on_link_downgrade(self, now, from, channel, parent)
                {
                    Van::on_link_downgrade(self, now, from, channel, parent);
                }
            }
            Message::Watch {
                channel_name,
                region,
            } if self.is_peer(from) => {
                // Refused by a rule, or sent to a relay by the servers-or-peers
                // rule in force (C3), it never reaches the overlay.
                if !self.peer_watch_refused(from, &channel_name, &region)
                    && !self.placed_on_servers(now, from, &channel_name)
                {
                    Peers::on_watch(self, now, from, channel_name, region)
                }
            }
            Message::Watch {
                channel_name,
                region,
            } => Van::on_watch(self, now, from, channel_name, region),
            Message::Logoff { channel } if self.is_peer(from) => {
                self.source_switches.forget(channel, from);
                Peers::on_leave(self, now, from, Some(channel))
            }
            other => self.invalid(from, other.kind(), "not a message for the coordinator"),
        }
    }

    /// Runs every row of the timer table ([`crate::timers`]) that is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        for t in crate::timers::CoordTimer::TABLE {
            t.fire(self, now);
        }
    }

    /// The managers' tick ([`crate::timers::CoordTimer::Check`]).
    pub(crate) fn managers_tick(&mut self, now: Timestamp) {
        self.check_liveness(now);
        Van::on_tick(self, now);
        // The policies in force (C3-C5) and the uplink shares (C9), applied
        // before the overlays' own tick uses them.
        self.apply_provider_rules();
        self.refresh_parent_rules(false);
        self.enforce_relay_rules(now, false);
        self.enforce_uplink_shares(now);
        self.enforce_link_caps(now, false);
        // A switch of servers or peers moves some peers already placed (C3).
        self.source_switch_tick(now);
        Peers::on_tick(self, now);
        // The service manager retires the managers of channels unused for
        // `channel_retire_after_ms` (C1).
        self.retire_unused_channels(now);
        // ...and splits and merges the peer overlays' bottom clusters (C8).
        self.review_clusters();
        // Four checks per interval: a crash is noticed within timeout + interval/4.
        self.next_check = now.plus_millis((self.cfg.heartbeat_interval_ms / 4).max(1));
    }

    /// The next message to send. Once superseded (a node follows a newer
    /// epoch: `client_manager/epoch_gate.rs`) only `ServedElsewhere` goes out;
    /// every order is dropped here and counted in `orders_withheld`.
    #[must_use = "a transmit left in the machine is a message never sent"]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            let t = self.transmits.pop_front()?;
            if self.superseded_by.is_none() || matches!(t.msg, Message::ServedElsewhere { .. }) {
                return Some(t);
            }
            self.stats.orders_withheld += 1;
        }
    }

    #[must_use = "an event left in the machine is never reported"]
    pub fn poll_event(&mut self) -> Option<CoordEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline of the timer table ([`crate::timers`]).
    #[must_use = "a deadline not armed is a timer that never fires"]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        crate::timers::CoordTimer::TABLE
            .iter()
            .filter_map(|t| t.deadline(self))
            .min()
    }

    fn on_register(&mut self, now: Timestamp, from: NodeId, reg: Register) {
        if self.registry.is_alive(from) && !self.reregister(now, from, reg.incarnation) {
            return;
        }
        if self.registry.len() >= self.cfg.max_nodes && self.registry.get(from).is_none() {
            self.send(
                from,
                Message::RegisterDenied {
                    reason: DenyReason::Invalid("node limit reached".into()),
                },
            );
            return;
        }
        if !self.registry.region_fits(&reg.region) {
            self.send(
                from,
                Message::RegisterDenied {
                    reason: DenyReason::Invalid("region limit reached".into()),
                },
            );
            return;
        }
        let (role, tier) = (reg.role, reg.tier);
        if role == NodeRole::Relay && tier == 0 {
            self.send(
                from,
                Message::RegisterDenied {
                    reason: DenyReason::Invalid("relay tiers start at 1".into()),
                },
            );
            return;
        }
        self.history.registered(now, from, reg.uplink_kbps);
        // Registered anew: its parent sets are numbered afresh (the node forgets
        // the old numbers at its `Registered`).
        self.parent_sets.forget(from);
        self.registry.register(now, from, reg);
        let heartbeat_interval_ms = self.cfg.heartbeat_interval_ms.min(u32::MAX as u64) as u32;
        self.send(
            from,
            Message::Registered {
                heartbeat_interval_ms,
            },
        );
        self.events.push_back(CoordEvent::NodeRegistered {
            node: from,
            role,
            tier,
        });
        Van::on_registered(self, now, from, role);
        Peers::on_registered(self, now, from, role);
    }

    fn is_peer(&self, id: NodeId) -> bool {
        self.registry
            .get(id)
            .is_some_and(|r| r.role == NodeRole::Peer)
    }

    pub(crate) fn send(&mut self, to: NodeId, msg: Message) {
        let epoch = self.cfg.epoch;
        self.transmits.push_back(Transmit::order(to, msg, epoch));
    }

    pub(crate) fn invalid(&mut self, from: NodeId, kind: &'static str, why: &'static str) {
        self.stats.invalid_messages += 1;
        self.events
            .push_back(CoordEvent::Invalid { from, kind, why });
    }
}

/// The driving contract ([`tiercast_proto::machine`]): the drivers and the
/// simulator drive the coordinator through it.
impl tiercast_proto::Machine for Coordinator {
    type Event = CoordEvent;

    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: Message) {
        Coordinator::handle_message(self, now, from, msg)
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        Coordinator::handle_timeout(self, now)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        Coordinator::poll_transmit(self)
    }

    fn poll_event(&mut self) -> Option<CoordEvent> {
        Coordinator::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        Coordinator::poll_timeout(self)
    }
}
