//! The tokio driver of the `Coordinator` machine: QUIC links to every node (on the
//! UDP port of the coordinator's address) and the HTTP API on the TCP port of the
//! same address (`/watch/<channel>` → 302 to the chosen relay, `/status` JSON).
//! Every decision is logged as an event and kept in a short history for `/status`.
//! With a data directory, the policies in force are kept in the embedded store
//! (`coordinator_store`) and installed again at start, and the node history is
//! saved every `history_save_ms`, off the event loop (a crash loses at most that
//! much of it) (issue 11 items 5, 6).
//!
//! With an election on etcd (`election`, X7, D7) the process runs the machine
//! only while it leads: its epoch is the election's, a fresh machine is made
//! at each election won (restored from the store, then rebuilt from what the
//! nodes report as they register again), and it is dropped — no order sent
//! after — when the lease ends. A standby answers every node message with
//! `ServedElsewhere` (the leader's address) and every `/watch` with a redirect
//! to the leader's ([`standby`]). `GET /metrics` is written from the machine's
//! read-only views and the driver's counters (`metrics_view`, X4).

mod managers;
mod metrics_view;
mod standby;
mod status;

use crate::clock::Clock;
use crate::coordinator_store::CoordinatorStore;
use crate::error::DriverError;
use crate::etcd::{Directory, Election, ElectionConfig, Leadership, ManagerChoice};
use crate::http::{serve_api, ApiRequest, ApiStats, WatchAnswer};
use crate::link::{ClusterKey, LinkConfig, LinkEvent, Links, NetEmulation};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tiercast_coordinator::history::codec;
use tiercast_coordinator::{CoordEvent, Coordinator, CoordinatorConfig};
use tiercast_proto::{DenyReason, Machine, Message, NodeId, Output, COORDINATOR_ID};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

/// Events kept for `/status`.
const HISTORY: usize = 200;

#[derive(Clone, Debug)]
pub struct CoordinatorRuntime {
    /// HTTP API on TCP and QUIC links on UDP, same address.
    pub listen: SocketAddr,
    pub cluster_key: ClusterKey,
    pub config: CoordinatorConfig,
    /// Where the embedded store lives (`None`: nothing survives a restart).
    pub data_dir: Option<std::path::PathBuf>,
    /// How often the node history is saved to the store (ms).
    pub history_save_ms: u64,
    /// Several coordinator processes: lead only when elected on etcd (X7).
    pub election: Option<ElectionConfig>,
    /// Emulated latency, jitter and loss on the links' sends (`tiercast
    /// cluster`, issue 13); `None`: plain sockets.
    pub net_emulation: Option<Arc<NetEmulation>>,
}

/// Default of [`CoordinatorRuntime::history_save_ms`].
pub const HISTORY_SAVE_MS: u64 = 10_000;

pub struct CoordinatorHandle {
    pub addr: SocketAddr,
    status: mpsc::Sender<oneshot::Sender<Value>>,
    events: broadcast::Sender<CoordEvent>,
    task: Option<JoinHandle<()>>,
    api_task: JoinHandle<()>,
    election: Option<Election>,
}

impl CoordinatorHandle {
    /// The base URL nodes and viewers use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn status(&self) -> Option<Value> {
        let (tx, rx) = oneshot::channel();
        self.status.send(tx).await.ok()?;
        rx.await.ok()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<CoordEvent> {
        self.events.subscribe()
    }

