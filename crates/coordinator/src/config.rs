//! Coordinator configuration: plain data, defaults that work on one machine.

#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// Parents each relay takes from the tier above (V9); more when the tier has them.
    pub parents_per_relay: usize,
    pub heartbeat_interval_ms: u64,
    /// A node silent this long is presumed crashed.
    pub heartbeat_timeout_ms: u64,
    /// A tier-1 relay reported the origin of a channel with a live standby
    /// silent: the origin is sent a `Probe`, and if it has sent nothing within
    /// this long it is lost and the standby promoted (D7, issue 12). Covers a
    /// round trip to the origin; well under a GOP.
    pub origin_probe_ms: u64,
    /// `Retry-After` given to viewers when the whole entry tier is full.
    pub retry_after_s: u32,
    /// The Unix time (s) of `Timestamp` 0: what the hour-of-day rules
    /// (`no_relay_hours`, C3) read the clock against. 0 (the default, and the
    /// simulator's): its clock starts at midnight UTC. The network driver sets
    /// it to the wall clock when it starts (its `Timestamp` counts from then).
    pub clock_epoch_unix_s: u64,
    /// Most channels and nodes the coordinator accepts.
    pub max_channels: usize,
    pub max_nodes: usize,
    /// V7: predict login/logoff rates (double exponential smoothing) and use them in
    /// DISTRIBUTE (capacity over `sp`, MIN_s groups) and CONSOLIDATE (ignored when it
    /// would force an activation within `sp`). Off: V4/V5 as in Figures 2 and 4.
    pub prediction: bool,
    /// V6: DISTRIBUTE activates a server farm sized by the user arrival rate; viewers
    /// go to its members round-robin; a member's DISTRIBUTE counts for the farm.
    pub farms: bool,
    /// V6: α in `Average = New_User_Arrival_Rate + α·Average` (1 weighs all history
    /// equally, 0 only the current arrivals); in [0, 1].
    pub alpha_arrival: f64,
    /// V7: ΔT, the look-ahead of a relay's capacity (the time to redirect traffic);
    /// the rate predictions are updated every ΔT/10.
    pub delta_t_ms: u64,
    /// V7: the stability parameter sp — no change in the number of relays should be
    /// needed during the next `sp` after one is added or removed.
    pub stability_sp_ms: u64,
    /// V7: the double exponential smoothing weights α and β, each in (0, 1).
    pub smoothing_alpha: f64,
    pub smoothing_beta: f64,
    /// V6/V7: most relays activated at once by one DISTRIBUTE (the farm size limit).
    pub max_farm_size: usize,
    /// An active relay that has fed nobody for this long (activated ahead of load, or
    /// emptied while still expanding) is made idle (V5: zero load → idle); 0 = never.
    pub idle_relay_ms: u64,
    /// C3: when the servers-or-peers rule in force changes, at most this share
    /// of the peers it affects is moved per heartbeat interval (per channel and
    /// viewer class), in (0, 1]...
    pub source_switch_share: f64,
    /// ...and at least this many (≥ 1).
    pub source_switch_min: u32,
    /// C9: a channel using less than its share of a node on several channels
    /// lends the rest to the others there (and takes it back when it needs
    /// it); off, each channel's share is the static split by rate.
    pub uplink_lending: bool,
    /// C1: a channel with no origin (gone, and no origin took it over) and no
    /// viewer — no peer in its overlay, no viewer at its relays — for this long
    /// has its managers retired by the service manager: its name is forgotten
    /// and a later announce starts it afresh. 0: channels are never retired;
    /// otherwise at least `heartbeat_timeout_ms` (a restarting origin has that
    /// long to come back at the very least).
    pub channel_retire_after_ms: u64,
    /// C5: measurement-based reservations on capped links — each manager's
    /// reservation counts what its links across really carried (the children's
    /// heartbeats, `network_monitor`) rather than what they book, so a channel
    /// using less than it booked leaves the rest of the cap to the others. Off
    /// (the default): the booked rate is counted.
    pub reservations_measured: bool,
    /// D7, X7: this process's epoch — the fencing token every order it sends
    /// carries (`Transmit::epoch`, `Message::Order`). It must grow with every
    /// restart or takeover: the network driver keeps it in the embedded store
    /// (or takes it from etcd's lease), the simulator counts restarts. A node
    /// follows the highest epoch it heard and ignores orders from older ones.
    /// At least 1.
    pub epoch: u64,
    /// The peer overlay (seeds 002, 003).
    pub peers: PeerConfig,
}

