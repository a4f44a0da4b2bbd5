//! The tokio driver of one `Node` machine (origin, relay, peer or protocol
//! viewer): a `select!` loop over the QUIC links, the viewer HTTP requests, the
//! command channel and the timers (the machine's, its uplink cap's among them, and the playout's).
//! After every input it drains the machine: transmits go to the links — a
//! peer's blocks already paced by its uplink cap in the machine (C4) —
//! `BlockStored` events fan out to HTTP viewers through a bounded broadcast per
//! channel (zero-copy `Bytes`; through the playout stage on a peer, D4), and every
//! event is published to subscribers (demo tables, benchmarks, tests).
//!
//! - `local` — the hubs and playout stages that feed local HTTP viewers.
//! - `snapshot` — [`NodeSnapshot`], also served as `GET /status`, and the
//!   source of `GET /metrics` (`crate::metrics::node`, X4).
//! - `coordinator_link` — which coordinator address the node talks to (D7, X7).
//! - `metrics_view` — `GET /metrics` from the snapshot and the driver's own
//!   views (X4).
//! - `coordinator_cause` — why the coordinator does not take us, said on
//!   stderr within seconds, rate-limited (X4, issue 16).
//! - `silence` — a silent coordinator link: when to ask the others who leads,
//!   when to move (sans-IO; D7, X7).
//! - `leader_probe` — `GET /leader` at the other coordinators, and the
//!   driver's part in a silence.

mod coordinator_cause;
mod coordinator_link;
pub(crate) mod leader_probe;
mod local;
mod log_limit;
mod metrics_view;
mod silence;
mod snapshot;

pub use snapshot::{ChannelSnapshot, ContinuitySnapshot, Measured, NodeSnapshot};