    /// Stops; a leader resigns first (its lease revoked: a standby takes over
    /// at once rather than after the lease's TTL).
    pub async fn shutdown(mut self) {
        if let Some(e) = self.election.take() {
            e.resign().await;
        }
        self.api_task.abort();
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for CoordinatorHandle {
    fn drop(&mut self) {
        self.api_task.abort();
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub async fn spawn_coordinator(rt: CoordinatorRuntime) -> Result<CoordinatorHandle, DriverError> {
    rt.config.validate().map_err(DriverError::Config)?;
    let store = match &rt.data_dir {
        Some(dir) => Some(Arc::new(CoordinatorStore::open(dir)?)),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(rt.listen)
        .await
        .map_err(|source| DriverError::Listen {
            addr: rt.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DriverError::Listen {
            addr: rt.listen,
            source,
        })?;
    // The QUIC endpoint takes the same port number on UDP.
    let link_cfg = LinkConfig {
        emulation: rt.net_emulation.clone(),
        ..LinkConfig::new(COORDINATOR_ID, rt.cluster_key.clone())
    };
    let (links, link_rx) = Links::bind(addr, link_cfg).await?;
    let election = match rt.election.clone() {
        Some(cfg) => Some(Election::spawn(cfg).map_err(DriverError::Config)?),
        None => None,
    };
    let (api_tx, api_rx) = mpsc::channel(4096);
    let api_stats = Arc::new(ApiStats::default());
    let api_task = tokio::spawn(serve_api(
        listener,
        api_tx,
        api_stats.clone(),
        rt.cluster_key.clone(),
        rt.election.as_ref().zip(election.as_ref()).map(|(cfg, e)| {
            crate::http::LeaderView::new(
                e.leadership.clone(),
                e.directory.clone(),
                cfg.advertise.clone(),
            )
        }),
    ));
    let (status_tx, status_rx) = mpsc::channel(16);
    let (events, _) = broadcast::channel(4096);
    let clock = Clock::default();
    // Hour-of-day policies read the machine's clock from this Unix time.
    let mut config = rt.config.clone();
    config.clock_epoch_unix_s =
        crate::clock::wall_micros().saturating_sub(clock.now().0) / 1_000_000;
    let machine = if election.is_some() {
        // Made when elected, with the election's epoch.
        None
    } else {
        // D7, X7: the fencing token of this process's orders — one more than the
        // last start's on the store; without a store, the start's Unix second
        // (it grows from one start to the next unless the clock goes back).
        config.epoch = match &store {
            Some(s) => s.next_epoch()?,
            None => config.clock_epoch_unix_s.max(1),
        };
        info!(epoch = config.epoch, "coordinator epoch");
        let mut machine = Coordinator::new(config.clone(), clock.now());
        if let Some(store) = &store {
            restore(&mut machine, store, clock.now());
        }
        Some(machine)
    };
    let driver = Driver {
        machine,
        config,
        leadership: election.as_ref().map(|e| e.leadership.clone()),
        directory: election.as_ref().map(|e| e.directory.clone()),
        served: election.as_ref().map(|e| e.served.clone()),
        stands_for: rt.election.as_ref().map(|e| e.manager),
        orders_dropped: 0,
        served_elsewhere: 0,
        advertise: rt
            .election
            .as_ref()
            .map_or_else(|| addr.to_string(), |e| e.advertise.clone()),
        store,
        links,
        clock,
        history: VecDeque::new(),
        events: events.clone(),
        send_errors: 0,
        event_counts: BTreeMap::new(),
        api_stats,
    };
    let save_every = Duration::from_millis(rt.history_save_ms.max(100));
    let task = tokio::spawn(driver.run(link_rx, api_rx, status_rx, save_every));
    info!(%addr, "coordinator started (HTTP on TCP, links on UDP)");
    Ok(CoordinatorHandle {
        addr,
        status: status_tx,
        events,
        task: Some(task),
        api_task,
        election,
    })
}

/// Installs the policy file kept in `store`, re-checked (a file that no longer
/// passes is left out, logged: the coordinator starts without policies), and the
/// node history (records that do not decode are skipped and counted).
fn restore(machine: &mut Coordinator, store: &CoordinatorStore, now: tiercast_proto::Timestamp) {
    match store.node_histories() {
        Ok(rows) => {
            let total = rows.len();
            let records: Vec<_> = rows
                .into_iter()
                .filter_map(|(id, bytes)| Some((NodeId(id), codec::decode(&bytes)?)))
                .collect();
            if records.len() < total {
                warn!(
                    skipped = total - records.len(),
                    "node history records that do not decode"
                );
            }
            machine.restore_history(now, records);
            info!(nodes = machine.history().len(), "node history restored");
        }
        Err(e) => error!(error = %e, "stored node history unreadable: starting without it"),
    }
    match store.policy_source() {
        Ok(Some(source)) => match machine.restore_policies(now, &source) {
            Ok(rules) => info!(rules, store = %store.path().display(), "policies restored"),
            Err(e) => {
                error!(error = %e, store = %store.path().display(), "stored policy file no longer passes its check: starting without policies")
            }
        },
        Ok(None) => {}
        Err(e) => error!(error = %e, "stored policies unreadable: starting without policies"),
    }
    match store.publish_keys() {
        Ok(rows) => {
            for (channel, digests) in rows {
                if let Err(e) = machine.set_publish_keys(&channel, digests) {
                    error!(error = %e, channel, "stored publish keys refused: left out");
                }
            }
        }
        Err(e) => error!(error = %e, "stored publish keys unreadable: starting without them"),
    }
}

struct Driver {
    /// The machine, while this process serves the managers (always, without
    /// an election).
    machine: Option<Coordinator>,
    /// What a machine is made with when this process is elected.
    config: CoordinatorConfig,
    /// The election's view, when there is one.
    leadership: Option<tokio::sync::watch::Receiver<Leadership>>,
    /// The manager ids' map as the election last read it ([`managers`]).
    directory: Option<tokio::sync::watch::Receiver<Directory>>,
    /// The channels the machine serves, for the election to write to the map.
    served: Option<tokio::sync::watch::Sender<Vec<String>>>,
    /// The manager id this process stands for, or a spare (with an election).
    stands_for: Option<ManagerChoice>,
    /// Orders not sent because the lease had ended when they were decided.
    orders_dropped: u64,
    /// This process's address for nodes and viewers (the election's value).
    advertise: String,
    /// Node messages a standby answered with where the leader is.
    served_elsewhere: u64,
    store: Option<Arc<CoordinatorStore>>,
    links: Links,
    clock: Clock,
    history: VecDeque<(u64, String)>,
    events: broadcast::Sender<CoordEvent>,
    send_errors: u64,
    /// Events decided, by kind (`/metrics`; one entry per `CoordEvent` variant).
    event_counts: BTreeMap<String, u64>,
    /// The HTTP API's counters (`/metrics`).
    api_stats: Arc<ApiStats>,
}

impl Driver {
    async fn run(
        mut self,
        mut link_rx: mpsc::Receiver<LinkEvent>,
        mut api_rx: mpsc::Receiver<ApiRequest>,
        mut status_rx: mpsc::Receiver<oneshot::Sender<Value>>,
        save_every: Duration,
    ) {
        let mut save = tokio::time::interval(save_every);
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leadership = self.leadership.clone();
        loop {
            let deadline = self
                .machine
                .as_ref()
                .and_then(|m| m.poll_timeout())
                .map(|t| self.clock.instant(t));
            let lease_end = self.lease_end();
            tokio::select! {
                changed = async {
                    match leadership.as_mut() {
                        Some(l) => l.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if changed.is_err() {
                        // The election task ended: lead no more.
                        leadership = None;
                        self.leadership = None;
                        self.step_down("the election stopped");
                    } else {
                        self.on_leadership();
                    }
                }
                _ = async {
                    match lease_end {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                } => self.on_leadership(),
                ev = link_rx.recv() => {
                    let Some(ev) = ev else { break };
                    self.on_link_event(ev);
                }
                req = api_rx.recv() => {
                    let Some(req) = req else { break };
                    self.on_api(req);
                }
                Some(reply) = status_rx.recv() => {
                    let _ = reply.send(self.status());
                }
                _ = save.tick(), if self.store.is_some() && self.machine.is_some() => self.save_history(),
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let now = self.clock.now();
                    if let Some(m) = self.machine.as_mut() {
                        m.handle_timeout(now);
                    }
                }
            }
            self.drain();
        }
        self.links.close().await;
    }

    fn on_link_event(&mut self, ev: LinkEvent) {
        let now = self.clock.now();
        match ev {
            LinkEvent::Message { from, msg } => {
                if let Message::Register(reg) = &msg {
                    match reg.addr.parse() {
                        Ok(a) => self.links.set_address(from, a),
                        Err(_) => {
                            warn!(node = %from, addr = %reg.addr, "registration address does not parse")
                        }
                    }
                }
                // D7, X7: a node of a manager id this process does not
                // hold is told where its holder is (`managers`).
                let named = managers::named_manager(&msg);
                if let Some(m) = named.filter(|m| self.not_mine(*m)) {
                    self.served_elsewhere(from, Some(m));
                    return;
                }
                match self.machine.as_mut() {
                    Some(m) => m.handle_message(now, from, msg),
                    None => self.served_elsewhere(from, named),
                }
            }
            LinkEvent::Down { peer, reason } => debug!(%peer, %reason, "link down"),
            LinkEvent::Up { .. } => {}
        }
    }

    fn on_api(&mut self, req: ApiRequest) {
        let now = self.clock.now();

        // A channel of another manager id: its viewers go to its holder.
        if let ApiRequest::Watch { channel, .. } = &req {
            let here = self
                .machine
                .as_ref()
                .is_some_and(|m| m.channel_by_name(channel).is_some());
            if let (false, Some(holder)) = (here, self.channel_elsewhere(channel)) {
                if let ApiRequest::Watch {
                    channel,
                    region,
                    feed,
                    reply,
                    ..
                } = req
                {
                    let _ = reply.send(managers::watch_at(
                        &holder,
                        &channel,
                        region.as_deref(),
                        &feed,
                    ));
                }
                return;
            }
        }
        let Some(machine) = self.machine.as_mut() else {
            self.standby_api(req);
            return;
        };
        match req {
            ApiRequest::Watch {
                channel,
                region,
                feed,
                client,
                reply,
            } => {
                let region = region.unwrap_or_default();
                let answer = match machine.watch_feed(now, &channel, &region, feed) {
                    Ok(grant) => WatchAnswer::Redirect(format!(
                        "http://{}{}",
                        grant.relay.http_addr,
                        grant.relay_path()
                    )),
                    Err(DenyReason::UnknownChannel) => WatchAnswer::NotFound(format!(
                        "unknown channel '{channel}': no origin is broadcasting it"
                    )),
                    Err(DenyReason::GeoBlocked { reason }) => WatchAnswer::Refused {
                        status: 451,
                        reason,
                    },
                    Err(DenyReason::PolicyRefused { reason }) => WatchAnswer::Refused {
                        status: 403,
                        reason,
                    },
                    Err(reason) => WatchAnswer::Unavailable {
                        retry_after_s: machine.config().retry_after_s,
                        reason: reason.to_string(),
                    },
                };
                debug!(%client, %channel, ?answer, "watch");
                let _ = reply.send(answer);
            }
            ApiRequest::Status { reply } => {
                let _ = reply.send(self.status());
            }
            ApiRequest::SetPublishKeys {
                channel,
                digests,
                reply,
            } => {
                let answer = machine
                    .set_publish_keys(&channel, digests)
                    .map_err(|e| e.to_string());
                // Saved before the answer, as the policies are.
                if answer.is_ok() {
                    if let Some(store) = &self.store {
                        let kept = machine.publish_keys().get(&channel);
                        if let Err(e) = store.save_publish_keys(&channel, kept) {
                            error!(error = %e, channel, "publish keys set but not saved: a restart will lose them");
                        }
                    }
                }
                let _ = reply.send(answer);
            }
            ApiRequest::Metrics { reply } => {
                let _ = reply.send(self.metrics());
            }
            ApiRequest::ApplyPolicy { source, reply } => {
                let answer = machine
                    .apply_policies(now, &source)
                    .map_err(|e| e.to_string());
                // Saved before the answer: an operator told "ok" finds the file
                // in force after a restart.
                if answer.is_ok() {
                    self.save_policies();
                }
                let _ = reply.send(answer);
            }
        }
    }

    fn save_history(&mut self) {
        let (Some(store), Some(machine)) = (&self.store, &self.machine) else {
            return;
        };
        let records: Vec<(u32, Vec<u8>)> = machine
            .history()
            .export(self.clock.now())
            .iter()
            .map(|(id, h)| (id.0, codec::encode(h)))
            .collect();
        let store = store.clone();
        // The write (an fsync) runs beside the loop; redb orders write transactions.
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.save_node_histories(&records) {
                warn!(error = %e, "node history not saved");
            }
        });
    }

    fn save_policies(&mut self) {
        let (Some(store), Some(machine)) = (&self.store, &self.machine) else {
            return;
        };
        if let Err(e) = store.save_policy(&machine.installed_policies().source) {
            error!(error = %e, "policies installed but not saved: a restart will lose them");
        }
    }

    fn drain(&mut self) {
        // Fencing: nothing decided is sent once the lease has ended.
        if self.machine.is_some() && !self.may_order() {
            self.step_down("the lease ended");
        }
        let Some(machine) = self.machine.as_mut() else {
            return;
        };
        // Nodes told `Registered` in this drain: told the coordinators after it.
        let mut registered_now = Vec::new();
        // The driving contract's drain (`tiercast_proto::machine`).
        while let Some(out) = machine.poll_output() {
            let ev = match out {
                Output::Transmit(t) => {
                    let to = t.to;
                    let registered = matches!(t.msg, Message::Registered { .. });
                    if let Err(e) = self.links.send(to, t.into_wire()) {
                        self.send_errors += 1;
                        debug!(to = %to, error = %e, "send failed");
                    }
                    if registered {
                        registered_now.push(to);
                    }
                    continue;
                }
                Output::Event(ev) => ev,
            };
            match &ev {
                CoordEvent::Redirected { .. } => debug!(event = ?ev, "coordinator event"),
                CoordEvent::Invalid { .. } => warn!(event = ?ev, "coordinator event"),
                CoordEvent::EncoderStalled { .. } => {
                    warn!(event = ?ev, "a channel's encoder stalled (its origin's report)")
                }
                CoordEvent::Superseded { .. } => warn!(
                    event = ?ev,
                    "a node follows a newer coordinator epoch: another coordinator holds our managers; no order is sent from now on"
                ),
                _ => info!(event = ?ev, "coordinator event"),
            }
            *self
                .event_counts
                .entry(crate::metrics::coordinator::event_kind(&ev))
                .or_default() += 1;
            if !matches!(ev, CoordEvent::Redirected { .. }) {
                if self.history.len() >= HISTORY {
                    self.history.pop_front();
                }
                self.history
                    .push_back((self.clock.now().as_millis(), format!("{ev:?}")));
            }
            let _ = self.events.send(ev);
        }
        for to in registered_now {
            self.send_coordinators(to);
        }
        self.publish_served();
    }
}
