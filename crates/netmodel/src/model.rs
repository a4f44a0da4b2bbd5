//! `NetModel` (X5; the failure cases of V10, the geography of V11): hosts with an
//! uplink and a downlink, the regions' latency, jitter and loss, and the faults
//! (crash, link cut, region partition). Sans-IO and seeded.
//!
//! A message of `b` bytes sent at `now` by a host with uplink `u`:
//! - departs over `[start, end]`, `start = max(now, uplink_free_at)`,
//!   `end = start + b·8/u` — a host never sends faster than its uplink;
//!   it is dropped (counted) when `start - now` exceeds the queue limit;
//! - each transmission attempt is lost with the link's loss probability; links are
//!   reliable streams (QUIC), so a loss costs a retransmission (the bytes again on
//!   the uplink, plus one retransmission timeout of max(2·latency, 1 ms)); after
//!   [`MAX_ATTEMPTS`] lost attempts the message is dropped — or, with media sent as
//!   datagrams ([`NetModel::set_media_datagrams`]), media is dropped at its first
//!   loss (control messages still ride a reliable stream);
//! - arrives at `end + latency + jitter` (jitter uniform in `[0, jitter]`), never
//!   before the previous message on the same link (one ordered stream per link),
//!   plus `b·8/d` for the receiver's downlink `d` (serialized per link, exact when a
//!   node receives from one peer at a time, as viewers do).

use crate::regions::{RegionId, Regions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeSet, HashMap};

/// Transmission attempts before a message on a lossy link is given up.
pub const MAX_ATTEMPTS: u32 = 8;

/// A host's place and capacities; 0 kbps means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostSpec {
    pub region: RegionId,
    pub uplink_kbps: u32,
    pub downlink_kbps: u32,
}

#[derive(Clone, Copy, Debug)]
struct Host {
    region: RegionId,
    alive: bool,
    /// Test hook: ignore the uplink queue (a planted bug the invariant checker must catch).
    bypass_queue: bool,
    up_kbps: u32,
    down_kbps: u32,
    up_free_at: u64,
}

/// When a message leaves its sender and reaches its receiver (µs of virtual time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// First bit on the sender's uplink.
    pub depart_start: u64,
    /// Last bit on the sender's uplink (after any retransmissions).
    pub depart_end: u64,
    pub arrival: u64,
    /// Uplink time the bytes took, all attempts included.
    pub uplink_busy_us: u64,
    pub retransmissions: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    SenderDown,
    ReceiverDown,
    LinkCut,
    Partitioned,
    QueueFull,
    Loss,
}

