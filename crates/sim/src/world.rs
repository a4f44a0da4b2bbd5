//! The simulated world (X5): the coordinator machine (NodeId 0), every node machine
//! in a `Vec` indexed by its dense node id (ids are handed out densely, so the id
//! *is* the index: coordinator 0, then the scenario's classes in file order, then
//! viewers in arrival order), the network model, the event queue, and the
//! bookkeeping around them. Construction lives here; the event loop in `run`.

use crate::blocks::Ingest;
use crate::faults::FaultState;
use crate::invariants::Checker;
use crate::log::EventLog;
use crate::metrics::Metrics;
use crate::population::Population;
use crate::queue::Queue;
use crate::scenario::{ClassRole, Placement, Scenario};
use crate::viewer::ViewerStats;
use crate::SimError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tiercast_coordinator::Coordinator;
use tiercast_netmodel::{Distribution, HostSpec, NetModel, RegionId};
use tiercast_node::{Node, NodeConfig};
use tiercast_proto::{ChannelId, NodeId, NodeRole, Timestamp};

/// No timer pending.
pub(crate) const NO_TIMER: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Origin,
    Relay,
    Viewer,
}

/// One machine's place in the simulator. The machine is boxed so a departed or
/// crashed node costs one pointer.
pub(crate) struct Slot {
    pub node: Option<Box<Node>>,
    pub timer_at: u64,
    pub timer_gen: u32,
    pub role: Role,
    /// Class index (origin, relays) or arrival process (viewers).
    pub group: u16,
}

/// How a run is driven and what it keeps.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Where metrics.json, events.log, timeline.csv, nodes.csv and the plots go.
    pub out_dir: Option<PathBuf>,
    /// A progress bar (terminal) or progress lines (otherwise) on stderr.
    pub progress: bool,
    /// Keep every coordinator event in memory (for tests).
    pub keep_events: bool,
    /// Keep each peer viewer's playout trace (pushes and plays; for tests):
    /// `Report::playout_traces`.
    pub playout_trace: bool,
}

/// A planted bug the invariant checker must catch (test hook).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plant {
    /// This node's uplink ignores its queue: it sends faster than its uplink.
    UplinkBypass(String),
    /// The first block stored at a viewer is counted twice.
    DoubleCount,
    /// One viewer is left out of the served / joining / starving classification.
    SkipStarving,
    /// The first viewer to switch relays (a second watch session) does not count
    /// the next this many blocks it stores: a gap across the switch that the
    /// accounting must show as missed.
    GapAfterSwitch(u32),
}

