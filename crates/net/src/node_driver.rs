//! The tokio driver of one `Node` machine (origin, relay or protocol viewer): a
//! `select!` loop over the QUIC links, the viewer HTTP requests, the command
//! channel and the machine's timer. After every input it drains the machine:
//! transmits go to the links, `BlockStored` events fan out to HTTP viewers through
//! a bounded broadcast per channel (zero-copy `Bytes`), and every event is
//! published to subscribers (demo tables, benchmarks, tests).

use crate::clock::{wall_micros, Clock};
use crate::endpoint::CoordinatorUrl;
use crate::error::DriverError;
use crate::http::{
    serve_viewers, LiveBlock, ViewerLimits, ViewerRefusal, ViewerRequest, ViewerServerStats,
    ViewerStream,
};
use crate::link::{ClusterKey, LinkConfig, LinkEvent, Links};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tiercast_node::channel::Phase;
use tiercast_node::{Event, Node, NodeConfig};
use tiercast_proto::{Block, ChannelId, DenyReason, NodeId, NodeRole, COORDINATOR_ID};
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
}

/// What a driver is asked to do from outside the machine.
#[derive(Debug)]
pub enum NodeCommand {
    Announce {
        channel: String,
        public_key: [u8; 32],
    },
    Ingest(Block),
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

#[derive(Clone, Debug, Serialize)]
pub struct ChannelSnapshot {
    pub id: u32,
    pub name: String,
    pub tier: u8,
    pub phase: &'static str,
    pub parents: Vec<u32>,
    pub child_nodes: Vec<u32>,
    pub viewers: u32,
    pub first_seq: Option<u64>,
    pub highest_seq: Option<u64>,
    pub stored: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeSnapshot {
    pub id: u32,
    pub role: String,
    pub registered: bool,
    pub load: u32,
    pub capacity: u32,
    pub channels: Vec<ChannelSnapshot>,
    pub bad_frames: u64,
    pub refused_admissions: u64,
    pub queue_full_drops: u64,
    pub send_errors: u64,
    pub http_viewers_active: u64,
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
    let (links, link_rx) = Links::bind(rt.listen, link_cfg).await?;
    links.set_address(COORDINATOR_ID, rt.coordinator.addr);
    let addr = links.local_addr();
    rt.node.addr = addr.to_string();

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

    let clock = Clock::default();
    let id = rt.node.id;
    let node = Node::new(rt.node.clone(), clock.now());
    let (cmd_tx, cmd_rx) = mpsc::channel(4096);
    let (notices, _) = broadcast::channel(4096);
    let driver = Driver {
        node,
        links,
        clock,
        coordinator: rt.coordinator.clone(),
        hub: BTreeMap::new(),
        live_queue_blocks: rt.live_queue_blocks.max(4),
        notices: notices.clone(),
        viewer_stats,
        send_errors: 0,
    };
    let task = tokio::spawn(driver.run(link_rx, cmd_rx, viewer_rx));
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
    coordinator: CoordinatorUrl,
    hub: BTreeMap<ChannelId, broadcast::Sender<LiveBlock>>,
    live_queue_blocks: usize,
    notices: broadcast::Sender<Notice>,
    viewer_stats: Arc<ViewerServerStats>,
    send_errors: u64,
}

impl Driver {
    async fn run(
        mut self,
        mut link_rx: mpsc::Receiver<LinkEvent>,
        mut cmd_rx: mpsc::Receiver<NodeCommand>,
        mut viewer_rx: Option<mpsc::Receiver<ViewerRequest>>,
    ) {
        self.drain();
        loop {
            let deadline = self.node.poll_timeout().map(|t| self.clock.instant(t));
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
                _ = sleep_until(deadline) => {
                    let now = self.clock.now();
                    self.node.handle_timeout(now);
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
                if peer != COORDINATOR_ID {
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
            NodeCommand::Ingest(block) => self.node.ingest_block(now, block),
            NodeCommand::Watch(name) => self.node.watch(now, &name),
            NodeCommand::Unwatch(name) => self.node.unwatch(now, &name),
            NodeCommand::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            NodeCommand::Shutdown => {}
        }
    }

    fn on_viewer_request(&mut self, req: ViewerRequest) {
        let now = self.clock.now();
        match req {
            ViewerRequest::Join { channel, reply } => {
                let answer = match self.node.viewer_login(now, &channel) {
                    Ok((ch, viewer)) => {
                        let state = self.node.channel(ch).expect("logged in just now");
                        let backlog = match state.buffer.latest_keyframe() {
                            Some(k) => state.buffer.blocks_from(k).map(live_block).collect(),
                            None => Vec::new(),
                        };
                        let cap = self.live_queue_blocks;
                        let live = self
                            .hub
                            .entry(ch)
                            .or_insert_with(|| broadcast::channel(cap).0)
                            .subscribe();
                        Ok(ViewerStream {
                            viewer,
                            backlog,
                            live,
                        })
                    }
                    Err(DenyReason::Full) | Err(DenyReason::NotActive) => {
                        // Another relay can take this viewer: the coordinator knows which.
                        Err(ViewerRefusal::Redirect(
                            self.coordinator.watch_url(&channel),
                        ))
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
        }
    }

    fn drain(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            if let Err(e) = self.links.send(t.to, t.msg) {
                self.send_errors += 1;
                debug!(node = %self.node.id(), to = %t.to, error = %e, "send failed");
            }
        }
        while let Some(ev) = self.node.poll_event() {
            match &ev {
                Event::BlockStored { block } => {
                    if let Some(tx) = self.hub.get(&block.channel) {
                        let _ = tx.send(live_block(block));
                    }
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
                Event::BlockRejected {
                    channel,
                    from,
                    reason,
                } => {
                    warn!(node = %self.node.id(), %channel, %from, reason, "block rejected")
                }
                Event::Deactivated { channel } => {
                    self.hub.remove(channel);
                    info!(node = %self.node.id(), event = ?ev, "node event");
                }
                Event::ChildJoined { .. }
                | Event::ChildLeft { .. }
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
    }

    fn snapshot(&self) -> NodeSnapshot {
        let ls = self.links.stats();
        NodeSnapshot {
            id: self.node.id().0,
            role: format!("{:?}", self.node.config().role).to_lowercase(),
            registered: self.node.is_registered(),
            load: self.node.machine_load(),
            capacity: self.node.config().capacity,
            channels: self
                .node
                .channels()
                .map(|(id, c)| ChannelSnapshot {
                    id: id.0,
                    name: c.desc.name.clone(),
                    tier: c.tier,
                    phase: match c.phase {
                        Phase::Expanding => "expanding",
                        Phase::Contracting => "contracting",
                    },
                    parents: c.parents.ids().iter().map(|p| p.0).collect(),
                    child_nodes: c.children.nodes.keys().map(|n| n.0).collect(),
                    viewers: c.children.viewers.len() as u32,
                    first_seq: c.buffer.first_seq(),
                    highest_seq: c.buffer.highest_seq(),
                    stored: c.buffer.stored(),
                    missing: c.buffer.missing_total(),
                    duplicates: c.buffer.duplicates(),
                    rejected: c.rejected_blocks,
                })
                .collect(),
            bad_frames: ls.bad_frames + ls.oversized_frames,
            refused_admissions: ls.refused_admissions,
            queue_full_drops: ls.queue_full_drops,
            send_errors: self.send_errors,
            http_viewers_active: self
                .viewer_stats
                .active
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

fn live_block(b: &Block) -> LiveBlock {
    LiveBlock {
        seq: b.seq,
        keyframe: b.is_keyframe(),
        payload: b.payload.clone(),
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
