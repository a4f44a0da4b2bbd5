//! Arrivals and faults of a scenario (X5; V10's failure cases, V11's partitions):
//! `[[arrivals]]` (flash crowds, churn, leave waves) and `[[faults]]` (crashes,
//! leaves, link cuts, partitions, restarts, flaky peers), as serde reads them.

use serde::Deserialize;
use std::collections::BTreeMap;
use tiercast_netmodel::Distribution;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spacing {
    /// Independent uniform times in the window.
    #[default]
    Random,
    /// `start + i·over/count`.
    Even,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Arrival {
    /// `count` viewers arrive between `start_s` and `start_s + over_s`.
    FlashCrowd {
        count: u64,
        #[serde(default)]
        start_s: f64,
        #[serde(default)]
        over_s: f64,
        #[serde(default)]
        spacing: Spacing,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        region_weights: Option<BTreeMap<String, f64>>,
        /// Session length in seconds; default: stay to the end.
        #[serde(default)]
        session_s: Option<Distribution>,
        /// C9: these viewers also watch the scenario's second channel
        /// (`[second_stream]`).
        #[serde(default)]
        both_channels: bool,
        /// This crowd's uplinks (kbps); default: its region's, else
        /// `viewers.uplink_kbps`.
        #[serde(default)]
        uplink_kbps: Option<Distribution>,
    },
    /// Poisson arrivals (`rate_per_s`) or a steady `population` (each leaver replaced).
    Churn {
        #[serde(default)]
        rate_per_s: Option<f64>,
        #[serde(default)]
        population: Option<u64>,
        /// The initial population arrives over this long.
        #[serde(default)]
        ramp_s: f64,
        session_s: Distribution,
        #[serde(default)]
        start_s: f64,
        #[serde(default)]
        until_s: Option<f64>,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        region_weights: Option<BTreeMap<String, f64>>,
    },
    /// A `fraction` of the viewers present at `at_s` (or the listed ones) leave over `over_s`.
    LeaveWave {
        #[serde(default)]
        fraction: Option<f64>,
        #[serde(default)]
        labels: Option<Vec<String>>,
        at_s: f64,
        #[serde(default)]
        over_s: f64,
    },
}

/// Which relays a crash or leave hits: listed labels, or a fraction / count of a class or tier.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub nodes: Option<Vec<String>>,
    pub class: Option<String>,
    pub tier: Option<u8>,
    pub fraction: Option<f64>,
    pub count: Option<u32>,
    pub active: bool,
    /// Peers on the top level of the overlay (D3), instead of relays.
    pub top_peers: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Nodes stop dead; peers notice after `network.link_timeout_ms`.
    Crash {
        #[serde(default)]
        nodes: Option<Vec<String>>,
        #[serde(default)]
        class: Option<String>,
        #[serde(default)]
        tier: Option<u8>,
        #[serde(default)]
        fraction: Option<f64>,
        #[serde(default)]
        count: Option<u32>,
        /// Pick only among relays the coordinator has active for the channel.
        #[serde(default)]
        active: bool,
        /// Pick among the peers on the overlay's top level instead (D3).
        #[serde(default)]
        top_peers: bool,
        at_s: f64,
    },
    /// Nodes exit; their links close, peers notice after one latency.
    Leave {
        #[serde(default)]
        nodes: Option<Vec<String>>,
        #[serde(default)]
        class: Option<String>,
        #[serde(default)]
        tier: Option<u8>,
        #[serde(default)]
        fraction: Option<f64>,
        #[serde(default)]
        count: Option<u32>,
        /// Pick only among relays the coordinator has active for the channel.
        #[serde(default)]
        active: bool,
        /// Pick among the peers on the overlay's top level instead (D3).
        #[serde(default)]
        top_peers: bool,
        at_s: f64,
    },
    /// Every link between nodes `a` and `b` (labels or class names) is cut.
    LinkCut {
        a: String,
        b: String,
        at_s: f64,
        #[serde(default)]
        until_s: Option<f64>,
    },
    /// Relays or the origin stop dead (as `crash`) and start again `down_s` later
    /// with their configuration and a new incarnation; a restarted origin keeps its
    /// key and continues its seq (its data dir), as `tiercast origin` does (D7).
    Restart {
        #[serde(default)]
        nodes: Option<Vec<String>>,
        #[serde(default)]
        class: Option<String>,
        #[serde(default)]
        tier: Option<u8>,
        #[serde(default)]
        fraction: Option<f64>,
        #[serde(default)]
        count: Option<u32>,
        /// Pick only among relays the coordinator has active for the channel.
        #[serde(default)]
        active: bool,
        at_s: f64,
        down_s: f64,
    },
    /// The coordinator stops dead and starts again `down_s` later with no state:
    /// nodes notice at their link's timeout, or at once when it is back (the new
    /// process answers their next keep-alive with a stateless reset).
    CoordinatorRestart { at_s: f64, down_s: f64 },
    /// Flaky peers (C4, D1: what the history store is for): `fraction` or `count`
    /// of the peers watching at `at_s` that declared at least `min_uplink_kbps`
    /// each crash every `every_s` (the first time uniform in `[at_s, at_s +
    /// every_s)`) and start again `down_s` later under the same node id (a new
    /// incarnation), register and watch again; no crash after `until_s`
    /// (`flaky.rs`).
    Flaky {
        #[serde(default)]
        fraction: Option<f64>,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        min_uplink_kbps: u32,
        at_s: f64,
        every_s: f64,
        down_s: f64,
        #[serde(default)]
        until_s: Option<f64>,
    },
    /// X3 (issue 18's liar, issue 13's forged block): the nodes alter the
    /// payload of every block they send from `at_s` (until `until_s`): their
    /// children's signature check rejects it (`rejected_blocks`), and a block
    /// stored altered anywhere is counted in `tampered_blocks_stored`.
    Tamper {
        #[serde(default)]
        nodes: Option<Vec<String>>,
        #[serde(default)]
        class: Option<String>,
        #[serde(default)]
        tier: Option<u8>,
        #[serde(default)]
        fraction: Option<f64>,
        #[serde(default)]
        count: Option<u32>,
        /// Pick only among relays the coordinator has active for the channel.
        #[serde(default)]
        active: bool,
        /// Pick among the peers on the overlay's top level instead (D3).
        #[serde(default)]
        top_peers: bool,
        at_s: f64,
        #[serde(default)]
        until_s: Option<f64>,
    },
    /// The listed regions are cut off from the others.
    Partition {
        regions: Vec<String>,
        at_s: f64,
        #[serde(default)]
        until_s: Option<f64>,
    },
}