use crate::clock::{wall_micros, Clock};
use crate::endpoint::CoordinatorUrl;
use crate::error::DriverError;
use crate::http::{
    serve_viewers, ViewerLimits, ViewerRefusal, ViewerRequest, ViewerServerStats, ViewerStream,
};
use crate::link::{ClusterKey, LinkConfig, LinkEvent, Links, NetEmulation};
use local::LocalViewers;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use tiercast_node::{Event, Node, NodeConfig, PlayoutConfig};
use tiercast_proto::viewer_feed::FeedKind;
use tiercast_proto::{
    Block, DenyReason, Machine, Message, NodeId, NodeRole, Output, COORDINATOR_ID,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// How a node process is set up.
#[derive(Clone, Debug)]
pub struct NodeRuntime {
    pub node: NodeConfig,
    pub cluster_key: ClusterKey,
    pub coordinator: CoordinatorUrl,
    /// QUIC link address (UDP).
    pub listen: SocketAddr,
    /// Viewer HTTP address (TCP); `None` for nodes without local viewers.
    pub http_listen: Option<SocketAddr>,
    pub viewer_limits: ViewerLimits,
    /// Blocks queued per channel for HTTP viewers before a slow one is resynced.
    pub live_queue_blocks: usize,
    /// Reorder blocks before local viewers see them (peers, whose blocks arrive
    /// out of order); `None` serves them as stored.
    pub playout: Option<PlayoutConfig>,
    /// Emulated latency, jitter and loss on the links' sends (`tiercast
    /// cluster`, issue 13); `None`: plain sockets.
    pub net_emulation: Option<Arc<NetEmulation>>,
}

/// What a driver is asked to do from outside the machine.
#[derive(Debug)]
pub enum NodeCommand {
    Announce {
        channel: String,
        public_key: [u8; 32],
    },
    /// Stand by for the channel as its backup origin (D7, issue 12).
    AnnounceBackup {
        channel: String,
        public_key: [u8; 32],
    },
    Ingest(Block),
    /// An origin's ingest health for the coordinator (X1, issue 17).
    IngestHealth(tiercast_proto::IngestReport),
    /// An origin's ingest keys: the publish keys the coordinator sends are
    /// put in force there (X1, X3, issue 17).
    CheckPublishKeys(crate::ingest::PublishKeys),
    Watch(String),
    Unwatch(String),
    Snapshot(oneshot::Sender<NodeSnapshot>),
    Shutdown,
}

/// A node event with the wall-clock time the driver saw it.
#[derive(Clone, Debug)]
pub struct Notice {
    pub wall_us: u64,
    pub node: NodeId,
    pub event: Event,
}

pub struct NodeHandle {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    commands: mpsc::Sender<NodeCommand>,
    notices: broadcast::Sender<Notice>,
    task: Option<JoinHandle<()>>,
}

impl NodeHandle {
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Queues a command; fails only when the driver has stopped.
    pub async fn command(&self, cmd: NodeCommand) -> Result<(), DriverError> {
        self.commands
            .send(cmd)
            .await
            .map_err(|_| DriverError::Stopped)
    }

    /// A sender of commands for tasks that outlive a borrow of the handle.
    pub fn command_sender(&self) -> mpsc::Sender<NodeCommand> {
        self.commands.clone()
    }

    pub async fn snapshot(&self) -> Option<NodeSnapshot> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(NodeCommand::Snapshot(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Stops the driver and waits for it.
    pub async fn shutdown(mut self) {
        let _ = self.commands.send(NodeCommand::Shutdown).await;
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Stops the driver at once, like a crash (no goodbyes).
    pub fn abort(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Binds the node's sockets and starts its driver.
pub async fn spawn_node(mut rt: NodeRuntime) -> Result<NodeHandle, DriverError> {
    let mut link_cfg = LinkConfig::new(rt.node.id, rt.cluster_key.clone());
    link_cfg.max_frame_bytes = tiercast_proto::MAX_FRAME_BYTES;
    link_cfg.emulation = rt.net_emulation.clone();
    let keep_alive = std::time::Duration::from_millis(link_cfg.keep_alive_ms);
    let (links, link_rx) = Links::bind(rt.listen, link_cfg).await?;
    links.set_address(COORDINATOR_ID, rt.coordinator.addr);
    let addr = links.local_addr();
    rt.node.addr = addr.to_string();
    if rt.node.incarnation == 0 {
        // One per process start: the coordinator tells a restart from a retry.
        rt.node.incarnation = rand::random::<u64>().max(1);
    }

    let mut viewer_rx = None;
    let viewer_stats = Arc::new(ViewerServerStats::default());
    let mut http_addr = None;
    if let Some(h) = rt.http_listen {
        let listener = tokio::net::TcpListener::bind(h)
            .await
            .map_err(|source| DriverError::Listen { addr: h, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| DriverError::Listen { addr: h, source })?;
        http_addr = Some(local);
        rt.node.http_addr = local.to_string();
        let (tx, rx) = mpsc::channel(1024);
        viewer_rx = Some(rx);
        tokio::spawn(serve_viewers(
            listener,
            tx,
            rt.viewer_limits.clone(),
            viewer_stats.clone(),
        ));
    }
    rt.node.validate().map_err(DriverError::Config)?;
    if let Some(p) = &rt.playout {
        p.validate().map_err(DriverError::Config)?;
    }

    let clock = Clock::default();
    let id = rt.node.id;
    let mut cfg = rt.node.clone();
    // Every real node measures what its report shows (startup, lag; the
    // simulator, with a million viewers, measures the same itself).
    let now = clock.now();
    cfg.timings
        .get_or_insert(tiercast_node::timings::TimingsConfig {
            origin_clock_offset_us: wall_micros() as i64 - now.as_micros() as i64,
        });
    let node = Node::new(cfg, now);
    let (cmd_tx, cmd_rx) = mpsc::channel(4096);
    let (notices, _) = broadcast::channel(4096);
    let (probe_tx, probe_rx) = mpsc::channel(leader_probe::ANSWER_QUEUE);
    let (cause_tx, cause_rx) = mpsc::channel(1);
    let driver = Driver {
        node,
        links,
        clock,
        local: LocalViewers::new(rt.live_queue_blocks, rt.playout.clone()),
        watching: BTreeSet::new(),
        notices: notices.clone(),
        viewer_stats,
        send_errors: 0,
        rejected_log: log_limit::LogLimit::default(),
        coordinator_link: coordinator_link::CoordinatorLink::new(&rt.coordinator.all),
        moving_coordinator: false,
        silence: silence::Silence::new(std::time::Instant::now(), keep_alive).spread(
            std::time::Duration::from_millis(rand::random::<u64>() % 100),
            rand::random::<u8>().into(),
        ),
        probe_tx,
        publish_keys: None,
        ingest_reports: BTreeMap::new(),
        cause_tx,
        cause_probing: false,
    };
    let task = tokio::spawn(driver.run(link_rx, cmd_rx, viewer_rx, probe_rx, cause_rx));
    info!(node = %id, %addr, http = ?http_addr, "node started");
    Ok(NodeHandle {
        id,
        addr,
        http_addr,
        commands: cmd_tx,
        notices,
        task: Some(task),
    })
}

struct Driver {
    node: Node,
    links: Links,
    clock: Clock,
    /// Hubs (and playout stages) of the local HTTP viewers.
    local: LocalViewers,
    /// Channels this node was asked to watch (a peer's viewers wait for them).
    watching: BTreeSet<String>,
    notices: broadcast::Sender<Notice>,
    viewer_stats: Arc<ViewerServerStats>,
    send_errors: u64,
    /// "block rejected" warnings, at most one a second per channel.
    rejected_log: log_limit::LogLimit,
    /// What the node says about its coordinator link on stderr.
    coordinator_link: coordinator_link::CoordinatorLink,
    /// The coordinator link is being moved to another address by us.
    moving_coordinator: bool,
    /// Whether the coordinator link went silent (D7, X7).
    silence: silence::Silence,
    /// Where the probes of a silence answer: (asked, the leader it named).
    probe_tx: mpsc::Sender<leader_probe::ProbeAnswer>,
    /// An origin's ingest keys, updated from the coordinator's (X3).
    publish_keys: Option<crate::ingest::PublishKeys>,
    /// An origin's latest ingest report per channel, and when it came (for
    /// `/metrics`; at most [`MAX_INGEST_REPORTS`] channels).
    ingest_reports:
        BTreeMap<tiercast_proto::ChannelId, (std::time::Instant, tiercast_proto::IngestReport)>,
    /// Where the TCP probe of an unanswering coordinator reports its cause.
    cause_tx: mpsc::Sender<(SocketAddr, coordinator_cause::Cause)>,
    /// A probe is under way (one at a time).
    cause_probing: bool,
}

/// Channels whose ingest report an origin keeps for `/metrics` at most.
const MAX_INGEST_REPORTS: usize = 64;

impl Driver {
    async fn run(
        mut self,
        mut link_rx: mpsc::Receiver<LinkEvent>,
        mut cmd_rx: mpsc::Receiver<NodeCommand>,
        mut viewer_rx: Option<mpsc::Receiver<ViewerRequest>>,
        mut probe_rx: mpsc::Receiver<leader_probe::ProbeAnswer>,
        mut cause_rx: mpsc::Receiver<(SocketAddr, coordinator_cause::Cause)>,
    ) {
        self.drain();
        let mut check = tokio::time::interval(silence::CHECK_EVERY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let node_due = self.node.poll_timeout();
            let deadline = [node_due, self.local.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .map(|t| self.clock.instant(t));
            tokio::select! {
                ev = link_rx.recv() => {
                    let Some(ev) = ev else { break };
                    self.on_link_event(ev);
                    // Take what else is ready before draining once.
                    for _ in 0..64 {
                        match link_rx.try_recv() {
                            Ok(ev) => self.on_link_event(ev),
                            Err(_) => break,
                        }
                    }
                }
                req = recv_viewer(&mut viewer_rx) => {
                    match req {
                        Some(r) => self.on_viewer_request(r),
                        None => viewer_rx = None,
                    }
                }
                cmd = cmd_rx.recv() => {
                    match cmd {
                        None | Some(NodeCommand::Shutdown) => break,
                        Some(c) => self.on_command(c),
                    }
                }
                _ = check.tick() => self.check_coordinator(),
                Some(answer) = probe_rx.recv() => self.on_probe_answer(answer),
                Some((addr, cause)) = cause_rx.recv() => {
                    self.cause_probing = false;
                    self.coordinator_link.probed(addr, cause);
                }
                _ = sleep_until(deadline) => {
                    let now = self.clock.now();
                    if node_due.is_some_and(|t| t <= now) {
                        self.node.handle_timeout(now);
                    }
                    self.local.handle_timeout(now);
                }
            }
            self.drain();
        }
        self.links.close().await;
        debug!(node = %self.node.id(), "node driver stopped");
    }

    fn on_link_event(&mut self, ev: LinkEvent) {
        let now = self.clock.now();
        match ev {
            LinkEvent::Message { from, msg } => {
                for p in msg.peer_infos() {
                    match p.addr.parse() {
                        Ok(a) => self.links.set_address(p.id, a),
                        Err(_) => {
                            warn!(peer = %p.id, addr = %p.addr, "peer address does not parse")
                        }
                    }
                }
                self.node.handle_message(now, from, msg);
            }
            LinkEvent::Down { peer, reason } => {
                debug!(node = %self.node.id(), %peer, %reason, "link down");
                if peer == COORDINATOR_ID {
                    if std::mem::take(&mut self.moving_coordinator) {
                        // Our own doing: the link was moved to the leader.
                        return;
                    }
                    let retry = self
                        .node
                        .register_retry_at()
                        .map(|t| t.saturating_since(now) / 1000);
                    let next = self.coordinator_link.down(&reason, retry);
                    self.links.set_address(COORDINATOR_ID, next);
                    self.silence.moved(std::time::Instant::now());
                    self.node.coordinator_lost(now);
                } else {
                    self.node.peer_lost(now, peer);
                }
            }
            LinkEvent::Up { .. } => {}
        }
    }

    fn on_command(&mut self, cmd: NodeCommand) {
        let now = self.clock.now();
        match cmd {
            NodeCommand::Announce {
                channel,
                public_key,
            } => self.node.announce(&channel, public_key),
            NodeCommand::AnnounceBackup {
                channel,
                public_key,
            } => self.node.announce_backup(&channel, public_key),
            NodeCommand::Ingest(block) => self.node.ingest_block(now, block),
            NodeCommand::IngestHealth(report) => {
                if self.ingest_reports.len() < MAX_INGEST_REPORTS
                    || self.ingest_reports.contains_key(&report.channel)
                {
                    self.ingest_reports
                        .insert(report.channel, (std::time::Instant::now(), report));
                }
                self.node.report_ingest_health(report);
            }
            NodeCommand::CheckPublishKeys(keys) => self.publish_keys = Some(keys),
            NodeCommand::Watch(name) => {
                self.node.watch(now, &name);
                self.watching.insert(name);
            }
            NodeCommand::Unwatch(name) => {
                self.node.unwatch(now, &name);
                self.watching.remove(&name);
            }
            NodeCommand::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            NodeCommand::Shutdown => {}
        }
    }

    fn on_viewer_request(&mut self, req: ViewerRequest) {
        let now = self.clock.now();
        match req {
            ViewerRequest::Join { channel, reply, .. }
                if self.node.config().role == NodeRole::Origin =>
            {
                // An origin's HTTP port is for its metrics and status.
                let _ = reply.send(Err(ViewerRefusal::NotFound(format!(
                    "this is an origin: watch channel '{channel}' through the coordinator's /watch/{channel}"
                ))));
            }
            ViewerRequest::Join {
                channel,
                feed,
                reply,
            } => {
                let login = match feed.kind {
                    FeedKind::Full => self.node.viewer_login(now, &channel),
                    FeedKind::Audio => self.node.audio_viewer_login(now, &channel),
                };
                let answer = match login {
                    Ok((ch, viewer)) => {
                        let state = self.node.channel(ch).expect("logged in just now");
                        let delay_us = u64::from(feed.delay_s) * 1_000_000;
                        let (live, backlog) = self.local.join(ch, &state.buffer, delay_us);
                        Ok(ViewerStream {
                            viewer,
                            backlog,
                            live,
                        })
                    }
                    Err(DenyReason::NotActive) if self.node.config().role == NodeRole::Peer => {
                        // A peer plays only what it watches, once it has joined.
                        if self.watching.contains(&channel) {
                            Err(ViewerRefusal::Unavailable {
                                retry_after_s: 1,
                                reason: format!("this peer is still joining channel '{channel}'"),
                            })
                        } else {
                            Err(ViewerRefusal::NotFound(format!(
                                "this peer does not watch channel '{channel}'"
                            )))
                        }
                    }
                    Err(DenyReason::Full) if feed.kind == FeedKind::Audio => {
                        // Not back to the coordinator: it might send the viewer here again.
                        Err(ViewerRefusal::Unavailable {
                            retry_after_s: 2,
                            reason: format!(
                                "no room for audio-only viewers here ({} slots taken)",
                                self.node.config().audio_capacity
                            ),
                        })
                    }
                    Err(DenyReason::Full) | Err(DenyReason::NotActive) => {
                        // Another relay can take this viewer: the coordinator knows which.
                        // The coordinator the node talks to now (the leader, X7).
                        Err(ViewerRefusal::Redirect(format!(
                            "http://{}/watch/{channel}.ts{}",
                            self.coordinator_link.addr(),
                            feed.query()
                        )))
                    }
                    Err(other) => Err(ViewerRefusal::NotFound(other.to_string())),
                };
                if let Err(Ok(stream)) = reply.send(answer) {
                    // The client left before the answer: undo the login.
                    if let Some(ch) = self.node.channel_id(&channel) {
                        self.node.viewer_logoff(now, ch, stream.viewer);
                    }
                }
            }
            ViewerRequest::Leave {
                channel, viewer, ..
            } => {
                if let Some(ch) = self.node.channel_id(&channel) {
                    self.node.viewer_logoff(now, ch, viewer);
                }
            }
            ViewerRequest::Status { reply } => {
                let status = serde_json::to_value(self.snapshot())
                    .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
                let _ = reply.send(status);
            }
            ViewerRequest::Metrics { reply } => {
                let _ = reply.send(self.metrics());
            }
        }
    }

    /// Sends one message (a peer's blocks already left its uplink cap in the node).
    fn transmit(&mut self, to: NodeId, msg: Message) {
        if let Err(e) = self.links.send(to, msg) {
            self.send_errors += 1;
            debug!(node = %self.node.id(), %to, error = %e, "send failed");
        }
    }

    /// The driving contract's drain (`tiercast_proto::machine`): every output
    /// of the node after an input, transmits first; an event may move the
    /// coordinator link, and the Register that queues goes out in this drain.
    fn drain(&mut self) {
        let now = self.clock.now();
        while let Some(out) = self.node.poll_output() {
            match out {
                Output::Transmit(t) => self.transmit(t.to, t.into_wire()),
                Output::Event(ev) => self.on_event(now, ev),
            }
        }
    }

    /// One event of the node: logs, local viewers, the coordinator link, notices.
    fn on_event(&mut self, now: tiercast_proto::Timestamp, ev: Event) {
        match &ev {
            Event::BlockStored { block } => self.local.block_stored(now, block),
            Event::ChildLeft { .. } => {
                debug!(node = %self.node.id(), event = ?ev, "node event")
            }
            Event::Invalid {
                from,
                kind: "block",
                why,
            } => {
                // Blocks still in flight after a LOGOFF or a parent switch.
                debug!(node = %self.node.id(), %from, why, "block dropped")
            }
            Event::Invalid { from, kind, why } => {
                warn!(node = %self.node.id(), %from, kind, why, "invalid message dropped")
            }
            Event::StaleOrder { .. } => {
                warn!(node = %self.node.id(), event = ?ev, "order of an older coordinator epoch ignored")
            }
            Event::BlockRejected {
                channel,
                from,
                reason,
            } => {
                if let Some(suppressed) =
                    self.rejected_log.allow(*channel, std::time::Instant::now())
                {
                    warn!(node = %self.node.id(), %channel, %from, reason, suppressed,
                          "block rejected (at most one line a second; all are counted)")
                }
            }
            Event::CoordinatorUnanswered {
                attempts,
                retry_in_ms,
            } => {
                if let Some(next) = self.coordinator_link.unanswered(*attempts, *retry_in_ms) {
                    self.move_coordinator(next);
                    // Sent at the end of this drain.
                    self.node.coordinator_moved();
                }
                self.probe_coordinator_cause();
            }
            Event::CoordinatorElsewhere { leader } => {
                if let Some(to) = self.coordinator_link.elsewhere(leader.as_deref()) {
                    self.move_coordinator(to);
                }
            }
            Event::CoordinatorsKnown { addrs } => {
                let learnt = self.coordinator_link.learn(addrs);
                if learnt > 0 {
                    info!(node = %self.node.id(), learnt, known = self.coordinator_link.addrs().len(), "coordinator addresses learnt");
                }
            }
            Event::PublishKeys {
                channel_name,
                digests,
            } => {
                let set = self.publish_keys.as_ref();
                if !set.is_some_and(|k| k.set_from_coordinator(channel_name, digests.clone())) {
                    debug!(node = %self.node.id(), channel_name, "publish keys for an ingest not here: ignored")
                }
            }
            Event::Registered => {
                self.coordinator_link.answered();
                info!(node = %self.node.id(), event = ?ev, "node event");
            }
            Event::Deactivated { channel } => {
                self.local.deactivated(*channel);
                info!(node = %self.node.id(), event = ?ev, "node event");
            }
            Event::ChildJoined { .. }
            | Event::ViewerJoined { .. }
            | Event::ViewerLeft { .. }
            | Event::ParentConnected { .. } => {
                debug!(node = %self.node.id(), event = ?ev, "node event")
            }
            _ => info!(node = %self.node.id(), event = ?ev, "node event"),
        }
        let _ = self.notices.send(Notice {
            wall_us: wall_micros(),
            node: self.node.id(),
            event: ev,
        });
    }

    /// Finds out, beside the loop, why an unanswering coordinator does not
    /// answer (one probe at a time; its line is logged when it reports).
    fn probe_coordinator_cause(&mut self) {
        let Some(addr) = self.coordinator_link.take_probe() else {
            return;
        };
        if std::mem::replace(&mut self.cause_probing, true) {
            return;
        }
        let tx = self.cause_tx.clone();
        tokio::spawn(async move {
            let cause = coordinator_cause::tcp_cause(addr).await;
            let _ = tx.send((addr, cause)).await;
        });
    }

    /// Points the coordinator link at `to`, closing the connection to the old
    /// address (its `Down` is ours, not a loss) and cancelling a dial to it
    /// still in progress — what `send` queues next must not wait on a dial to
    /// a dead coordinator.
    fn move_coordinator(&mut self, to: SocketAddr) {
        self.links.set_address(COORDINATOR_ID, to);
        self.silence.moved(std::time::Instant::now());
        if self.links.is_connected(COORDINATOR_ID) {
            self.moving_coordinator = true;
        }
        self.links.disconnect(COORDINATOR_ID);
    }

    fn snapshot(&self) -> NodeSnapshot {
        snapshot::snapshot(
            &self.node,
            &self.links.stats(),
            self.links.emulation_stats(),
            &self.local,
            self.send_errors,
            self.viewer_stats
                .active
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

async fn recv_viewer(rx: &mut Option<mpsc::Receiver<ViewerRequest>>) -> Option<ViewerRequest> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Role name for logs and snapshots.
pub fn role_name(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Origin => "origin",
        NodeRole::Relay => "relay",
        NodeRole::Viewer => "viewer",
        NodeRole::Peer => "peer",
    }
}
