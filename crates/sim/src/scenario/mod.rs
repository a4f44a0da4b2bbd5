//! The scenario file (X5; strategy switches for V6/V7, regions for V11, faults for
//! V10): TOML read with serde, every table `deny_unknown_fields`, then checked by
//! [`validate`] with errors that name the field. docs/SCENARIOS.md documents every
//! field and default.

mod check_events;
pub mod events;
pub mod validate;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use tiercast_netmodel::Distribution;

pub use events::{Arrival, Fault, Spacing, Target};
pub use validate::ScenarioError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataPlane {
    /// Real blocks through the machines and the network model.
    Blocks,
    /// No blocks: delivery computed each second from the machines' parent links.
    Rate,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub seed: u64,
    pub duration_s: f64,
    pub data_plane: DataPlane,
    /// Start of the steady part (relays_steady_ratio); default: half the duration.
    #[serde(default)]
    pub steady_from_s: Option<f64>,
    /// A block is on time when it reaches the viewer within this of its origin time.
    #[serde(default = "d_deadline")]
    pub playout_deadline_ms: u64,
    /// X3: the origin signs every block and every node checks it before storing
    /// or forwarding, as real nodes do (blocks mode; default on). Off only for
    /// speed at 10⁵⁺ nodes: reported as `blocks_verified` in metrics.json.
    #[serde(default = "d_verify")]
    pub verify_blocks: bool,
    /// Blocks mode with peers: each peer viewer runs the core's playout stage
    /// (`tiercast_node::Playout`, delay `playout_deadline_ms`) and a block counts
    /// as on time when the stage plays it by the deadline (`playout_books.rs`;
    /// default on). Off: on time when it arrives by the deadline. In metrics.json.
    #[serde(default = "d_verify")]
    pub playout_stage: bool,
    /// A viewer that never starts is counted as starving from this long after its watch.
    #[serde(default = "d_grace")]
    pub startup_grace_ms: u64,
    pub stream: Stream,
    /// C9: a second channel from the same origin, at the same rate (blocks
    /// mode); the crowds with `both_channels` watch it too (`second.rs`).
    #[serde(default)]
    pub second_stream: Option<SecondStream>,
    #[serde(default = "d_regions")]
    pub regions: Vec<RegionSpec>,
    #[serde(default)]
    pub latency: Latency,
    #[serde(default)]
    pub network: Network,
    pub node_classes: Vec<NodeClass>,
    #[serde(default)]
    pub viewers: Viewers,
    #[serde(default)]
    pub arrivals: Vec<Arrival>,
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Operators' policy files applied at their time (C3; `policies.rs`).
    #[serde(default)]
    pub policies: Vec<crate::policies::PolicyStep>,
    #[serde(default)]
    pub strategy: Strategy,
    /// The peer overlay, when `viewers.role = "peer"` (D1-D4, C2-C7).
    #[serde(default)]
    pub peers: PeersSpec,
    #[serde(default)]
    pub output: Output,
}

/// What arriving viewers are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewerRole {
    /// Protocol viewers: receive only, from relays.
    #[default]
    Viewer,
    /// Peers: receive from the peer overlay and upload with their uplink.
    Peer,
}