pub struct Simulation {
    pub(crate) sc: Scenario,
    pub(crate) opts: RunOptions,
    pub(crate) now: u64,
    pub(crate) end: u64,
    pub(crate) queue: Queue,
    pub(crate) net: NetModel,
    pub(crate) coord: Coordinator,
    pub(crate) slots: Vec<Slot>,
    /// Labels of the coordinator, origin and relays (index = id).
    pub(crate) labels: Vec<String>,
    pub(crate) first_viewer: u32,
    pub(crate) viewers: Vec<ViewerStats>,
    pub(crate) origin: u32,
    pub(crate) channel: Option<ChannelId>,
    pub(crate) ingest: Ingest,
    /// The origin's key and the nodes that alter what they send (X3).
    pub(crate) signing: crate::signing::Signing,
    /// The scenario's second channel, if any (C9; `second.rs`).
    pub(crate) second: Option<crate::second::SecondChannel>,
    pub(crate) population: Population,
    pub(crate) faults: FaultState,
    pub(crate) metrics: Metrics,
    pub(crate) checker: Checker,
    pub(crate) log: EventLog,
    pub(crate) rng_caps: ChaCha8Rng,
    pub(crate) rng_arrivals: ChaCha8Rng,
    pub(crate) rng_faults: ChaCha8Rng,
    /// Relay tiers of the scenario, ascending, with the largest capacity in each.
    pub(crate) tier_caps: BTreeMap<u8, u32>,
    pub(crate) plants: Vec<Plant>,
    pub(crate) memo: crate::rate::Memo,
    /// Per region and slot: expected and on time (efficiency, regions, fault windows).
    pub(crate) ledger: crate::ledger::Ledger,
    /// The same over the overlay's members at the time (`members_ledger`).
    pub(crate) members_ledger: crate::ledger::Ledger,
    /// The origin's bytes as its uplink sent them, per second.
    pub(crate) origin_sent: crate::upload::UploadMeter,
    /// Media between region pairs per second, against the policies' caps.
    pub(crate) pair_meter: crate::policies::RegionPairMeter,
    /// Each fault's window and orphans.
    pub(crate) fault_windows: crate::fault_windows::FaultWindows,
    /// When the coordinator made each full recomputation of the peer overlay (µs).
    pub(crate) recomputes: Vec<u64>,
    /// Per peer, when the coordinator ejected it (C6; how often one peer is
    /// ejected again).
    pub(crate) ejections: std::collections::BTreeMap<u32, Vec<u64>>,
    /// Asks of ejected peers turned away (C6).
    pub(crate) turned_away: u64,
    /// Restarts of nodes and of the coordinator (D7).
    pub(crate) restarts: crate::restarts::Restarts,
    /// Flaky peers (C4, D1; `flaky.rs`).
    pub(crate) flaky: crate::flaky::FlakyState,
    /// `Plant::GapAfterSwitch` armed: the viewer and the blocks left to skip.
    pub(crate) planted_gap: Option<(u32, u32)>,
    /// Events processed (stale timers excluded).
    pub(crate) events: u64,
    /// The playout stage peer viewers run (`None`: viewers count arrivals by the
    /// deadline; `playout_books.rs`), their stages by viewer index, their summed
    /// counters once closed, traces (tests) and a scratch buffer.
    pub(crate) playout_cfg: Option<tiercast_node::PlayoutConfig>,
    pub(crate) playouts: BTreeMap<u32, crate::playout::ViewerPlayout>,
    pub(crate) playout_totals: crate::playout::PlayoutTotals,
    pub(crate) playout_traces: Vec<crate::playout::PlayoutTrace>,
    pub(crate) playout_scratch: Vec<(u64, crate::playout::SimBlock)>,
}

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// A capacity drawn in kbps (at least 1).
pub(crate) fn draw_kbps(d: &Distribution, rng: &mut ChaCha8Rng) -> u32 {
    d.sample(rng).round().clamp(1.0, u32::MAX as f64) as u32
}

/// Picks a region from a placement (the default region when none is given);
/// `tiercast cluster`'s plan draws with it too.
pub fn pick_region(
    p: &Placement,
    regions: &tiercast_netmodel::Regions,
    rng: &mut ChaCha8Rng,
) -> RegionId {
    if let Some(r) = &p.region {
        return regions.id(r).unwrap_or(0);
    }
    if let Some(w) = &p.region_weights {
        let total: f64 = w.values().sum();
        let mut x = rand::Rng::gen::<f64>(rng) * total;
        for (name, wi) in w {
            if x < *wi {
                return regions.id(name).unwrap_or(0);
            }
            x -= wi;
        }
        return w.keys().last().and_then(|n| regions.id(n)).unwrap_or(0);
    }
    0
}

