//! The tokio driver of the `Coordinator` machine: QUIC links to every node (on the
//! UDP port of the coordinator's address) and the HTTP API on the TCP port of the
//! same address (`/watch/<channel>` → 302 to the chosen relay, `/status` JSON).
//! Every decision is logged as an event and kept in a short history for `/status`.
//! With a data directory, the policies in force are kept in the embedded store
//! (`coordinator_store`) and installed again at start, and the node history is
//! saved every `history_save_ms`, off the event loop (a crash loses at most that
//! much of it) (issue 11 items 5, 6).

use crate::clock::Clock;
use crate::coordinator_store::CoordinatorStore;
use crate::error::DriverError;
use crate::http::{serve_api, ApiRequest, ApiStats, WatchAnswer};
use crate::link::{ClusterKey, LinkConfig, LinkEvent, Links};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tiercast_coordinator::history::codec;
use tiercast_coordinator::{CoordEvent, Coordinator, CoordinatorConfig};
use tiercast_proto::{DenyReason, Message, NodeId, COORDINATOR_ID};
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
}

/// Default of [`CoordinatorRuntime::history_save_ms`].
pub const HISTORY_SAVE_MS: u64 = 10_000;
/// Node histories listed in `/status` at most.
const STATUS_HISTORY: usize = 1000;

pub struct CoordinatorHandle {
    pub addr: SocketAddr,
    status: mpsc::Sender<oneshot::Sender<Value>>,
    events: broadcast::Sender<CoordEvent>,
    task: Option<JoinHandle<()>>,
    api_task: JoinHandle<()>,
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