impl Fault {
    /// The nodes a crash or leave hits (None for cuts and partitions).
    pub fn target(&self) -> Option<Target> {
        match self {
            Fault::Crash {
                nodes,
                class,
                tier,
                fraction,
                count,
                active,
                top_peers,
                ..
            }
            | Fault::Leave {
                nodes,
                class,
                tier,
                fraction,
                count,
                active,
                top_peers,
                ..
            }
            | Fault::Tamper {
                nodes,
                class,
                tier,
                fraction,
                count,
                active,
                top_peers,
                ..
            } => Some(Target {
                nodes: nodes.clone(),
                class: class.clone(),
                tier: *tier,
                fraction: *fraction,
                count: *count,
                active: *active,
                top_peers: *top_peers,
            }),
            Fault::Restart {
                nodes,
                class,
                tier,
                fraction,
                count,
                active,
                ..
            } => Some(Target {
                nodes: nodes.clone(),
                class: class.clone(),
                tier: *tier,
                fraction: *fraction,
                count: *count,
                active: *active,
                top_peers: false,
            }),
            _ => None,
        }
    }

    /// How long a restart keeps its nodes down (None for other faults).
    pub fn down_s(&self) -> Option<f64> {
        match self {
            Fault::Restart { down_s, .. } | Fault::CoordinatorRestart { down_s, .. } => {
                Some(*down_s)
            }
            _ => None,
        }
    }

    pub fn at_s(&self) -> f64 {
        match self {
            Fault::Crash { at_s, .. }
            | Fault::Leave { at_s, .. }
            | Fault::LinkCut { at_s, .. }
            | Fault::Restart { at_s, .. }
            | Fault::CoordinatorRestart { at_s, .. }
            | Fault::Flaky { at_s, .. }
            | Fault::Tamper { at_s, .. }
            | Fault::Partition { at_s, .. } => *at_s,
        }
    }
}