impl Simulation {
    pub fn new(sc: Scenario, opts: RunOptions) -> Result<Self, SimError> {
        sc.validate()?;
        let regions = sc.build_regions()?;
        let coord_region = sc
            .network
            .coordinator_region
            .as_deref()
            .and_then(|r| regions.id(r))
            .unwrap_or(0);
        let mut net = NetModel::new(regions, sc.seed, sc.network.uplink_queue_limit_ms);
        net.set_media_datagrams(
            sc.network.media_transport == crate::scenario::MediaTransport::Datagram,
        );
        net.set_handshake_rtts(sc.network.handshake_rtts);
        let coord = Coordinator::new(sc.coordinator_config(), Timestamp::ZERO);
        let coord_host = net.add_host(HostSpec {
            region: coord_region,
            uplink_kbps: 0,
            downlink_kbps: 0,
        });
        debug_assert_eq!(coord_host, 0);
        let mut tier_caps = BTreeMap::new();
        for c in sc
            .node_classes
            .iter()
            .filter(|c| c.role == ClassRole::Relay)
        {
            let e = tier_caps.entry(c.tier).or_insert(0);
            *e = (*e).max(c.capacity);
        }
        let log = EventLog::open(&opts, sc.output.event_log)?;
        let mut sim = Simulation {
            end: sc.duration_us(),
            now: 0,
            queue: Queue::default(),
            net,
            coord,
            slots: vec![Slot {
                node: None,
                timer_at: NO_TIMER,
                timer_gen: 0,
                role: Role::Coordinator,
                group: 0,
            }],
            labels: vec!["coordinator".into()],
            first_viewer: 0,
            viewers: Vec::new(),
            origin: 0,
            channel: None,
            ingest: Ingest::new(&sc),
            signing: crate::signing::Signing::new(
                sc.verify_blocks && sc.data_plane == crate::scenario::DataPlane::Blocks,
            ),
            second: crate::second::SecondChannel::new(&sc),
            population: Population::default(),
            faults: FaultState::default(),
            metrics: Metrics::new(&sc),
            checker: Checker::default(),
            log,
            rng_caps: rng(sc.seed, 1),
            rng_arrivals: rng(sc.seed, 2),
            rng_faults: rng(sc.seed, 3),
            tier_caps,
            plants: Vec::new(),
            memo: Default::default(),
            ledger: crate::ledger::Ledger::new(
                sc.data_plane == crate::scenario::DataPlane::Blocks,
                sc.regions.len().max(1),
            ),
            members_ledger: crate::ledger::Ledger::new(
                sc.data_plane == crate::scenario::DataPlane::Blocks,
                sc.regions.len().max(1),
            ),
            origin_sent: Default::default(),
            pair_meter: Default::default(),
            fault_windows: Default::default(),
            recomputes: Vec::new(),
            ejections: Default::default(),
            turned_away: 0,
            restarts: Default::default(),
            flaky: Default::default(),
            planted_gap: None,
            events: 0,
            playout_cfg: sc
                .runs_playout()
                .then(|| crate::playout_books::stage_config(sc.playout_deadline_ms)),
            playouts: BTreeMap::new(),
            playout_totals: Default::default(),
            playout_traces: Vec::new(),
            playout_scratch: Vec::new(),
            sc,
            opts,
        };
        sim.checker.add_host();
        sim.reschedule(0, sim.coord.poll_timeout());
        sim.create_class_nodes();
        sim.first_viewer = sim.slots.len() as u32;
        sim.population = Population::from_scenario(&sim.sc, &mut sim.rng_arrivals);
        Ok(sim)
    }

    /// Plants a bug the invariant checker must report (test hook).
    pub fn plant(&mut self, p: Plant) -> Result<(), SimError> {
        if let Plant::UplinkBypass(label) = &p {
            let id = self
                .node_id(label)
                .ok_or_else(|| SimError::Plant(format!("no node labelled {label:?}")))?;
            self.net.set_bypass_queue(id.0, true);
        }
        self.plants.push(p);
        Ok(())
    }

    /// The node with this label (`S`, `P32`, `u7`, ...).
    pub fn node_id(&self, label: &str) -> Option<NodeId> {
        if let Some(i) = self.labels.iter().position(|l| l == label) {
            return Some(NodeId(i as u32));
        }
        let n: u32 = label.strip_prefix(&self.sc.viewers.label)?.parse().ok()?;
        (n >= 1 && (n as usize) <= self.viewers.len()).then(|| NodeId(self.first_viewer + n - 1))
    }

    /// The label of a node id.
    pub fn label(&self, id: NodeId) -> String {
        match self.labels.get(id.0 as usize) {
            Some(l) => l.clone(),
            None => format!("{}{}", self.sc.viewers.label, id.0 - self.first_viewer + 1),
        }
    }

