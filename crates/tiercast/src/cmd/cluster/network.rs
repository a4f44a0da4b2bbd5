//! The cluster's network (issue 13; X5 over real processes): one network namespace
//! per process, each with a veth pair whose other end sits on a bridge in a hub
//! namespace — every node on 10.77.0.0/16, region i's nodes in 10.77.(i+1).0/24 so
//! the latency emulation can tell regions apart by address. Uplink and downlink
//! caps are `tc tbf` on the two ends of the node's veth (the kernel enforces them;
//! the queue holds the scenario's `uplink_queue_limit_ms`). Latency, jitter and
//! loss are not here: this kernel has no netem, so each process emulates them on
//! its own sends (`--net-emulation`, crates/net/src/link/emulate.rs).
//!
//! Without namespaces (not root, or `ip netns` failing) the nodes share the host's
//! loopback on addresses 127.(i+1).0.n — latency emulation still works, the caps
//! are then only the nodes' own pacers — and the run says so.
//!
//! Everything made is removed on drop, by name: the processes are killed before.

use anyhow::{bail, Context, Result};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use super::plan::Plan;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Namespaces,
    Loopback,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Namespaces => "namespaces",
            Mode::Loopback => "loopback",
        }
    }
}

/// The first octets of every node address, by mode.
pub fn prefix(mode: Mode) -> [u8; 2] {
    match mode {
        Mode::Namespaces => [10, 77],
        Mode::Loopback => [127, 0],
    }
}

pub struct Network {
    mode: Mode,
    tag: String,
    /// Per planned node: its address.
    addrs: Vec<Ipv4Addr>,
    /// Namespaces made, removed on drop (the hub last).
    made: Vec<String>,
    /// Why the run fell back to loopback.
    pub fallback_reason: Option<String>,
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} {:?} failed: {}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args))
}

/// Addresses: region i's n-th node is `P.(i+1).n` (`P.(i+1).0.n` on loopback).
fn addresses(plan: &Plan, mode: Mode) -> Result<Vec<Ipv4Addr>> {
    let mut per_region = vec![0u32; plan.region_names.len()];
    let [a, b] = prefix(mode);
    plan.nodes
        .iter()
        .map(|n| {
            per_region[n.region] += 1;
            let host = per_region[n.region];
            let region = u8::try_from(n.region + 1).ok().filter(|r| *r < 255);
            let Some(region) = region else {
                bail!("the cluster handles at most 254 regions");
            };
            if host > 250 {
                bail!("the cluster handles at most 250 nodes per region");
            }
            Ok(match mode {
                Mode::Namespaces => Ipv4Addr::new(a, b, region, host as u8),
                Mode::Loopback => Ipv4Addr::new(a, region, 0, host as u8),
            })
        })
        .collect()
}

impl Network {
    /// Namespaces when `want_namespaces` and they can be made, else loopback.
    pub fn setup(plan: &Plan, want_namespaces: bool, queue_ms: u64) -> Result<Network> {
        let tag = format!("{:04x}", std::process::id() & 0xffff);
        let mut net = Network {
            mode: Mode::Loopback,
            tag,
            addrs: addresses(plan, Mode::Loopback)?,
            made: Vec::new(),
            fallback_reason: None,
        };
        if !want_namespaces {
            net.fallback_reason = Some("--loopback given".into());
            return Ok(net);
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            net.fallback_reason = Some("not running as root: network namespaces need it".into());
            return Ok(net);
        }
        match net.make_namespaces(plan, queue_ms) {
            Ok(()) => Ok(net),
            Err(e) => {
                net.remove_namespaces();
                net.mode = Mode::Loopback;
                net.addrs = addresses(plan, Mode::Loopback)?;
                net.fallback_reason = Some(format!("network namespaces failed: {e:#}"));
                Ok(net)
            }
        }
    }

    fn hub(&self) -> String {
        format!("tc{}hub", self.tag)
    }

    /// The namespace of node `i`.
    fn ns(&self, i: usize) -> String {
        format!("tc{}n{i}", self.tag)
    }

