//! A backup origin's driver (D7, issue 12): it carries bytes only — the rules
//! (what the standby holds, where its takeover starts, its first seq) are
//! `tiercast_node::standby`'s, when to promote it the coordinator's.
//!
//! Standing by, the cut blocks of its own ingest go into a
//! [`StandbyWindow`]; a second node, a protocol viewer of the channel, follows
//! the primary's blocks ([`PrimaryWatch`]). The origin node's `ChannelReady`
//! (the coordinator promoted it) starts the takeover: the window's blocks from
//! the chosen keyframe are numbered, signed and ingested at once, then every
//! new cut block. `StandbyAccepted` while promoted (a returning primary took
//! the channel back) makes it stand by again.

use crate::clock::wall_micros;
use crate::error::DriverError;
use crate::node_driver::{spawn_node, NodeCommand, NodeHandle, Notice};
use crate::origin::BackupRuntime;
use crate::origin_state::SeqStore;
use std::sync::{Arc, Mutex};
use tiercast_media::CutBlock;
use tiercast_node::{first_backup_seq, Event, PrimaryWatch, StandbyWindow, WindowBlock};
use tiercast_proto::{Block, ChannelDesc, ChannelId, OriginKey, Timestamp};
use tokio::sync::{broadcast, broadcast::error::RecvError, mpsc};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Most blocks a standby holds, whatever its window's span.
pub const MAX_WINDOW_BLOCKS: usize = 4096;

/// Starts the watch node and the pump of a backup origin (and returns its
/// `standing` flag: up while it stands by); `next_seq` is Some
/// when the coordinator made it the origin at once; `notices`: the origin
/// node's, subscribed before its announce (no promotion is missed).
pub(crate) struct BackupStart {
    pub desc: ChannelDesc,
    pub next_seq: Option<u64>,
    pub key: OriginKey,
    pub store: Option<SeqStore>,
    pub rx: mpsc::Receiver<CutBlock>,
    pub notices: broadcast::Receiver<Notice>,
}

pub(crate) async fn start_backup(
    node: &NodeHandle,
    b: BackupRuntime,
    start: BackupStart,
) -> Result<
    (
        NodeHandle,
        JoinHandle<()>,
        Arc<std::sync::atomic::AtomicBool>,
    ),
    DriverError,
> {
    let BackupStart {
        desc,
        next_seq,
        key,
        store,
        rx,
        mut notices,
    } = start;
    let watch = spawn_node(b.watch).await?;
    let primary = Arc::new(Mutex::new(PrimaryWatch::default()));
    let standing = Arc::new(std::sync::atomic::AtomicBool::new(next_seq.is_none()));
    let mut seen = watch.subscribe();
    let (p, s) = (primary.clone(), standing.clone());
    let standing_flag = standing.clone();
    tokio::spawn(async move {
        loop {
            match seen.recv().await {
                Ok(n) => {
                    if let Event::BlockStored { block } = n.event {
                        if s.load(std::sync::atomic::Ordering::Relaxed) {
                            let mut p = p.lock().expect("not poisoned");
                            p.saw(block.seq, block.origin_time_us, block.is_keyframe());
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
    watch.command(NodeCommand::Watch(desc.name.clone())).await?;
    info!(channel = %desc.name, "backup origin standing by");
    let mut pump = Pump {
        commands: node.command_sender(),
        key,
        store,
        window: StandbyWindow::new(b.window_ms, MAX_WINDOW_BLOCKS),
        promoted: None,
    };
    let mut rx = rx;
    let task = tokio::spawn(async move {
        if let Some(n) = next_seq {
            pump.promote(desc.id, n, PrimaryWatch::default()).await;
        }
        loop {
            tokio::select! {
                cut = rx.recv() => {
                    let Some(cut) = cut else { return };
                    let wb = WindowBlock {
                        cut_at_us: wall_micros(),
                        keyframe: cut.keyframe,
                        payload: cut.payload,
                    };
                    if let Some(b) = pump.window.cut(wb) {
                        if !pump.send(b).await {
                            return;
                        }
                    }
                }
                n = notices.recv() => match n {
                    Ok(n) => match n.event {
                        Event::ChannelReady { desc, next_seq } => {
                            standing.store(false, std::sync::atomic::Ordering::Relaxed);
                            let seen = *primary.lock().expect("not poisoned");
                            pump.promote(desc.id, next_seq, seen).await;
                        }
                        Event::StandbyAccepted { desc } => {
                            info!(channel = %desc.name, "channel handed back: standing by again");
                            pump.window.stand_by();
                            pump.promoted = None;
                            *primary.lock().expect("not poisoned") = PrimaryWatch::default();
                            standing.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                        _ => {}
                    },
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
    Ok((watch, task, standing_flag))
}

struct Pump {
    commands: mpsc::Sender<NodeCommand>,
    key: OriginKey,
    store: Option<SeqStore>,
    window: StandbyWindow,
    /// Promoted: the channel and the seq of the next block.
    promoted: Option<(ChannelId, u64)>,
}

impl Pump {
    async fn promote(&mut self, channel: ChannelId, next_seq: u64, seen: PrimaryWatch) {
        let mut first = first_backup_seq(next_seq, seen.last_seq());
        if let Some(s) = &mut self.store {
            match s.raise_to(first) {
                Ok(()) => first = s.next(),
                Err(e) => warn!(error = %e, "cannot record the origin's seq"),
            }
        }
        self.promoted = Some((channel, first));
        let held = self.window.promote(seen.takeover_after_us());
        info!(
            first_seq = first,
            primary_last_seq = ?seen.last_seq(),
            primary_last_cut_us = ?seen.last_cut_at_us(),
            primary_gop_us = ?seen.gop_us,
            start_after_us = ?seen.takeover_after_us(),
            window_blocks = held.len(),
            first_block_cut_us = ?held.first().map(|b| b.cut_at_us),
            "backup origin promoted: the channel is this origin's"
        );
        for b in held {
            if !self.send(b).await {
                return;
            }
        }
    }

    /// Numbers, signs and ingests one block (false: the node is gone).
    async fn send(&mut self, b: WindowBlock) -> bool {
        let Some((channel, seq)) = self.promoted.as_mut() else {
            return true;
        };
        let mut block = Block::new(
            *channel,
            *seq,
            Timestamp(b.cut_at_us),
            b.keyframe,
            b.payload,
        );
        self.key.sign(&mut block);
        *seq += 1;
        if let Some(s) = &mut self.store {
            if let Err(e) = s.advance() {
                warn!(error = %e, "cannot record the origin's seq");
            }
        }
        self.commands.send(NodeCommand::Ingest(block)).await.is_ok()
    }
}
