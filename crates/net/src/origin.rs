//! The origin role (X1, X3, D7): an ingest (UDP, TCP or HTTP push of MPEG-TS, or
//! the built-in test source) feeds a block cutter; each cut block gets the
//! channel's next seq and the wall-clock time, is signed with the origin key, and
//! enters the origin node, which serves tier 1.
//!
//! Start-up order: the ingest is bound first, so an origin that cannot take its
//! input never touches the channel; then the channel is announced (a refusal —
//! another live origin with another key — is an error). The first seq is the
//! greater of the one kept in the data directory (`origin_state`) and the one the
//! coordinator gives (one above the highest any node reported).
//!
//! An origin with an ingest reports the ingest's health to the coordinator
//! (X1, issue 17; [`crate::origin_health`]) — a backup only while promoted.
//!
//! The publish keys the coordinator keeps for the channel are put in force
//! in the ingest's key check as they arrive (X3, issue 17).
//!
//! A backup origin (`backup: Some`, D7, issue 12) announces as the channel's
//! standby instead; its blocks wait in a window until the coordinator promotes
//! it (see [`crate::origin_backup`], the rules in `tiercast_node::standby`).

use crate::clock::wall_micros;
use crate::error::DriverError;
use crate::ingest::{start_ingest_with, IngestHandle, IngestListen, IngestOptions};
use crate::node_driver::{spawn_node, NodeCommand, NodeHandle, NodeRuntime};
use crate::origin_state::SeqStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tiercast_media::{CutBlock, CutterConfig, TestSource, TimedCutter};
use tiercast_node::Event;
use tiercast_proto::{Block, ChannelDesc, OriginKey, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub enum OriginSource {
    /// An open ingest (no key, any source).
    Listen(IngestListen),
    /// An ingest with publish keys, allow-list, takeover, SRT settings (X3).
    ListenWith(IngestListen, Box<IngestOptions>),
    /// Built-in test source at this many kbit/s.
    TestSource { kbps: u32 },
}

pub struct OriginRuntime {
    pub node: NodeRuntime,
    pub channel: String,
    pub source: OriginSource,
    pub key: OriginKey,
    /// Where the next seq is kept across restarts (None: in memory, from 0).
    pub seq: Option<SeqStore>,
    /// How long to wait for the coordinator to acknowledge the channel.
    pub announce_timeout: Duration,
    /// A partial block is cut after this long without a cut (low bitrates, UDP).
    pub flush_after_ms: u64,
    /// How blocks are cut (their largest size bounds the per-hop latency).
    pub cutter: CutterConfig,
    /// Stand by as the channel's backup origin (None: its primary).
    pub backup: Option<BackupRuntime>,
}

/// What a backup origin needs besides an origin's.
pub struct BackupRuntime {
    /// The node that watches the channel (a protocol viewer) to follow the
    /// primary's seqs and cut times.
    pub watch: NodeRuntime,
    /// How much of its own ingest the standby holds (ms; at least the time the
    /// primary's loss takes to be noticed, plus a GOP).
    pub window_ms: u64,
}

pub struct OriginHandle {
    pub node: NodeHandle,
    pub channel: ChannelDesc,
    pub ingest_addr: Option<SocketAddr>,
    /// A backup origin standing by (not yet promoted) when it started.
    pub standby: bool,
    _ingest: Option<IngestHandle>,
    watch: Option<NodeHandle>,
    source_task: Option<JoinHandle<()>>,
    pump: JoinHandle<()>,
    /// Sends the ingest's health to the coordinator (a primary with an ingest).
    health_reporter: Option<JoinHandle<()>>,
}

impl OriginHandle {
    /// The ingest's counters and health (None: the test source).
    pub fn ingest_stats(&self) -> Option<Arc<crate::ingest::IngestStats>> {
        self._ingest.as_ref().map(|i| i.stats.clone())
    }

    pub async fn shutdown(self) {
        self.pump.abort();
        if let Some(t) = &self.health_reporter {
            t.abort();
        }
        if let Some(t) = &self.source_task {
            t.abort();
        }
        self.node.shutdown().await;
        if let Some(w) = self.watch {
            w.shutdown().await;
        }
    }
}

pub async fn spawn_origin(rt: OriginRuntime) -> Result<OriginHandle, DriverError> {
    if !tiercast_proto::ids::valid_channel_name(&rt.channel) {
        return Err(DriverError::Config(format!(
            "channel name '{}' must be 1-64 characters of A-Z a-z 0-9 _ -",
            rt.channel
        )));
    }
    let (tx, rx) = mpsc::channel::<CutBlock>(256);
    let cutter = rt.cutter;
    // The ingest first: an origin that cannot take its input never announces.
    let listen = match rt.source {
        OriginSource::Listen(l) => Ok((l, IngestOptions::open(&rt.channel))),
        OriginSource::ListenWith(l, o) => Ok((l, *o)),
        OriginSource::TestSource { kbps } => Err(kbps),
    };
    let mut keys = None;
    let (ingest, ingest_addr, source) = match listen {
        Ok((listen, options)) => {
            keys = Some(options.keys.clone());
            let h = start_ingest_with(listen, options, cutter, tx, rt.flush_after_ms)
                .await
                .map_err(|e| DriverError::Config(format!("cannot start ingest: {e}")))?;
            let addr = h.local_addr;
            (Some(h), Some(addr), None)
        }
        Err(kbps) => (None, None, Some((kbps, tx))),
    };
    let node = spawn_node(rt.node).await?;
    let mut notices = node.subscribe();
    if let Some(keys) = keys {
        // Before the announce: the coordinator sends its keys before `Announced`.
        node.command(NodeCommand::CheckPublishKeys(keys)).await?;
    }
    let public_key = rt.key.public_key();
    let channel_name = rt.channel.clone();
    node.command(match rt.backup {
        Some(_) => NodeCommand::AnnounceBackup {
            channel: channel_name,
            public_key,
        },
        None => NodeCommand::Announce {
            channel: channel_name,
            public_key,
        },
    })
    .await?;
    let wait = async {
        loop {
            match notices.recv().await {
                Ok(n) => match n.event {
                    Event::ChannelReady { desc, next_seq } => return Ok((desc, Some(next_seq))),
                    Event::StandbyAccepted { desc } => return Ok((desc, None)),
                    Event::AnnounceDenied {
                        channel_name,
                        reason,
                    } => {
                        return Err(DriverError::Config(format!(
                            "the coordinator refused channel '{channel_name}': {reason}"
                        )))
                    }
                    _ => {}
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return Err(DriverError::Stopped),
            }
        }
    };
    let announced = tokio::time::timeout(rt.announce_timeout, wait)
        .await
        .map_err(|_| {
            DriverError::Config("the coordinator did not acknowledge the channel in time".into())
        })
        .and_then(|r| r);
    let (desc, next_seq) = match announced {
        Ok(x) => x,
        Err(e) => {
            node.shutdown().await;
            return Err(e);
        }
    };
    let source_task =
        source.map(|(kbps, tx)| tokio::spawn(run_test_source(kbps, cutter, tx, rt.flush_after_ms)));
    if let Some(b) = rt.backup {
        // A backup origin: standing by, or promoted at once (no live primary).
        let standby = next_seq.is_none();
        let start = crate::origin_backup::BackupStart {
            desc: desc.clone(),
            next_seq,
            key: rt.key,
            store: rt.seq,
            rx,
            notices,
        };
        let started = crate::origin_backup::start_backup(&node, b, start).await;
        let (watch, pump, standing_flag) = match started {
            Ok(x) => x,
            Err(e) => {
                node.shutdown().await;
                return Err(e);
            }
        };
        // Its ingest's health goes to the coordinator only while promoted.
        let health_reporter = ingest.as_ref().map(|i| {
            let (commands, id) = (node_commands(&node), desc.id);
            crate::origin_health::spawn_reporter(i.stats.clone(), id, commands, Some(standing_flag))
        });
        return Ok(OriginHandle {
            node,
            channel: desc,
            ingest_addr,
            standby,
            _ingest: ingest,
            watch: Some(watch),
            source_task,
            pump,
            health_reporter,
        });
    }
    let Some(next_seq) = next_seq else {
        node.shutdown().await;
        return Err(DriverError::Config(
            "the coordinator made this origin a standby though it did not ask".into(),
        ));
    };
    let mut store = rt.seq;
    let first_seq = match &mut store {
        Some(s) => {
            s.raise_to(next_seq)
                .map_err(|e| DriverError::Config(format!("cannot keep the seq: {e}")))?;
            s.next()
        }
        None => next_seq,
    };
    info!(channel = %desc.name, id = %desc.id, first_seq, "channel announced");
    let commands = node_commands(&node);
    let key = Arc::new(rt.key);
    let channel = desc.id;
    let health_reporter = ingest.as_ref().map(|i| {
        crate::origin_health::spawn_reporter(i.stats.clone(), channel, commands.clone(), None)
    });
    let pump = tokio::spawn(async move {
        let mut rx = rx;
        let mut seq = first_seq;
        let mut store = store;
        while let Some(cut) = rx.recv().await {
            if let Some(s) = &mut store {
                if let Err(e) = s.advance() {
                    // Streaming goes on; a restart may then reuse a few seqs.
                    warn!(error = %e, "cannot record the origin's seq");
                }
            }
            let mut block = Block::new(
                channel,
                seq,
                Timestamp(wall_micros()),
                cut.keyframe,
                cut.payload,
            );
            key.sign(&mut block);
            seq += 1;
            if commands.send(NodeCommand::Ingest(block)).await.is_err() {
                break;
            }
        }
    });
    Ok(OriginHandle {
        node,
        channel: desc,
        ingest_addr,
        standby: false,
        _ingest: ingest,
        watch: None,
        source_task,
        pump,
        health_reporter,
    })
}

fn node_commands(node: &NodeHandle) -> mpsc::Sender<NodeCommand> {
    node.command_sender()
}

/// Paces the built-in test source in real time through a cutter, with the
/// same idle flush as every ingest path ([`TimedCutter`]).
async fn run_test_source(
    kbps: u32,
    cfg: CutterConfig,
    tx: mpsc::Sender<CutBlock>,
    flush_after_ms: u64,
) {
    let mut source = TestSource::new(kbps, 1000);
    let mut cutter = TimedCutter::new(cfg, flush_after_ms, 0);
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        let now = start.elapsed().as_micros() as u64;
        let data = source.generate(now);
        if let Err(e) = cutter.push(&data) {
            warn!(error = %e, "test source produced bytes the cutter refused");
            return;
        }
        // What the bytes cut, then the flush timer (checked at each 10 ms
        // tick, as the source's bytes come) and what it cut.
        for flush in [false, true] {
            if flush {
                cutter.handle_timeout(now);
            }
            while let Some(b) = cutter.poll_block(now) {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        }
    }
}