    pub async fn shutdown(mut self) {
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
    let (links, link_rx) = Links::bind(
        addr,
        LinkConfig::new(COORDINATOR_ID, rt.cluster_key.clone()),
    )
    .await?;
    let (api_tx, api_rx) = mpsc::channel(4096);
    let api_task = tokio::spawn(serve_api(
        listener,
        api_tx,
        Arc::new(ApiStats::default()),
        rt.cluster_key.clone(),
    ));
    let (status_tx, status_rx) = mpsc::channel(16);
    let (events, _) = broadcast::channel(4096);
    let clock = Clock::default();
    // Hour-of-day policies read the machine's clock from this Unix time.
    let mut config = rt.config.clone();
    config.clock_epoch_unix_s =
        crate::clock::wall_micros().saturating_sub(clock.now().0) / 1_000_000;
    // D7, X7: the fencing token of this process's orders — one more than the
    // last start's on the store; without a store, the start's Unix second
    // (it grows from one start to the next unless the clock goes back).
    config.epoch = match &store {
        Some(s) => s.next_epoch()?,
        None => config.clock_epoch_unix_s.max(1),
    };
    info!(epoch = config.epoch, "coordinator epoch");
    let mut machine = Coordinator::new(config, clock.now());
    if let Some(store) = &store {
        restore(&mut machine, store, clock.now());
    }
    let driver = Driver {
        machine,
        store,
        links,
        clock,
        history: VecDeque::new(),
        events: events.clone(),
        send_errors: 0,
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
}

struct Driver {
    machine: Coordinator,
    store: Option<Arc<CoordinatorStore>>,
    links: Links,
    clock: Clock,
    history: VecDeque<(u64, String)>,
    events: broadcast::Sender<CoordEvent>,
    send_errors: u64,
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
        loop {
            let deadline = self.machine.poll_timeout().map(|t| self.clock.instant(t));
            tokio::select! {
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
                _ = save.tick(), if self.store.is_some() => self.save_history(),
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let now = self.clock.now();
                    self.machine.handle_timeout(now);
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
                self.machine.handle_message(now, from, msg);
            }
            LinkEvent::Down { peer, reason } => debug!(%peer, %reason, "link down"),
            LinkEvent::Up { .. } => {}
        }
    }

    fn on_api(&mut self, req: ApiRequest) {
        let now = self.clock.now();
        match req {
            ApiRequest::Watch {
                channel,
                region,
                feed,
                client,
                reply,
            } => {
                let region = region.unwrap_or_default();
                let answer = match self.machine.watch_feed(now, &channel, &region, feed) {
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
                        retry_after_s: self.machine.config().retry_after_s,
                        reason: reason.to_string(),
                    },
                };
                debug!(%client, %channel, ?answer, "watch");
                let _ = reply.send(answer);
            }
            ApiRequest::Status { reply } => {
                let _ = reply.send(self.status());
            }
            ApiRequest::ApplyPolicy { source, reply } => {
                let answer = self
                    .machine
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
        let Some(store) = &self.store else { return };
        let records: Vec<(u32, Vec<u8>)> = self
            .machine
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
        let Some(store) = &self.store else { return };
        if let Err(e) = store.save_policy(&self.machine.installed_policies().source) {
            error!(error = %e, "policies installed but not saved: a restart will lose them");
        }
    }

    fn drain(&mut self) {
        while let Some(t) = self.machine.poll_transmit() {
            let to = t.to;
            if let Err(e) = self.links.send(to, t.into_order()) {
                self.send_errors += 1;
                debug!(to = %to, error = %e, "send failed");
            }
        }
        while let Some(ev) = self.machine.poll_event() {
            match &ev {
                CoordEvent::Redirected { .. } => debug!(event = ?ev, "coordinator event"),
                CoordEvent::Invalid { .. } => warn!(event = ?ev, "coordinator event"),
                _ => info!(event = ?ev, "coordinator event"),
            }
            if !matches!(ev, CoordEvent::Redirected { .. }) {
                if self.history.len() >= HISTORY {
                    self.history.pop_front();
                }
                self.history
                    .push_back((self.clock.now().as_millis(), format!("{ev:?}")));
            }
            let _ = self.events.send(ev);
        }
    }

    fn status(&self) -> Value {
        let reg = self.machine.registry();
        let nodes: Vec<Value> = reg
            .iter()
            .map(|(id, r)| {
                json!({
                    "id": id.0, "role": format!("{:?}", r.role).to_lowercase(), "tier": r.tier,
                    "region": r.region, "alive": r.alive, "load": r.estimated_load(),
                    "capacity": r.capacity, "addr": r.info.addr, "http": r.info.http_addr,
                })
            })
            .collect();
        let channels: Vec<Value> = self
            .machine
            .channels()
            .map(|m| {
                let active: Vec<Value> = m
                    .active
                    .iter()
                    .map(|(n, a)| {
                        json!({
                            "node": n.0, "tier": a.tier,
                            "phase": format!("{:?}", a.phase).to_lowercase(),
                            "parents": a.parents.iter().map(|p| p.0).collect::<Vec<_>>(),
                            "load": reg.get(*n).map(|r| r.estimated_load()).unwrap_or(0),
                        })
                    })
                    .collect();
                let per_tier: serde_json::Map<String, Value> = m
                    .count_per_tier()
                    .into_iter()
                    .map(|(t, c)| (t.to_string(), json!(c)))
                    .collect();
                json!({
                    "id": m.desc.id.0, "name": m.desc.name, "origin": m.origin.0,
                    "active_per_tier": per_tier, "active": active,
                })
            })
            .collect();
        let now = self.clock.now();
        let history: Vec<Value> = self
            .machine
            .history()
            .iter()
            .take(STATUS_HISTORY)
            .map(|(id, h)| {
                json!({
                    "node": id.0, "sessions": h.sessions,
                    "availability": h.availability(now),
                    "declared_uplink_kbps": h.declared_uplink_kbps,
                    "achieved_uplink_kbps": h.achieved_uplink_kbps.round(),
                    "fed_stall_rate": h.fed_stall_rate(),
                    "score": self.machine.history().score(now, *id),
                })
            })
            .collect();
        // Caps between regions in force in each peer overlay (C3, C5).
        let region_names: Vec<&str> = self.machine.registry().region_names().collect();
        let name = |r: tiercast_coordinator::registry::RegionId| {
            region_names.get(usize::from(r.0)).copied().unwrap_or("?")
        };
        let link_caps: Vec<Value> = self
            .machine
            .peer_overlays()
            .flat_map(|o| {
                o.region_caps().caps().map(move |(pair, allowed)| {
                    json!({
                        "channel": o.desc.name,
                        "regions": [name(pair.0), name(pair.1)],
                        "allowed_bps": allowed,
                        "booked_bps": o.booked_across(pair),
                        "links_shed": o.region_caps().shed,
                    })
                })
            })
            .collect();
        // Every manager, whatever its strategy, through the one read-only view (C1).
        let managers: Vec<Value> = self
            .machine
            .managers()
            .map(|m| {
                json!({
                    "channel": m.channel().name, "strategy": m.strategy().name(),
                    "carried": m.carried(),
                })
            })
            .collect();
        let s = self.machine.stats();
        json!({
            "epoch": self.machine.config().epoch,
            "managers": managers,
            "link_caps": link_caps,
            "history": history,
            "nodes": nodes,
            "channels": channels,
            "stats": {
                "distribute_events": s.distribute_events, "consolidate_events": s.consolidate_events,
                "redirects": s.redirects, "denied": s.denied, "heartbeats": s.heartbeats,
                "invalid_messages": s.invalid_messages, "send_errors": self.send_errors,
            },
            "events": self.history.iter().map(|(t, e)| json!({"ms": t, "event": e})).collect::<Vec<_>>(),
        })
    }
}
