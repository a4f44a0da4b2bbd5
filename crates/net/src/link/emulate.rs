//! Network emulation for `tiercast cluster` (issue 13; X5's regions over real
//! sockets, V11): the sans-IO part of the delay stage under quinn. A
//! [`NetEmulation`] (read from a TOML file) says which region this process is
//! in, which destination IP prefixes are in which region, and the one-way
//! latency, jitter and loss between regions — the same [`Regions`] the
//! simulator's network model takes, with the same meaning. An [`Emulator`]
//! decides, per datagram sent, whether it is lost or when it is due: time is
//! passed in, randomness comes from a seeded RNG, nothing here touches a
//! socket (`emulate_socket` does).
//!
//! As in `tiercast_netmodel::NetModel::send_with`: jitter is drawn uniform in
//! `0..=jitter`, and a link (here: per destination IP) stays FIFO —
//! `due = max(due, previous due on that link)`. A destination in no subnet is
//! sent at once, neither delayed nor lost, and counted.

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use thiserror::Error;
use tiercast_netmodel::{RegionId, Regions};

/// Per-destination ordering state is pruned once it holds this many entries.
const PRUNE_ABOVE: usize = 1024;

#[derive(Debug, Error)]
#[error("network emulation file {file}: {msg}")]
pub struct EmulationError {
    pub file: String,
    pub msg: String,
}

/// The file's shape (unknown keys refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    region: String,
    #[serde(default)]
    seed: u64,
    latency: LatencySection,
    #[serde(default)]
    network: NetworkSection,
    #[serde(default)]
    subnets: Vec<SubnetSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencySection {
    regions: Vec<String>,
    /// One-way ms, row = sender's region; may be omitted with one region.
    #[serde(default)]
    matrix_ms: Option<Vec<Vec<f64>>>,
    #[serde(default)]
    jitter_ms: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkSection {
    #[serde(default)]
    loss: f64,
    #[serde(default)]
    loss_matrix: Option<Vec<Vec<f64>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubnetSection {
    cidr: String,
    region: String,
}

/// An IP prefix (`10.77.1.0/24`, `fd00::/64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    /// Parses `ADDR/LEN`; host bits must be zero (a likely typo otherwise).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| format!("cidr {s:?} has no /prefix-length"))?;
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("cidr {s:?}: {a:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len: u8 =
            l.trim().parse().ok().filter(|l| *l <= max).ok_or_else(|| {
                format!("cidr {s:?}: prefix length {l:?} is not within 0..={max}")
            })?;
        let c = Cidr { addr, len };
        if c.masked(addr) != bits(addr) {
            return Err(format!("cidr {s:?} has host bits set below /{len}"));
        }
        Ok(c)
    }

    fn masked(&self, ip: IpAddr) -> u128 {
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let b = bits(ip);
        if self.len == 0 {
            0
        } else {
            b & (u128::MAX << (width - self.len as u32)) & width_mask(width)
        }
    }

    /// Whether `ip` (same family) is inside the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == bits(self.addr)
    }
}

