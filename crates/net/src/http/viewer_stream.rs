//! The per-viewer pump: live blocks from a `broadcast` channel to the socket in
//! batches (one `recv`, then every block already waiting via `try_recv`), each
//! batch written with vectored writes straight from the `Bytes` (zero copies);
//! a viewer that lags the channel skips forward to the next keyframe.
//!
//! Features: X2 (viewer HTTP, efficient fan-out), X3 (a viewer whose socket
//! stays unwritable past the write timeout is dropped).
//!
//! A client that disconnects is noticed at the next write (the socket is never
//! read while streaming: that would cost a poll per batch for every viewer).

use std::io::{self, IoSlice};
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

use super::viewer::{LiveBlock, ViewerServerStats};

/// Buffers handed to one `writev` at most (well under every `IOV_MAX`).
const MAX_IOV: usize = 64;
/// Blocks gathered into one batch at most.
const MAX_BATCH_BLOCKS: usize = 256;
/// Payload bytes gathered into one batch at most.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// `bytes_out` is published in steps of this size, not once per write, so
/// that a thousand viewers do not all contend on one counter.
const STATS_FLUSH_BYTES: u64 = 1024 * 1024;

/// How a viewer's stream ended.
#[derive(Debug)]
pub(crate) enum StreamEnd {
    /// The channel closed: the response is complete.
    ChannelClosed,
    /// Writing failed: the client went away (or stayed unwritable too long).
    WriteFailed(io::Error),
}

/// What a viewer was sent, for the `Leave` report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub delivered_blocks: u64,
    pub skipped_blocks: u64,
}

/// Decides block by block what the viewer gets: drops live blocks that repeat
/// the backlog, and after a lag skips to the next keyframe.
#[derive(Debug)]
pub(crate) struct Cursor {
    /// Seq range of the backlog; live blocks inside it are duplicates until
    /// the first block outside it has been taken.
    backlog_seqs: Option<(u64, u64)>,
    resyncing: bool,
    /// No backlog was given: a player must start at a keyframe.
    awaiting_first_keyframe: bool,
    pub lagged_resyncs: u64,
    pub skipped_blocks: u64,
}

/// One outcome of receiving from the channel.
pub(crate) enum Next {
    Block(LiveBlock),
    Lagged(u64),
    Closed,
    Empty,
}

impl Next {
    pub(crate) fn from_recv(result: Result<LiveBlock, RecvError>) -> Next {
        match result {
            Ok(block) => Next::Block(block),
            Err(RecvError::Lagged(n)) => Next::Lagged(n),
            Err(RecvError::Closed) => Next::Closed,
        }
    }

    pub(crate) fn from_try_recv(result: Result<LiveBlock, TryRecvError>) -> Next {
        match result {
            Ok(block) => Next::Block(block),
            Err(TryRecvError::Lagged(n)) => Next::Lagged(n),
            Err(TryRecvError::Closed) => Next::Closed,
            Err(TryRecvError::Empty) => Next::Empty,
        }
    }
}

impl Cursor {
    pub(crate) fn new(backlog: &[LiveBlock]) -> Self {
        let backlog_seqs = match (backlog.first(), backlog.last()) {
            (Some(first), Some(last)) => Some((first.seq.min(last.seq), first.seq.max(last.seq))),
            _ => None,
        };
        Cursor {
            backlog_seqs,
            resyncing: false,
            awaiting_first_keyframe: backlog.is_empty(),
            lagged_resyncs: 0,
            skipped_blocks: 0,
        }
    }

    /// The payload to send for `block`, or `None` to drop it.
    pub(crate) fn admit(&mut self, block: LiveBlock) -> Option<Bytes> {
        self.admit_block(block).map(|b| b.payload)
    }

    /// The block itself when the viewer gets it, or `None` to drop it.
    pub(crate) fn admit_block(&mut self, block: LiveBlock) -> Option<LiveBlock> {
        if let Some((first, last)) = self.backlog_seqs {
            if (first..=last).contains(&block.seq) {
                return None;
            }
            self.backlog_seqs = None;
        }
        if self.awaiting_first_keyframe {
            if !block.keyframe {
                return None;
            }
            self.awaiting_first_keyframe = false;
        }
        if self.resyncing {
            if !block.keyframe {
                self.skipped_blocks += 1;
                return None;
            }
            self.resyncing = false;
        }
        Some(block)
    }

    /// The viewer missed `n` blocks: wait for the next keyframe.
    pub(crate) fn lagged(&mut self, n: u64) {
        self.skipped_blocks += n;
        self.backlog_seqs = None;
        self.awaiting_first_keyframe = false;
        if !self.resyncing {
            self.resyncing = true;
            self.lagged_resyncs += 1;
        }
    }
}