/// The peer overlay: substreams, the top level, reassignment (D1-D4, C2, C4, C6, C7).
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// k: substreams of the bottom multi-tree (block seq mod k), 1..=64.
    pub substreams: u8,
    /// The stream rate the overlay books uplink for.
    pub stream_rate_kbps: u32,
    /// c of the top level's c-connected mesh (survives c−1 failures).
    pub mesh_c: u8,
    /// A peer is preferred (top level) with uplink ≥ this × the stream rate...
    pub top_uplink_factor: f64,
    /// ...after this long in the overlay (stable), with no bad history.
    pub stable_ms: u64,
    /// How often the top level is reviewed (D1: re-evaluated periodically).
    pub top_review_ms: u64,
    /// A peer stays preferable with a history down to −this (transient trouble).
    pub history_tolerance: i32,
    /// Most preferred peers per region.
    pub top_per_region: usize,
    /// Candidates looked at per parent choice (the "larger set", C6).
    pub candidates: usize,
    /// Reports in a row a link must lag to count as congested (C2).
    pub congestion_heartbeats: u32,
    /// Full recomputation after changes for this fraction of the members (C7)...
    pub full_threshold: f64,
    /// ...or when a member has waited this long for a parent...
    pub pending_grace_ms: u64,
    /// ...and at least this often (0: never).
    pub full_recompute_ms: u64,
    /// C7: a full recomputation keeps a member's parent in a tree where it still
    /// fits (fewest moves); false rebuilds every link from scratch.
    pub recompute_keeps_parents: bool,
    /// ...when the joins and leaves since the last full recomputation are at most
    /// this fraction of the members (its trees still stand); after more, every
    /// link is rebuilt.
    pub recompute_keep_changes: f64,
    /// C7: most members told of new parents per heartbeat interval after a full
    /// recomputation (the rest wait, parents before children); 0: all at once.
    pub recompute_batch: usize,
    /// C4/D1: members carry their history grade, so parent selection ranks a
    /// better record first among equals and the top level takes no newcomer
    /// with a bad one. Off by default: stalls a partition or a flash crowd
    /// causes are held against the parents that had them, and the trees built
    /// around them did worse (`robust/partition-peers` seed 31 after the heal
    /// 0.9976 off / 0.9904 on, `tight-strong-105` seed 34 admitted 0.9981 /
    /// 0.9949; docs/BENCHMARKS.md).
    pub history_rank: bool,
    /// D6: the top level drops its lazy links and runs its push tree alone once
    /// it has been calm this long (0: it always floods).
    pub top_tree_after_ms: u64,
    /// Fraction of a peer's declared uplink kept free for block headers, control
    /// messages and repairs: slots are floor((1 − headroom)·u·k / r). 0.10: a
    /// pacer booked to a fraction ρ of its uplink drains a burst (children logging
    /// in with their backlogs after a heal) in ρ/(1 − ρ) times the burst's own
    /// length, so 0.05 let a strong peer filled to its last slot (10 Mbit/s, 19
    /// substreams, 95 %) drop stale blocks for 25 s after a healed partition
    /// (robust/partition-peers, 12 seeds: worst 0.9948 → 0.9972, docs/BENCHMARKS.md).
    pub uplink_headroom: f64,
    /// Fraction of a top member's uplink kept for repairs (the `Want`s of its lazy
    /// mesh neighbours and of the bottom peers it is the repair link of), on top
    /// of `uplink_headroom`.
    pub top_repair_share: f64,
    /// Each bottom peer keeps a lazy link to a top member to pull what it misses.
    pub repair_link: bool,
    /// Uplink assumed for an origin or relay that did not declare one.
    pub default_server_uplink_kbps: u32,
    /// D2: a bottom peer joins its region's middle cluster with uplink ≥ this ×
    /// the stream rate...
    pub middle_uplink_factor: f64,
    /// ...up to this many per region (highest uplink first). 0, the default: no
    /// middle level — measured in `middle-erasure`, the recovery substreams cost
    /// the overlay more than they repair (docs/BENCHMARKS.md).
    pub middle_per_region: usize,
    /// D5: most recovery substreams n per group (0: never erasure-code).
    pub max_redundancy: u8,
    /// D5: n is the least that keeps a group's loss (more than n of k+n shards
    /// lost) at or below this, given the region's measured shard loss.
    pub target_group_loss: f64,
    /// D5: shards a region's middle members must have expected since the last
    /// decision before n is chosen again.
    pub middle_min_shards: u64,
    /// Child links a peer machine accepts at most (its `capacity`, 256 by default):
    /// the push tree, the multi-tree and the repair links never give a peer more
    /// links than this, whatever its uplink (issue 10).
    pub peer_link_cap: u32,
    /// C8: a bottom cluster with more peers than this splits in
    /// `cluster_split_ways` by network prefix (0: never)...
    pub cluster_split_above: u32,
    /// ...and two neighbouring clusters of a region with fewer together merge
    /// (`content_directory/clusters.rs`).
    pub cluster_merge_below: u32,
    pub cluster_split_ways: u8,
}