fn width_mask(width: u32) -> u128 {
    if width == 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The emulation's configuration: this process's region, the regions' latency,
/// jitter and loss, and which destination prefixes are in which region.
#[derive(Clone, Debug)]
pub struct NetEmulation {
    pub regions: Regions,
    pub region: RegionId,
    pub seed: u64,
    /// Longest prefix first.
    subnets: Vec<(Cidr, RegionId)>,
}

impl NetEmulation {
    /// Reads and checks a file; every error names the file and the problem.
    pub fn load(path: &Path) -> Result<NetEmulation, EmulationError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| EmulationError {
            file: file.clone(),
            msg: format!("cannot read: {e}"),
        })?;
        Self::parse(&text).map_err(|msg| EmulationError { file, msg })
    }

    /// Parses and checks the TOML text (errors carry toml's line and column
    /// where it gives them).
    pub fn parse(text: &str) -> Result<NetEmulation, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        let names = f.latency.regions;
        let matrix = match f.latency.matrix_ms {
            Some(m) => m,
            None if names.len() == 1 => vec![vec![0.0]],
            None => {
                return Err(format!(
                    "latency.matrix_ms is required with {} regions",
                    names.len()
                ))
            }
        };
        let regions = Regions::new(
            names,
            &matrix,
            f.latency.jitter_ms,
            f.network.loss,
            f.network.loss_matrix.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        let known = |what: &str, name: &str| {
            regions.id(name).ok_or_else(|| {
                format!(
                    "{what} = {name:?} is not one of latency.regions {:?}",
                    regions.names()
                )
            })
        };
        let region = known("region", &f.region)?;
        let mut subnets = Vec::with_capacity(f.subnets.len());
        for (i, s) in f.subnets.iter().enumerate() {
            let cidr = Cidr::parse(&s.cidr).map_err(|e| format!("subnets[{i}]: {e}"))?;
            let r = known(&format!("subnets[{i}].region"), &s.region)?;
            if let Some((_, other)) = subnets.iter().find(|(c, _)| *c == cidr) {
                if *other != r {
                    return Err(format!(
                        "subnets[{i}]: cidr {:?} is listed twice with different regions",
                        s.cidr
                    ));
                }
            }
            subnets.push((cidr, r));
        }
        subnets.sort_by_key(|s| std::cmp::Reverse(s.0.len));
        Ok(NetEmulation {
            regions,
            region,
            seed: f.seed,
            subnets,
        })
    }

    /// The region of a destination: its longest matching prefix.
    pub fn region_of(&self, ip: IpAddr) -> Option<RegionId> {
        let ip = ip.to_canonical();
        self.subnets
            .iter()
            .find(|(c, _)| c.contains(ip))
            .map(|(_, r)| *r)
    }
}

/// What becomes of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Lost on the way: never sent.
    Drop,
    /// Sent at this time (µs, the caller's clock).
    At(u64),
}

/// The emulator's counters (in a node's `/status` as `net_emulation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EmulationStats {
    /// Datagrams offered to the stage (all below are among them).
    pub datagrams: u64,
    /// Given a due time later than their send time.
    pub delayed: u64,
    /// Dropped by the emulated loss.
    pub lost: u64,
    /// Sent at once: their destination is in no subnet.
    pub unknown_destination: u64,
    /// Dropped because the delay queue was full (a router's full buffer).
    pub queue_full: u64,
    /// Datagrams waiting in the delay queue now.
    pub queued: u64,
}

/// The emulation's state: RNG, per-destination FIFO, counters.
#[derive(Debug)]
pub struct Emulator {
    cfg: NetEmulation,
    rng: ChaCha8Rng,
    /// Due time of the last datagram per destination still in the future.
    last_due: HashMap<IpAddr, u64>,
    stats: EmulationStats,
}

impl Emulator {
    pub fn new(cfg: NetEmulation) -> Emulator {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(0x656d_756c);
        Emulator {
            cfg,
            rng,
            last_due: HashMap::new(),
            stats: EmulationStats::default(),
        }
    }

    pub fn config(&self) -> &NetEmulation {
        &self.cfg
    }

    /// Decides one datagram of `bytes` sent at `now_us` to `dst`. The size
    /// does not change the verdict: rates (serialization) are `tc tbf`'s job in
    /// `tiercast cluster`, not this stage's.
    pub fn on_send(&mut self, now_us: u64, dst: IpAddr, _bytes: usize) -> Verdict {
        self.stats.datagrams += 1;
        let dst = dst.to_canonical();
        let Some(to) = self.cfg.region_of(dst) else {
            self.stats.unknown_destination += 1;
            return Verdict::At(now_us);
        };
        let from = self.cfg.region;
        let loss = self.cfg.regions.loss(from, to);
        if loss > 0.0 && self.rng.gen::<f64>() < loss {
            self.stats.lost += 1;
            return Verdict::Drop;
        }
        let jitter = match self.cfg.regions.jitter_us() {
            0 => 0,
            j => self.rng.gen_range(0..=j),
        };
        let mut due = now_us + self.cfg.regions.latency_us(from, to) + jitter;
        if let Some(prev) = self.last_due.get(&dst) {
            due = due.max(*prev);
        }
        if self.last_due.len() >= PRUNE_ABOVE {
            self.last_due.retain(|_, at| *at > now_us);
        }
        self.last_due.insert(dst, due);
        if due > now_us {
            self.stats.delayed += 1;
        }
        Verdict::At(due)
    }

    /// Counts a datagram dropped before it was decided: the queue was full.
    pub fn on_queue_full(&mut self) {
        self.stats.datagrams += 1;
        self.stats.queue_full += 1;
    }

    pub fn stats(&self) -> EmulationStats {
        self.stats
    }
}