/// Writes `head`, the backlog, then the live channel until it closes or the
/// client goes away. Returns how it ended and what was delivered.
pub(crate) async fn pump<W: AsyncWrite + Unpin>(
    writer: &mut W,
    head: Bytes,
    backlog: Vec<LiveBlock>,
    mut live: Receiver<LiveBlock>,
    write_timeout: Duration,
    stats: &ViewerServerStats,
) -> (StreamEnd, Delivery) {
    let mut cursor = Cursor::new(&backlog);
    let mut delivered_blocks = backlog.len() as u64;
    let mut unpublished_bytes = 0u64;
    let mut batch: Vec<Bytes> = Vec::with_capacity(MAX_BATCH_BLOCKS.max(backlog.len() + 1));
    batch.push(head);
    batch.extend(backlog.into_iter().map(|block| block.payload));
    let mut pending_blocks = batch.len() as u64 - 1;
    let mut closed = false;
    let end = loop {
        let written = match write_all_vectored(writer, &batch, write_timeout).await {
            Ok(bytes) => bytes,
            Err(e) => {
                delivered_blocks -= pending_blocks;
                break StreamEnd::WriteFailed(e);
            }
        };
        unpublished_bytes += written as u64;
        if unpublished_bytes >= STATS_FLUSH_BYTES {
            stats
                .bytes_out
                .fetch_add(unpublished_bytes, Ordering::Relaxed);
            unpublished_bytes = 0;
        }
        if closed {
            break StreamEnd::ChannelClosed;
        }
        batch.clear();
        pending_blocks = 0;
        let mut batch_bytes = 0usize;
        let mut next = Next::from_recv(live.recv().await);
        loop {
            match next {
                Next::Block(block) => {
                    if let Some(payload) = cursor.admit(block) {
                        batch_bytes += payload.len();
                        batch.push(payload);
                        pending_blocks += 1;
                    }
                }
                Next::Lagged(n) => cursor.lagged(n),
                Next::Closed => {
                    closed = true;
                    break;
                }
                Next::Empty => break,
            }
            if batch.len() >= MAX_BATCH_BLOCKS || batch_bytes >= MAX_BATCH_BYTES {
                break;
            }
            next = Next::from_try_recv(live.try_recv());
        }
        delivered_blocks += pending_blocks;
    };
    stats
        .bytes_out
        .fetch_add(unpublished_bytes, Ordering::Relaxed);
    stats
        .lagged_resyncs
        .fetch_add(cursor.lagged_resyncs, Ordering::Relaxed);
    let delivery = Delivery {
        delivered_blocks,
        skipped_blocks: cursor.skipped_blocks,
    };
    (end, delivery)
}

/// Writes every buffer of `bufs` in order with vectored writes, resuming after
/// partial writes; fails if one write makes no progress within `timeout`.
/// Returns the bytes written.
pub(crate) async fn write_all_vectored<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bufs: &[Bytes],
    timeout: Duration,
) -> io::Result<usize> {
    let mut index = 0;
    let mut offset = 0;
    let mut total = 0;
    loop {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let mut count = 0;
        for (i, buf) in bufs.iter().enumerate().skip(index) {
            if count == MAX_IOV {
                break;
            }
            let rest = if i == index {
                &buf[offset.min(buf.len())..]
            } else {
                &buf[..]
            };
            if !rest.is_empty() {
                iov[count] = IoSlice::new(rest);
                count += 1;
            }
        }
        if count == 0 {
            return Ok(total);
        }
        let written =
            match tokio::time::timeout(timeout, writer.write_vectored(&iov[..count])).await {
                Ok(result) => result?,
                Err(_elapsed) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("socket unwritable for {} ms", timeout.as_millis()),
                    ))
                }
            };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        total += written;
        let mut left = written;
        while left > 0 && index < bufs.len() {
            let rest = bufs[index].len().saturating_sub(offset);
            if left >= rest {
                left -= rest;
                index += 1;
                offset = 0;
            } else {
                offset += left;
                left = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Accepts at most 7 bytes per write, through the vectored path.
    struct Trickle(Vec<u8>);

    impl AsyncWrite for Trickle {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(7);
            self.get_mut().0.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            let mut budget = 7;
            for buf in bufs {
                let n = buf.len().min(budget);
                this.0.extend_from_slice(&buf[..n]);
                budget -= n;
                if budget == 0 {
                    break;
                }
            }
            Poll::Ready(Ok(7 - budget))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn block(seq: u64, keyframe: bool) -> LiveBlock {
        LiveBlock {
            seq,
            keyframe,
            origin_time_us: seq,
            payload: Bytes::from(vec![seq as u8; 3]),
        }
    }

    #[tokio::test]
    async fn vectored_write_survives_partial_writes() {
        let bufs: Vec<Bytes> = (0..200u32)
            .map(|i| Bytes::from(vec![i as u8; (i % 5) as usize]))
            .collect();
        let expected: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        let mut sink = Trickle(Vec::new());
        let n = write_all_vectored(&mut sink, &bufs, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(n, expected.len());
        assert_eq!(sink.0, expected);
    }

    #[test]
    fn cursor_drops_backlog_repeats_then_resyncs_at_keyframe() {
        let mut cursor = Cursor::new(&[block(5, true), block(6, false)]);
        assert!(cursor.admit(block(6, false)).is_none());
        assert!(cursor.admit(block(7, false)).is_some());
        cursor.lagged(10);
        assert!(cursor.admit(block(18, false)).is_none());
        cursor.lagged(3);
        assert!(cursor.admit(block(22, true)).is_some());
        assert!(cursor.admit(block(23, false)).is_some());
        assert_eq!(cursor.lagged_resyncs, 1);
        assert_eq!(cursor.skipped_blocks, 14);
    }

    #[test]
    fn without_backlog_the_viewer_starts_at_a_keyframe() {
        let mut cursor = Cursor::new(&[]);
        assert!(cursor.admit(block(3, false)).is_none());
        assert!(cursor.admit(block(4, true)).is_some());
        assert!(cursor.admit(block(5, false)).is_some());
        assert_eq!(cursor.lagged_resyncs, 0);
    }
}