impl PeerConfig {
    /// When the bottom clusters split and merge (C8).
    pub fn cluster_rules(&self) -> crate::content_directory::clusters::ClusterRules {
        crate::content_directory::clusters::ClusterRules {
            split_above: self.cluster_split_above,
            merge_below: self.cluster_merge_below,
            ways: self.cluster_split_ways,
        }
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            substreams: 4,
            stream_rate_kbps: 2000,
            mesh_c: 3,
            top_uplink_factor: 4.0,
            stable_ms: 10_000,
            top_review_ms: 10_000,
            history_tolerance: 3,
            top_per_region: 8,
            candidates: 8,
            congestion_heartbeats: 3,
            full_threshold: 0.5,
            pending_grace_ms: 2_000,
            full_recompute_ms: 300_000,
            recompute_keeps_parents: true,
            recompute_keep_changes: 0.05,
            recompute_batch: 0,
            history_rank: false,
            top_tree_after_ms: 0,
            uplink_headroom: 0.10,
            top_repair_share: 0.2,
            repair_link: true,
            default_server_uplink_kbps: 100_000,
            middle_uplink_factor: 2.0,
            middle_per_region: 0,
            max_redundancy: 4,
            target_group_loss: 1e-4,
            middle_min_shards: 200,
            peer_link_cap: 256,
            cluster_split_above: 50_000,
            cluster_merge_below: 12_500,
            cluster_split_ways: 2,
        }
    }
}

impl PeerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=tiercast_proto::MAX_FEED_SUBSTREAMS).contains(&self.substreams) {
            return Err(format!(
                "peers.substreams must be 1..=64, got {}",
                self.substreams
            ));
        }
        if self.stream_rate_kbps == 0 {
            return Err("peers.stream_rate_kbps must be > 0".into());
        }
        self.cluster_rules()
            .check()
            .map_err(|e| format!("peers.{e}"))?;
        if self.peer_link_cap <= u32::from(self.mesh_c) + 1 {
            return Err("peers.peer_link_cap must exceed the mesh's links (mesh_c + 1)".into());
        }
        if self.mesh_c == 0 {
            return Err("peers.mesh_c must be >= 1".into());
        }
        if !(self.top_uplink_factor.is_finite() && self.top_uplink_factor >= 1.0) {
            return Err("peers.top_uplink_factor must be >= 1".into());
        }
        if self.candidates == 0 || self.congestion_heartbeats == 0 {
            return Err("peers.candidates and peers.congestion_heartbeats must be >= 1".into());
        }
        if !(self.uplink_headroom.is_finite() && (0.0..0.9).contains(&self.uplink_headroom)) {
            return Err("peers.uplink_headroom must be in [0, 0.9)".into());
        }
        if !(self.top_repair_share.is_finite() && (0.0..0.9).contains(&self.top_repair_share)) {
            return Err("peers.top_repair_share must be in [0, 0.9)".into());
        }
        if !(self.recompute_keep_changes.is_finite() && self.recompute_keep_changes >= 0.0) {
            return Err("peers.recompute_keep_changes must be >= 0".into());
        }
        if !(self.full_threshold.is_finite() && self.full_threshold > 0.0) {
            return Err("peers.full_threshold must be > 0".into());
        }
        if !(self.middle_uplink_factor.is_finite() && self.middle_uplink_factor > 0.0) {
            return Err("peers.middle_uplink_factor must be > 0".into());
        }
        if u16::from(self.substreams) + u16::from(self.max_redundancy) > 64 {
            return Err("peers.substreams + peers.max_redundancy must be <= 64".into());
        }
        if !(self.target_group_loss.is_finite()
            && self.target_group_loss > 0.0
            && self.target_group_loss < 1.0)
        {
            return Err("peers.target_group_loss must be in (0, 1)".into());
        }
        Ok(())
    }
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            parents_per_relay: 1,
            heartbeat_interval_ms: 1000,
            heartbeat_timeout_ms: 3500,
            origin_probe_ms: 200,
            retry_after_s: 2,
            clock_epoch_unix_s: 0,
            max_channels: 1024,
            max_nodes: 2_000_000,
            prediction: false,
            farms: false,
            alpha_arrival: 0.5,
            delta_t_ms: 10_000,
            stability_sp_ms: 30_000,
            smoothing_alpha: tiercast_proto::smoothing::SEED_SMOOTHING_ALPHA,
            smoothing_beta: tiercast_proto::smoothing::SEED_SMOOTHING_BETA,
            max_farm_size: 16,
            idle_relay_ms: 30_000,
            source_switch_share: 0.05,
            source_switch_min: 1,
            uplink_lending: true,
            channel_retire_after_ms: 60_000,
            reservations_measured: false,
            epoch: 1,
            peers: PeerConfig::default(),
        }
    }
}