/// `[peers]`: the coordinator's peer overlay settings (defaults: `PeerConfig`'s).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersSpec {
    #[serde(default = "d_substreams")]
    pub substreams: u8,
    #[serde(default)]
    pub mesh_c: Option<u8>,
    #[serde(default)]
    pub top_uplink_factor: Option<f64>,
    #[serde(default)]
    pub stable_ms: Option<u64>,
    #[serde(default)]
    pub top_review_ms: Option<u64>,
    #[serde(default)]
    pub top_per_region: Option<usize>,
    #[serde(default)]
    pub candidates: Option<usize>,
    #[serde(default)]
    pub congestion_heartbeats: Option<u32>,
    #[serde(default)]
    pub full_threshold: Option<f64>,
    #[serde(default)]
    pub pending_grace_ms: Option<u64>,
    #[serde(default)]
    pub full_recompute_ms: Option<u64>,
    /// C7: keep parents that still fit; members told per heartbeat (see `PeerConfig`).
    #[serde(default)]
    pub recompute_keeps_parents: Option<bool>,
    #[serde(default)]
    pub recompute_keep_changes: Option<f64>,
    #[serde(default)]
    pub recompute_batch: Option<usize>,
    /// `PeerConfig::history_rank` (C4, D1): rank parents by history.
    #[serde(default)]
    pub history_rank: Option<bool>,
    #[serde(default)]
    pub top_tree_after_ms: Option<u64>,
    #[serde(default)]
    pub repair_link: Option<bool>,
    #[serde(default)]
    pub uplink_headroom: Option<f64>,
    #[serde(default)]
    pub top_repair_share: Option<f64>,
    /// D2, D5: the middle level (see `PeerConfig`).
    #[serde(default)]
    pub middle_uplink_factor: Option<f64>,
    #[serde(default)]
    pub middle_per_region: Option<usize>,
    #[serde(default)]
    pub max_redundancy: Option<u8>,
    #[serde(default)]
    pub target_group_loss: Option<f64>,
    #[serde(default)]
    pub middle_min_shards: Option<u64>,
    /// C8: when the bottom clusters split and merge (see `PeerConfig`).
    #[serde(default)]
    pub cluster_split_above: Option<u32>,
    #[serde(default)]
    pub cluster_merge_below: Option<u32>,
    #[serde(default)]
    pub cluster_split_ways: Option<u8>,
    /// Peers' heartbeat interval; default: `strategy.heartbeat_interval_ms`.
    #[serde(default)]
    pub heartbeat_interval_ms: Option<u64>,
    /// C4: a peer's block that waited this long for its uplink cap is dropped
    /// (`NodeConfig::uplink_max_wait_ms`; 0: never).
    #[serde(default)]
    pub uplink_max_wait_ms: Option<u64>,
    /// Blocks a peer buffers (its children resume and pull from there).
    #[serde(default = "d_peer_buffer")]
    pub buffer_blocks: usize,
    /// Children a peer machine accepts at most (its uplink is what the coordinator books).
    #[serde(default = "d_peer_capacity")]
    pub capacity: u32,
}

impl Default for PeersSpec {
    fn default() -> Self {
        toml::from_str("").expect("every peers field has a default")
    }
}

fn d_substreams() -> u8 {
    tiercast_coordinator::PeerConfig::default().substreams
}
fn d_peer_buffer() -> usize {
    256
}
fn d_peer_capacity() -> u32 {
    256
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    pub rate_kbps: u32,
    #[serde(default = "d_block_bytes")]
    pub block_bytes: u32,
    #[serde(default = "d_channel")]
    pub channel: String,
    /// Blocks mode: a keyframe block every this many ms (a new child starts there).
    #[serde(default = "d_keyframe")]
    pub keyframe_interval_ms: u64,
}