    fn make_namespaces(&mut self, plan: &Plan, queue_ms: u64) -> Result<()> {
        self.addrs = addresses(plan, Mode::Namespaces)?;
        let hub = self.hub();
        ip(&["netns", "add", &hub])?;
        self.made.push(hub.clone());
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        // This process reaches the nodes (their `/status`) over one more veth.
        let (root_end, hub_end) = (format!("tc{}r0", self.tag), format!("tc{}r1", self.tag));
        ip(&[
            "link", "add", &root_end, "type", "veth", "peer", "name", &hub_end, "netns", &hub,
        ])?;
        ip(&["addr", "add", "10.77.255.254/16", "dev", &root_end])?;
        ip(&["link", "set", &root_end, "up"])?;
        ip(&["-n", &hub, "link", "set", &hub_end, "master", "br0", "up"])?;
        for n in &plan.nodes {
            let ns = self.ns(n.index);
            let inner = format!("tc{}a{}", self.tag, n.index);
            let outer = format!("tc{}b{}", self.tag, n.index);
            ip(&["netns", "add", &ns])?;
            self.made.push(ns.clone());
            ip(&[
                "link", "add", &inner, "netns", &ns, "type", "veth", "peer", "name", &outer,
                "netns", &hub,
            ])?;
            let addr = format!("{}/16", self.addrs[n.index]);
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &hub, "link", "set", &outer, "master", "br0", "up"])?;
            if n.uplink_kbps > 0 {
                tbf(&ns, &inner, n.uplink_kbps, queue_ms)?;
            }
            if n.downlink_kbps > 0 {
                tbf(&hub, &outer, n.downlink_kbps, queue_ms)?;
            }
        }
        self.mode = Mode::Namespaces;
        Ok(())
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn addr(&self, i: usize) -> IpAddr {
        IpAddr::V4(self.addrs[i])
    }

    /// A command that runs `program` as node `i` (inside its namespace).
    pub fn command(&self, i: usize, program: &std::path::Path) -> Command {
        match self.mode {
            Mode::Namespaces => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &self.ns(i)]).arg(program);
                c
            }
            Mode::Loopback => Command::new(program),
        }
    }

    fn remove_namespaces(&mut self) {
        // Node namespaces first (their veths go with them), the hub last.
        while let Some(ns) = self.made.pop() {
            let _ = ip(&["netns", "del", &ns]);
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove_namespaces();
    }
}

/// The simulator's links carry a message's bytes; real packets add UDP, IP and
/// QUIC headers and acknowledgements (about 4–6 % at full-size datagrams). The
/// kernel's caps are raised by this much so a scenario's uplink carries the same
/// payload in both worlds.
pub const WIRE_OVERHEAD: f64 = 1.06;

/// The token bucket's burst: what a link sends at once, beyond its rate. The
/// simulator serializes every message at the sender's uplink rate, so the
/// bucket holds one millisecond at the rate, and never less than two
/// full-size datagrams (the kernel drops a packet larger than the burst). It
/// was 20 ms and at least 16 KB: two 8 KB blocks left a 400 kbit/s peer at
/// once where the simulator's take 330 ms, and a relay at 50 Mbit/s sent a
/// block to its six children in no time against 8 ms (issue 13, Must show 1).
pub fn tbf_burst_bytes(kbps: u64) -> u64 {
    (kbps * 1000 / 8 / 1000).max(2 * 1514)
}

/// A token bucket on `dev`'s egress: `kbps` (plus the wire's overhead), a burst
/// of [`tbf_burst_bytes`], and a queue of `queue_ms` at that rate.
fn tbf(ns: &str, dev: &str, kbps: u32, queue_ms: u64) -> Result<()> {
    let kbps = (f64::from(kbps) * WIRE_OVERHEAD).ceil() as u64;
    let burst = tbf_burst_bytes(kbps);
    run(Command::new("tc").args([
        "-n",
        ns,
        "qdisc",
        "add",
        "dev",
        dev,
        "root",
        "tbf",
        "rate",
        &format!("{kbps}kbit"),
        "burst",
        &burst.to_string(),
        "latency",
        &format!("{}ms", queue_ms.max(1)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cluster::plan::{PlannedNode, Role};

    #[test]
    fn the_burst_is_a_millisecond_at_the_rate_and_two_datagrams_at_least() {
        assert_eq!(tbf_burst_bytes(424), 3028);
        assert_eq!(tbf_burst_bytes(53_000), 6625);
        assert!(tbf_burst_bytes(0) >= 1514);
    }

    fn node(index: usize, region: usize) -> PlannedNode {
        PlannedNode {
            index,
            label: format!("n{index}"),
            class: String::new(),
            role: Role::Viewer,
            region,
            uplink_kbps: 0,
            downlink_kbps: 0,
            capacity: 0,
            max_threshold: None,
            min_threshold: None,
            start_s: 0.0,
            leave_s: None,
        }
    }

    #[test]
    fn addresses_tell_regions_apart() {
        let plan = Plan {
            nodes: vec![node(0, 0), node(1, 1), node(2, 0)],
            faults: vec![],
            region_names: vec!["eu".into(), "us".into()],
            duration_s: 1.0,
        };
        let ns = addresses(&plan, Mode::Namespaces).unwrap();
        assert_eq!(ns[0], Ipv4Addr::new(10, 77, 1, 1));
        assert_eq!(ns[1], Ipv4Addr::new(10, 77, 2, 1));
        assert_eq!(ns[2], Ipv4Addr::new(10, 77, 1, 2));
        let lo = addresses(&plan, Mode::Loopback).unwrap();
        assert_eq!(lo[1], Ipv4Addr::new(127, 2, 0, 1));
    }
}