impl CoordinatorConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.epoch == 0 {
            return Err("epoch must be at least 1".into());
        }
        if self.parents_per_relay == 0 || self.parents_per_relay > 8 {
            return Err("parents_per_relay must be 1..=8".into());
        }
        if self.heartbeat_interval_ms == 0 {
            return Err("heartbeat_interval_ms must be > 0".into());
        }
        if self.origin_probe_ms == 0 || self.origin_probe_ms >= self.heartbeat_timeout_ms {
            return Err("origin_probe_ms must be in 1..heartbeat_timeout_ms".into());
        }
        if self.heartbeat_timeout_ms <= self.heartbeat_interval_ms {
            return Err("heartbeat_timeout_ms must exceed heartbeat_interval_ms".into());
        }
        if !(self.alpha_arrival.is_finite() && (0.0..=1.0).contains(&self.alpha_arrival)) {
            return Err(format!(
                "alpha_arrival must be in [0, 1], got {}",
                self.alpha_arrival
            ));
        }
        if self.delta_t_ms < 10 {
            return Err(format!(
                "delta_t_ms must be >= 10 (predictions are updated every delta_t_ms/10), got {}",
                self.delta_t_ms
            ));
        }
        if self.stability_sp_ms == 0 {
            return Err("stability_sp_ms must be > 0".into());
        }
        for (name, w) in [
            ("smoothing_alpha", self.smoothing_alpha),
            ("smoothing_beta", self.smoothing_beta),
        ] {
            if !tiercast_proto::smoothing::valid_weight(w) {
                return Err(format!("{name} must be in (0, 1), got {w}"));
            }
        }
        if !(self.source_switch_share.is_finite()
            && self.source_switch_share > 0.0
            && self.source_switch_share <= 1.0)
        {
            return Err(format!(
                "source_switch_share must be in (0, 1], got {}",
                self.source_switch_share
            ));
        }
        if self.source_switch_min == 0 {
            return Err("source_switch_min must be >= 1".into());
        }
        if self.channel_retire_after_ms != 0
            && self.channel_retire_after_ms < self.heartbeat_timeout_ms
        {
            return Err(format!(
                "channel_retire_after_ms must be 0 (never) or >= heartbeat_timeout_ms ({}), got {}",
                self.heartbeat_timeout_ms, self.channel_retire_after_ms
            ));
        }
        self.peers.validate()?;
        if self.max_farm_size == 0 || self.max_farm_size > 1024 {
            return Err(format!(
                "max_farm_size must be 1..=1024, got {}",
                self.max_farm_size
            ));
        }
        Ok(())
    }

    /// How often the rate predictions are updated: ΔT/10 ([0065]).
    pub fn prediction_period_ms(&self) -> u64 {
        (self.delta_t_ms / 10).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::CoordinatorConfig;

    #[test]
    fn defaults_are_valid_and_off() {
        let c = CoordinatorConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert!(!c.prediction && !c.farms);
        assert_eq!(c.prediction_period_ms(), 1000);
    }

    #[test]
    fn bad_v6_v7_settings_are_named() {
        let bad = |f: fn(&mut CoordinatorConfig)| {
            let mut c = CoordinatorConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.alpha_arrival = 1.5).contains("alpha_arrival"));
        assert!(bad(|c| c.delta_t_ms = 5).contains("delta_t_ms"));
        assert!(bad(|c| c.stability_sp_ms = 0).contains("stability_sp_ms"));
        assert!(bad(|c| c.smoothing_alpha = 0.0).contains("smoothing_alpha"));
        assert!(bad(|c| c.smoothing_beta = 1.0).contains("smoothing_beta"));
        assert!(bad(|c| c.max_farm_size = 0).contains("max_farm_size"));
        assert!(bad(|c| c.channel_retire_after_ms = 1000).contains("channel_retire_after_ms"));
        assert!(bad(|c| c.epoch = 0).contains("epoch"));
    }
}