    fn create_class_nodes(&mut self) {
        let classes = self.sc.node_classes.clone();
        for (ci, c) in classes.iter().enumerate() {
            let min = c.min_threshold.unwrap_or(self.sc.strategy.min_threshold);
            let max = c.max_threshold.unwrap_or(self.sc.strategy.max_threshold);
            let down = c
                .downlink_kbps
                .clone()
                .unwrap_or(Distribution::fixed(10_000_000.0));
            for i in 0..c.count {
                let region = pick_region(&c.placement(), self.net.regions(), &mut self.rng_caps);
                let up = draw_kbps(&c.uplink_kbps, &mut self.rng_caps);
                let down = draw_kbps(&down, &mut self.rng_caps);
                let id = self.slots.len() as u32;
                let (role, node_role) = match c.role {
                    ClassRole::Origin => (Role::Origin, NodeRole::Origin),
                    ClassRole::Relay => (Role::Relay, NodeRole::Relay),
                };
                let cfg = NodeConfig {
                    id: NodeId(id),
                    role: node_role,
                    tier: c.tier,
                    region: self.net.regions().name(region).to_string(),
                    capacity: c.capacity,
                    max_threshold: max.min(c.capacity),
                    min_threshold: if role == Role::Relay { min } else { 0 },
                    heartbeat_interval_ms: self.sc.strategy.heartbeat_interval_ms,
                    buffer_blocks: c.buffer_blocks.unwrap_or(match self.sc.data_plane {
                        crate::scenario::DataPlane::Blocks => 512,
                        crate::scenario::DataPlane::Rate => 8,
                    }),
                    verify_blocks: self.signing.verifies(),
                    verify_memo: self.signing.memo(),
                    watch_retry_ms: self.sc.strategy.watch_retry_ms,
                    predict_delta_t_ms: self.predict_delta_t_ms(),
                    // Declared, so the peer overlay can book it (relays are waypoints).
                    uplink_kbps: up,
                    ..NodeConfig::default()
                };
                let cfg = NodeConfig {
                    parent_silence_ms: self
                        .sc
                        .strategy
                        .parent_silence_ms
                        .unwrap_or(cfg.parent_silence_ms),
                    // The simulator has no backup origin, the one thing a tier-1
                    // relay's report of its silent origin is for (D7): off, so
                    // a scenario's block rate never makes reports for nothing.
                    origin_silence_ms: 0,
                    ..cfg
                };
                cfg.validate()
                    .expect("scenario validation covers node configuration");
                self.add_machine(id, cfg, role, ci as u16, region, up, down);
                self.labels
                    .push(crate::scenario::validate::class_label(&c.name, c.count, i));
                if role == Role::Origin {
                    self.origin = id;
                    let name = self.sc.stream.channel.clone();
                    let now = Timestamp(self.now);
                    let key = self.signing.public_key();
                    if let Some(n) = self.slots[id as usize].node.as_mut() {
                        n.announce(&name, key);
                        let _ = now;
                    }
                    self.drain_node(id);
                    self.announce_second(id);
                }
            }
        }
    }

    /// Creates a machine with the next id and sends what it sends at start.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_machine(
        &mut self,
        id: u32,
        cfg: NodeConfig,
        role: Role,
        group: u16,
        region: RegionId,
        up_kbps: u32,
        down_kbps: u32,
    ) {
        debug_assert_eq!(id as usize, self.slots.len());
        let host = self.net.add_host(HostSpec {
            region,
            uplink_kbps: up_kbps,
            downlink_kbps: down_kbps,
        });
        debug_assert_eq!(host, id);
        self.checker.add_host();
        self.slots.push(Slot {
            node: Some(Box::new(Node::new(cfg, Timestamp(self.now)))),
            timer_at: NO_TIMER,
            timer_gen: 0,
            role,
            group,
        });
        self.metrics.nodes_created += 1;
        self.drain_node(id);
    }

    /// The relays' ΔT look-ahead (V7): as given, else the coordinator's with prediction on.
    fn predict_delta_t_ms(&self) -> u64 {
        let s = &self.sc.strategy;
        s.predict_delta_t_ms.unwrap_or(if s.prediction {
            self.sc.coordinator_config().delta_t_ms
        } else {
            0
        })
    }

    pub(crate) fn is_alive(&self, id: u32) -> bool {
        self.slots
            .get(id as usize)
            .is_some_and(|s| s.node.is_some())
    }

    pub(crate) fn role(&self, id: u32) -> Role {
        self.slots[id as usize].role
    }

    pub fn scenario(&self) -> &Scenario {
        &self.sc
    }

    pub fn coordinator(&self) -> &Coordinator {
        &self.coord
    }

    /// A live node machine.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.slots.get(id.0 as usize)?.node.as_deref()
    }
}