impl DropReason {
    pub const ALL: [DropReason; 6] = [
        DropReason::SenderDown,
        DropReason::ReceiverDown,
        DropReason::LinkCut,
        DropReason::Partitioned,
        DropReason::QueueFull,
        DropReason::Loss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::SenderDown => "sender_down",
            DropReason::ReceiverDown => "receiver_down",
            DropReason::LinkCut => "link_cut",
            DropReason::Partitioned => "partitioned",
            DropReason::QueueFull => "queue_full",
            DropReason::Loss => "loss",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct NetStats {
    pub messages: u64,
    pub bytes: u64,
    pub cross_region_bytes: u64,
    pub retransmissions: u64,
    /// Drops, indexed like [`DropReason::ALL`].
    pub dropped: [u64; 6],
}

/// Serialization time of `bytes` at `kbps` (0 = unlimited), rounded up to 1 µs.
pub fn serialization_us(bytes: u64, kbps: u32) -> u64 {
    if kbps == 0 {
        return 0;
    }
    (bytes * 8000).div_ceil(kbps as u64)
}

pub struct NetModel {
    regions: Regions,
    hosts: Vec<Host>,
    rng: ChaCha8Rng,
    queue_limit_us: u64,
    /// Arrival of the last message per link (`from << 32 | to`) still in the future;
    /// pruned by [`NetModel::prune`]. Only looked up, never iterated for decisions.
    last_arrival: HashMap<u64, u64>,
    cuts: BTreeSet<(u32, u32)>,
    /// Active partitions: per region, whether it is on the isolated side.
    partitions: Vec<(u32, Vec<bool>)>,
    next_partition: u32,
    stats: NetStats,
    /// Transmission attempts for media (1: datagrams, lost on the first loss).
    media_attempts: u32,
    /// Open connections; a pair's first message waits for the handshake.
    connections: crate::handshake::Connections,
}

impl NetModel {
    pub fn new(regions: Regions, seed: u64, queue_limit_ms: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0x006e_6574);
        NetModel {
            regions,
            hosts: Vec::new(),
            rng,
            queue_limit_us: queue_limit_ms.saturating_mul(1000),
            last_arrival: HashMap::new(),
            cuts: BTreeSet::new(),
            partitions: Vec::new(),
            next_partition: 1,
            media_attempts: MAX_ATTEMPTS,
            stats: NetStats::default(),
            connections: crate::handshake::Connections::new(0),
        }
    }

    pub fn regions(&self) -> &Regions {
        &self.regions
    }

    /// Adds a host (alive); returns its index, the next dense one.
    pub fn add_host(&mut self, spec: HostSpec) -> u32 {
        assert!(
            (spec.region as usize) < self.regions.len(),
            "host region {} out of range",
            spec.region
        );
        self.hosts.push(Host {
            region: spec.region,
            alive: true,
            bypass_queue: false,
            up_kbps: spec.uplink_kbps,
            down_kbps: spec.downlink_kbps,
            up_free_at: 0,
        });
        (self.hosts.len() - 1) as u32
    }

    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    pub fn region_of(&self, host: u32) -> RegionId {
        self.hosts[host as usize].region
    }

    pub fn uplink_kbps(&self, host: u32) -> u32 {
        self.hosts[host as usize].up_kbps
    }

    pub fn downlink_kbps(&self, host: u32) -> u32 {
        self.hosts[host as usize].down_kbps
    }

    /// When the host's uplink has sent everything queued so far.
    pub fn uplink_free_at(&self, host: u32) -> u64 {
        self.hosts[host as usize].up_free_at
    }

    pub fn is_alive(&self, host: u32) -> bool {
        self.hosts.get(host as usize).is_some_and(|h| h.alive)
    }

    /// A crash or a departure (false), or a restart (true): its connections close.
    pub fn set_alive(&mut self, host: u32, alive: bool) {
        self.hosts[host as usize].alive = alive;
        self.connections.reset(host);
    }

    /// Round trips a pair's first message waits (its connection's handshake;
    /// `handshake`); 0, the default here, sends at once.
    pub fn set_handshake_rtts(&mut self, rtts: u32) {
        self.connections = crate::handshake::Connections::new(rtts);
    }

    /// Test hook: this host ignores its uplink queue from now on (a planted bug).
    pub fn set_bypass_queue(&mut self, host: u32, bypass: bool) {
        self.hosts[host as usize].bypass_queue = bypass;
    }

    pub fn cut_link(&mut self, a: u32, b: u32) {
        self.cuts.insert((a.min(b), a.max(b)));
    }

    pub fn restore_link(&mut self, a: u32, b: u32) {
        self.cuts.remove(&(a.min(b), a.max(b)));
    }

    /// Cuts the listed regions off from all the others; returns a handle to heal it.
    pub fn partition(&mut self, isolated: &[RegionId]) -> u32 {
        let mut side = vec![false; self.regions.len()];
        for r in isolated {
            side[*r as usize] = true;
        }
        let id = self.next_partition;
        self.next_partition += 1;
        self.partitions.push((id, side));
        id
    }

    pub fn heal(&mut self, partition: u32) {
        self.partitions.retain(|(id, _)| *id != partition);
    }

    /// Whether `a` and `b` can talk now (both alive, no cut, no partition between).
    pub fn link_up(&self, a: u32, b: u32) -> Result<(), DropReason> {
        let (ha, hb) = (&self.hosts[a as usize], &self.hosts[b as usize]);
        if !ha.alive {
            return Err(DropReason::SenderDown);
        }
        if !hb.alive {
            return Err(DropReason::ReceiverDown);
        }
        if !self.cuts.is_empty() && self.cuts.contains(&(a.min(b), a.max(b))) {
            return Err(DropReason::LinkCut);
        }
        for (_, side) in &self.partitions {
            if side[ha.region as usize] != side[hb.region as usize] {
                return Err(DropReason::Partitioned);
            }
        }
        Ok(())
    }

    fn drop(&mut self, why: DropReason) -> Result<Delivery, DropReason> {
        self.stats.dropped[why as usize] += 1;
        Err(why)
    }

    /// Media as datagrams (no retransmission: a loss drops the message, as FEC
    /// transports do) instead of a reliable stream (the default).
    pub fn set_media_datagrams(&mut self, datagrams: bool) {
        self.media_attempts = if datagrams { 1 } else { MAX_ATTEMPTS };
    }

    /// Sends `bytes` of media from `from` to `to` at `now`: dropped when the
    /// sender's uplink backlog exceeds the queue limit.
    pub fn send(
        &mut self,
        now: u64,
        from: u32,
        to: u32,
        bytes: u64,
    ) -> Result<Delivery, DropReason> {
        self.send_with(now, from, to, bytes, true)
    }

    /// Sends a control message: it waits its turn on the uplink like media but is
    /// never dropped for a full queue (control rides a reliable stream).
    pub fn send_control(
        &mut self,
        now: u64,
        from: u32,
        to: u32,
        bytes: u64,
    ) -> Result<Delivery, DropReason> {
        self.send_with(now, from, to, bytes, false)
    }

    fn send_with(
        &mut self,
        now: u64,
        from: u32,
        to: u32,
        bytes: u64,
        droppable: bool,
    ) -> Result<Delivery, DropReason> {
        if let Err(why) = self.link_up(from, to) {
            return self.drop(why);
        }
        let (src, dst) = (self.hosts[from as usize], self.hosts[to as usize]);
        let start = if src.bypass_queue {
            now
        } else {
            now.max(src.up_free_at)
        };
        if droppable && start - now > self.queue_limit_us {
            return self.drop(DropReason::QueueFull);
        }
        let ser = serialization_us(bytes, src.up_kbps);
        let latency = self.regions.latency_us(src.region, dst.region);
        let loss = self.regions.loss(src.region, dst.region);
        let mut attempts = 1u32;
        let mut retransmit_wait = 0u64;
        let mut delivered = true;
        if loss > 0.0 {
            let max_attempts = if droppable {
                self.media_attempts
            } else {
                MAX_ATTEMPTS
            };
            while self.rng.gen::<f64>() < loss {
                if attempts >= max_attempts {
                    delivered = false;
                    break;
                }
                attempts += 1;
                retransmit_wait += (2 * latency).max(1000);
            }
        }
        let busy = ser * attempts as u64;
        let end = start + busy;
        let h = &mut self.hosts[from as usize];
        if !h.bypass_queue {
            h.up_free_at = end;
        }
        self.stats.retransmissions += (attempts - 1) as u64;
        if !delivered {
            return self.drop(DropReason::Loss);
        }
        let rtt = latency + self.regions.latency_us(dst.region, src.region);
        let setup = self.connections.setup_us(from, to, rtt);
        let jitter = match self.regions.jitter_us() {
            0 => 0,
            j => self.rng.gen_range(0..=j),
        };
        let key = (from as u64) << 32 | to as u64;
        let mut arrival = end + retransmit_wait + latency + jitter + setup;
        if let Some(prev) = self.last_arrival.get(&key) {
            arrival = arrival.max(*prev);
        }
        arrival += serialization_us(bytes, dst.down_kbps);
        self.last_arrival.insert(key, arrival);
        self.stats.messages += 1;
        self.stats.bytes += bytes;
        if src.region != dst.region {
            self.stats.cross_region_bytes += bytes;
        }
        Ok(Delivery {
            depart_start: start,
            depart_end: end,
            arrival,
            uplink_busy_us: busy,
            retransmissions: attempts - 1,
        })
    }

    /// Forgets per-link ordering state for messages that have arrived by `now`.
    pub fn prune(&mut self, now: u64) {
        self.last_arrival.retain(|_, at| *at > now);
    }

    pub fn stats(&self) -> &NetStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_regions(loss: f64, jitter_ms: f64) -> Regions {
        Regions::new(
            vec!["a".into(), "b".into()],
            &[vec![1.0, 50.0], vec![50.0, 1.0]],
            jitter_ms,
            loss,
            None,
        )
        .unwrap()
    }

    fn host(region: RegionId, up: u32) -> HostSpec {
        HostSpec {
            region,
            uplink_kbps: up,
            downlink_kbps: 0,
        }
    }

    #[test]
    fn uplink_queueing_spaces_departures() {
        let mut m = NetModel::new(two_regions(0.0, 0.0), 1, 1000);
        let a = m.add_host(host(0, 8_000)); // 1 byte per µs
        let b = m.add_host(host(1, 0));
        let d1 = m.send(0, a, b, 1000).unwrap();
        assert_eq!((d1.depart_start, d1.depart_end), (0, 1000));
        assert_eq!(d1.arrival, 1000 + 50_000);
        let d2 = m.send(10, a, b, 1000).unwrap();
        assert_eq!((d2.depart_start, d2.depart_end), (1000, 2000));
        assert_eq!(m.stats().cross_region_bytes, 2000);
        // 2 s of backlog exceeds the 1 s limit: dropped and counted.
        let mut dropped = 0;
        for _ in 0..2000 {
            if m.send(20, a, b, 1000).is_err() {
                dropped += 1;
            }
        }
        assert!(dropped > 900, "{dropped}");
        assert_eq!(
            m.stats().dropped[DropReason::QueueFull as usize],
            dropped as u64
        );
    }

    #[test]
    fn one_link_is_fifo_despite_jitter() {
        let mut m = NetModel::new(two_regions(0.0, 40.0), 3, 1000);
        let a = m.add_host(host(0, 0));
        let b = m.add_host(host(1, 0));
        let mut last = 0;
        for t in 0..500 {
            let d = m.send(t, a, b, 10).unwrap();
            assert!(d.arrival >= last);
            last = d.arrival;
        }
        m.prune(u64::MAX);
        assert!(m.last_arrival.is_empty());
    }

    #[test]
    fn faults_drop_messages() {
        let mut m = NetModel::new(two_regions(0.0, 0.0), 1, 1000);
        let a = m.add_host(host(0, 0));
        let b = m.add_host(host(1, 0));
        let c = m.add_host(host(1, 0));
        m.cut_link(b, a);
        assert_eq!(m.send(0, a, b, 1), Err(DropReason::LinkCut));
        m.restore_link(a, b);
        assert!(m.send(0, a, b, 1).is_ok());
        let p = m.partition(&[1]);
        assert_eq!(m.send(0, a, c, 1), Err(DropReason::Partitioned));
        assert!(m.send(0, b, c, 1).is_ok(), "same side still talks");
        m.heal(p);
        assert!(m.send(0, a, c, 1).is_ok());
        m.set_alive(c, false);
        assert_eq!(m.send(0, a, c, 1), Err(DropReason::ReceiverDown));
        assert_eq!(m.send(0, c, a, 1), Err(DropReason::SenderDown));
    }

    #[test]
    fn loss_costs_retransmissions_and_replays_with_the_seed() {
        let run = |seed| {
            let mut m = NetModel::new(two_regions(0.3, 0.0), seed, 10_000);
            let a = m.add_host(host(0, 8_000));
            let b = m.add_host(host(0, 0));
            (0..200)
                .map(|i| m.send(i * 100_000, a, b, 100).map(|d| d.arrival).ok())
                .collect::<Vec<_>>()
        };
        let x = run(5);
        assert_eq!(x, run(5));
        let mut m = NetModel::new(two_regions(0.3, 0.0), 5, 10_000);
        let a = m.add_host(host(0, 8_000));
        let b = m.add_host(host(0, 0));
        let mut slow = 0;
        for i in 0..200 {
            if let Ok(d) = m.send(i * 100_000, a, b, 100) {
                assert_eq!(d.uplink_busy_us, 100 * (1 + d.retransmissions as u64));
                if d.retransmissions > 0 {
                    slow += 1;
                    assert!(d.arrival >= d.depart_end + 1000 + 2000);
                }
            }
        }
        assert!(slow > 30, "{slow}");
        assert!(m.stats().retransmissions > 30);
    }

    #[test]
    fn media_datagrams_are_lost_at_the_first_loss_and_control_is_not() {
        let mut m = NetModel::new(two_regions(0.3, 0.0), 7, 10_000);
        m.set_media_datagrams(true);
        let a = m.add_host(host(0, 8_000));
        let b = m.add_host(host(0, 0));
        let mut lost = 0;
        for i in 0..1000 {
            match m.send(i * 100_000, a, b, 100) {
                Ok(d) => assert_eq!(d.retransmissions, 0),
                Err(DropReason::Loss) => lost += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!((250..350).contains(&lost), "{lost} of 1000 at loss 0.3");
        let control_lost = (0..1000)
            .filter(|i| {
                m.send_control(200_000_000 + i * 100_000, a, b, 100)
                    .is_err()
            })
            .count();
        assert_eq!(control_lost, 0, "control retransmits (0.3^8 per message)");
    }
}