/// `[second_stream]`: the second channel's name (its rate, block size and
/// keyframes are `[stream]`'s).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondStream {
    pub channel: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    pub name: String,
    /// Uplinks of the viewers arriving in this region (its access networks);
    /// default: `viewers.uplink_kbps`.
    #[serde(default)]
    pub viewer_uplink_kbps: Option<tiercast_netmodel::Distribution>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// One-way latency in ms, `matrix_ms[from][to]`; may be omitted with one region.
    #[serde(default)]
    pub matrix_ms: Option<Vec<Vec<f64>>>,
    #[serde(default)]
    pub jitter_ms: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Loss probability per transmission attempt on every link.
    #[serde(default)]
    pub loss: f64,
    /// Loss per region pair, overriding `loss`.
    #[serde(default)]
    pub loss_matrix: Option<Vec<Vec<f64>>>,
    /// Messages are dropped when a node's uplink has more than this backlog.
    #[serde(default = "d_queue_limit")]
    pub uplink_queue_limit_ms: u64,
    /// How long a node takes to notice a crashed peer or a cut link (link idle timeout).
    #[serde(default = "d_link_timeout")]
    pub link_timeout_ms: u64,
    /// Where the coordinator runs; default: the first region.
    #[serde(default)]
    pub coordinator_region: Option<String>,
    /// How media travels: "stream" (reliable: a loss costs a retransmission and
    /// its delay) or "datagram" (a loss drops the block or shard; control
    /// messages stay reliable).
    #[serde(default)]
    pub media_transport: MediaTransport,
    /// Round trips a new connection costs before its first message (the QUIC
    /// handshake, then the cluster-key admission: 2, as measured over real
    /// sockets); 0 sends at once (the model before issue 13's comparison).
    #[serde(default = "d_handshake_rtts")]
    pub handshake_rtts: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaTransport {
    #[default]
    Stream,
    Datagram,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            loss: 0.0,
            loss_matrix: None,
            uplink_queue_limit_ms: d_queue_limit(),
            link_timeout_ms: d_link_timeout(),
            coordinator_region: None,
            media_transport: MediaTransport::Stream,
            handshake_rtts: d_handshake_rtts(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassRole {
    Origin,
    Relay,
}

/// Where nodes of a class or arrivals are placed: one region or weights per region.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeClass {
    pub name: String,
    pub role: ClassRole,
    #[serde(default)]
    pub tier: u8,
    #[serde(default = "d_one")]
    pub count: u32,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub region_weights: Option<BTreeMap<String, f64>>,
    /// Children (child relays + viewers) one node takes.
    pub capacity: u32,
    #[serde(default)]
    pub max_threshold: Option<u32>,
    #[serde(default)]
    pub min_threshold: Option<u32>,
    pub uplink_kbps: Distribution,
    #[serde(default)]
    pub downlink_kbps: Option<Distribution>,
    #[serde(default)]
    pub buffer_blocks: Option<usize>,
}

impl NodeClass {
    pub fn placement(&self) -> Placement {
        Placement {
            region: self.region.clone(),
            region_weights: self.region_weights.clone(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Viewers {
    #[serde(default = "d_viewer_up")]
    pub uplink_kbps: Distribution,
    #[serde(default = "d_viewer_down")]
    pub downlink_kbps: Distribution,
    #[serde(default = "d_viewer_buffer")]
    pub buffer_blocks: usize,
    /// Viewers are labelled `<label><n>`, n counting arrivals from 1.
    #[serde(default = "d_label")]
    pub label: String,
    /// Protocol viewers, or peers that upload (the peer overlay).
    #[serde(default)]
    pub role: ViewerRole,
    /// Share of the peers that are premium viewers (C3's `premium_first`); 0:
    /// none (and no draw is made, so other figures stay as they were).
    #[serde(default)]
    pub premium_fraction: f64,
    /// C8: networks (IPv4 /24 prefixes `10.<region>.<net>.0`) a region's peers
    /// are spread over, each peer's drawn from its id; 0: peers declare no
    /// address (all behind one prefix: their clusters never split).
    #[serde(default)]
    pub networks_per_region: u16,
}

impl Default for Viewers {
    fn default() -> Self {
        Viewers {
            uplink_kbps: d_viewer_up(),
            downlink_kbps: d_viewer_down(),
            buffer_blocks: d_viewer_buffer(),
            label: d_label(),
            role: ViewerRole::Viewer,
            premium_fraction: 0.0,
            networks_per_region: 0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    /// DISTRIBUTE threshold for every relay class without its own (0: capacity).
    #[serde(default)]
    pub max_threshold: u32,
    #[serde(default = "d_min_threshold")]
    pub min_threshold: u32,
    #[serde(default = "d_one_usize")]
    pub parents_per_relay: usize,
    #[serde(default = "d_hb")]
    pub heartbeat_interval_ms: u64,
    #[serde(default = "d_hb_timeout")]
    pub heartbeat_timeout_ms: u64,
    /// Viewers' heartbeat interval; default: `heartbeat_interval_ms`.
    #[serde(default)]
    pub viewer_heartbeat_interval_ms: Option<u64>,
    /// Whether protocol viewers send heartbeats at all (relays always do).
    #[serde(default = "d_true")]
    pub viewer_heartbeats: bool,
    /// V10: a relay reports a parent silent this long while another delivers (0: off);
    /// default: the node's own default.
    #[serde(default)]
    pub parent_silence_ms: Option<u64>,
    /// V7: a relay's look-ahead ΔT for DISTRIBUTE / CONSOLIDATE (0: thresholds only);
    /// default: the coordinator's ΔT when `prediction` is on, else 0.
    #[serde(default)]
    pub predict_delta_t_ms: Option<u64>,
    #[serde(default = "d_watch_retry")]
    pub watch_retry_ms: u64,
    #[serde(default = "d_retry_after")]
    pub retry_after_s: u32,
    /// V7: predicted login/logoff rates drive DISTRIBUTE and CONSOLIDATE.
    #[serde(default)]
    pub prediction: bool,
    /// V6: DISTRIBUTE activates a server farm sized by the arrival rate.
    #[serde(default)]
    pub farms: bool,
    /// V6/V7 tuning, passed to the coordinator when given (its defaults otherwise).
    #[serde(default)]
    pub alpha_arrival: Option<f64>,
    #[serde(default)]
    pub delta_t_ms: Option<u64>,
    #[serde(default)]
    pub stability_sp_ms: Option<u64>,
    #[serde(default)]
    pub smoothing_alpha: Option<f64>,
    #[serde(default)]
    pub smoothing_beta: Option<f64>,
    #[serde(default)]
    pub max_farm_size: Option<usize>,
    /// C9: a channel under its share of a node on several channels lends the
    /// rest (`CoordinatorConfig::uplink_lending`; default: on).
    #[serde(default)]
    pub uplink_lending: Option<bool>,
    /// C1: a channel with no origin and no viewer this long is retired
    /// (`CoordinatorConfig::channel_retire_after_ms`; 0: never; default 60 s).
    #[serde(default)]
    pub channel_retire_after_ms: Option<u64>,
    /// C5: reservations on capped links count what the links across really
    /// carried (`CoordinatorConfig::reservations_measured`; default: off).
    #[serde(default)]
    pub reservations_measured: Option<bool>,
}

impl Default for Strategy {
    fn default() -> Self {
        toml::from_str("").expect("every strategy field has a default")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    #[serde(default = "d_true")]
    pub plots: bool,
    #[serde(default = "d_true")]
    pub event_log: bool,
    #[serde(default = "d_true")]
    pub nodes_csv: bool,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            plots: true,
            event_log: true,
            nodes_csv: true,
        }
    }
}

fn d_verify() -> bool {
    true
}
fn d_deadline() -> u64 {
    5000
}
fn d_grace() -> u64 {
    5000
}
fn d_regions() -> Vec<RegionSpec> {
    vec![RegionSpec {
        name: "default".into(),
        viewer_uplink_kbps: None,
    }]
}
fn d_block_bytes() -> u32 {
    16 * 1024
}
fn d_channel() -> String {
    "live".into()
}
fn d_keyframe() -> u64 {
    2000
}
fn d_handshake_rtts() -> u32 {
    tiercast_netmodel::DEFAULT_HANDSHAKE_RTTS
}

fn d_queue_limit() -> u64 {
    2000
}
fn d_link_timeout() -> u64 {
    10_000
}
fn d_one() -> u32 {
    1
}
fn d_one_usize() -> usize {
    1
}
fn d_viewer_up() -> Distribution {
    Distribution::fixed(5_000.0)
}
fn d_viewer_down() -> Distribution {
    Distribution::fixed(50_000.0)
}
fn d_viewer_buffer() -> usize {
    8
}
fn d_label() -> String {
    "u".into()
}
fn d_min_threshold() -> u32 {
    2
}
fn d_hb() -> u64 {
    1000
}
fn d_hb_timeout() -> u64 {
    3500
}
fn d_watch_retry() -> u64 {
    500
}
fn d_retry_after() -> u32 {
    2
}
fn d_true() -> bool {
    true
}

impl Scenario {
    /// Parses and validates a scenario.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let sc: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        sc.validate()?;
        Ok(sc)
    }

    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::Io(format!("{}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| e.in_file(path))
    }

    pub fn duration_us(&self) -> u64 {
        (self.duration_s * 1e6).round() as u64
    }

    /// Microseconds between two blocks at the stream rate.
    pub fn block_interval_us(&self) -> u64 {
        (self.stream.block_bytes as u64 * 8000 / self.stream.rate_kbps.max(1) as u64).max(1)
    }

    pub fn steady_from_us(&self) -> u64 {
        (self.steady_from_s.unwrap_or(self.duration_s / 2.0) * 1e6).round() as u64
    }

    /// The coordinator's configuration from `[strategy]`.
    pub fn coordinator_config(&self) -> tiercast_coordinator::CoordinatorConfig {
        let s = &self.strategy;
        let d = tiercast_coordinator::CoordinatorConfig::default();
        tiercast_coordinator::CoordinatorConfig {
            parents_per_relay: s.parents_per_relay,
            heartbeat_interval_ms: s.heartbeat_interval_ms,
            heartbeat_timeout_ms: s.heartbeat_timeout_ms,
            retry_after_s: s.retry_after_s,
            prediction: s.prediction,
            farms: s.farms,
            alpha_arrival: s.alpha_arrival.unwrap_or(d.alpha_arrival),
            delta_t_ms: s.delta_t_ms.unwrap_or(d.delta_t_ms),
            stability_sp_ms: s.stability_sp_ms.unwrap_or(d.stability_sp_ms),
            smoothing_alpha: s.smoothing_alpha.unwrap_or(d.smoothing_alpha),
            smoothing_beta: s.smoothing_beta.unwrap_or(d.smoothing_beta),
            max_farm_size: s.max_farm_size.unwrap_or(d.max_farm_size),
            uplink_lending: s.uplink_lending.unwrap_or(d.uplink_lending),
            channel_retire_after_ms: s
                .channel_retire_after_ms
                .unwrap_or(d.channel_retire_after_ms),
            reservations_measured: s.reservations_measured.unwrap_or(d.reservations_measured),
            peers: self.peer_config(),
            ..d
        }
    }

    pub fn peers_mode(&self) -> bool {
        self.viewers.role == ViewerRole::Peer
    }

    /// Whether peer viewers run the playout stage (`playout_stage`, blocks mode, peers).
    pub fn runs_playout(&self) -> bool {
        self.playout_stage && self.peers_mode() && self.data_plane == DataPlane::Blocks
    }

    /// The coordinator's peer overlay settings from `[peers]` and the stream rate.
    pub fn peer_config(&self) -> tiercast_coordinator::PeerConfig {
        let p = &self.peers;
        let d = tiercast_coordinator::PeerConfig::default();
        tiercast_coordinator::PeerConfig {
            substreams: p.substreams,
            stream_rate_kbps: self.stream.rate_kbps,
            mesh_c: p.mesh_c.unwrap_or(d.mesh_c),
            top_uplink_factor: p.top_uplink_factor.unwrap_or(d.top_uplink_factor),
            stable_ms: p.stable_ms.unwrap_or(d.stable_ms),
            top_review_ms: p.top_review_ms.unwrap_or(d.top_review_ms),
            top_per_region: p.top_per_region.unwrap_or(d.top_per_region),
            candidates: p.candidates.unwrap_or(d.candidates),
            congestion_heartbeats: p.congestion_heartbeats.unwrap_or(d.congestion_heartbeats),
            full_threshold: p.full_threshold.unwrap_or(d.full_threshold),
            pending_grace_ms: p.pending_grace_ms.unwrap_or(d.pending_grace_ms),
            full_recompute_ms: p.full_recompute_ms.unwrap_or(d.full_recompute_ms),
            recompute_keeps_parents: p
                .recompute_keeps_parents
                .unwrap_or(d.recompute_keeps_parents),
            recompute_keep_changes: p.recompute_keep_changes.unwrap_or(d.recompute_keep_changes),
            recompute_batch: p.recompute_batch.unwrap_or(d.recompute_batch),
            history_rank: p.history_rank.unwrap_or(d.history_rank),
            top_tree_after_ms: p.top_tree_after_ms.unwrap_or(d.top_tree_after_ms),
            repair_link: p.repair_link.unwrap_or(d.repair_link),
            uplink_headroom: p.uplink_headroom.unwrap_or(d.uplink_headroom),
            top_repair_share: p.top_repair_share.unwrap_or(d.top_repair_share),
            middle_uplink_factor: p.middle_uplink_factor.unwrap_or(d.middle_uplink_factor),
            middle_per_region: p.middle_per_region.unwrap_or(d.middle_per_region),
            max_redundancy: p.max_redundancy.unwrap_or(d.max_redundancy),
            target_group_loss: p.target_group_loss.unwrap_or(d.target_group_loss),
            middle_min_shards: p.middle_min_shards.unwrap_or(d.middle_min_shards),
            peer_link_cap: p.capacity,
            cluster_split_above: p.cluster_split_above.unwrap_or(d.cluster_split_above),
            cluster_merge_below: p.cluster_merge_below.unwrap_or(d.cluster_merge_below),
            cluster_split_ways: p.cluster_split_ways.unwrap_or(d.cluster_split_ways),
            ..d
        }
    }

    pub fn peer_heartbeat_ms(&self) -> u64 {
        self.peers
            .heartbeat_interval_ms
            .unwrap_or(self.strategy.heartbeat_interval_ms)
    }

    pub fn viewer_heartbeat_ms(&self) -> u64 {
        self.strategy
            .viewer_heartbeat_interval_ms
            .unwrap_or(self.strategy.heartbeat_interval_ms)
    }
}
