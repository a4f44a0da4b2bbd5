//! The audio-only and delayed feeds (C3: "audio before video", "a time-delayed
//! feed for free viewers") between the live channel and one viewer's socket. The
//! shaping is [`FeedShaper`], pure: blocks in (the backlog, then live blocks the
//! [`Cursor`] admits), payloads out — through the viewer's `DelayLine`
//! (`tiercast_node`: a block leaves once the relay holds a block cut the delay after
//! it) and then its `AudioOnlyFilter` (`tiercast_media`: PAT, audio-only PMT, audio
//! PIDs, the clock). The pump here only moves bytes; the plain live feed keeps its
//! own faster pump (`viewer_stream`).

use std::time::Duration;

use bytes::Bytes;
use tiercast_media::AudioOnlyFilter;
use tiercast_node::DelayLine;
use tiercast_proto::viewer_feed::{FeedKind, ViewerFeed};
use tokio::io::AsyncWrite;
use tokio::sync::broadcast::Receiver;

use super::viewer::{LiveBlock, ViewerServerStats};
use super::viewer_stream::{write_all_vectored, Cursor, Delivery, Next, StreamEnd};

/// Blocks taken from the channel per write at most.
const MAX_BATCH_BLOCKS: usize = 256;

/// One viewer's feed: the delay line (when delayed) and the audio filter (when audio).
pub(crate) struct FeedShaper {
    delay: Option<DelayLine<LiveBlock>>,
    audio: Option<AudioOnlyFilter>,
    /// Live feed, no delay: blocks waiting to be filtered and sent.
    ready: std::collections::VecDeque<LiveBlock>,
}

impl FeedShaper {
    /// `max_held`: blocks a delayed viewer may hold at most.
    pub(crate) fn new(feed: ViewerFeed, max_held: usize) -> Self {
        FeedShaper {
            delay: (feed.delay_s > 0)
                .then(|| DelayLine::new(u64::from(feed.delay_s) * 1_000_000, max_held)),
            audio: (feed.kind == FeedKind::Audio).then(AudioOnlyFilter::new),
            ready: std::collections::VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, block: LiveBlock) {
        match &mut self.delay {
            Some(line) => line.push(block.origin_time_us, block.keyframe, block.clone()),
            None => self.ready.push_back(block),
        }
    }

    /// The next payload to write (possibly empty: a block with no audio in it).
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        let block = match &mut self.delay {
            Some(line) => line.pop_due()?,
            None => self.ready.pop_front()?,
        };
        Some(match &mut self.audio {
            Some(filter) => Bytes::from(filter.filter(&block.payload)),
            None => block.payload,
        })
    }

    /// Blocks dropped by the delay line (before a keyframe, or when full).
    pub(crate) fn skipped(&self) -> u64 {
        self.delay.as_ref().map_or(0, |l| l.skipped())
    }
}

/// Writes `head`, then the shaped backlog and live blocks until the channel
/// closes or the client goes away.
pub(crate) async fn pump_feed<W: AsyncWrite + Unpin>(
    writer: &mut W,
    head: Bytes,
    backlog: Vec<LiveBlock>,
    mut live: Receiver<LiveBlock>,
    mut shaper: FeedShaper,
    write_timeout: Duration,
    stats: &ViewerServerStats,
) -> (StreamEnd, Delivery) {
    let mut cursor = Cursor::new(&backlog);
    for block in backlog {
        shaper.push(block);
    }
    let mut delivered_blocks = 0u64;
    let mut batch = vec![head];
    let mut closed = false;
    let end = loop {
        let mut blocks = 0u64;
        while let Some(payload) = shaper.pop() {
            blocks += 1;
            if !payload.is_empty() {
                batch.push(payload);
            }
        }
        match write_all_vectored(writer, &batch, write_timeout).await {
            Ok(written) => {
                stats
                    .bytes_out
                    .fetch_add(written as u64, std::sync::atomic::Ordering::Relaxed);
                delivered_blocks += blocks;
            }
            Err(e) => break StreamEnd::WriteFailed(e),
        }
        batch.clear();
        if closed {
            break StreamEnd::ChannelClosed;
        }
        let mut next = Next::from_recv(live.recv().await);
        for _ in 0..MAX_BATCH_BLOCKS {
            match next {
                Next::Block(block) => {
                    if let Some(block) = cursor.admit_block(block) {
                        shaper.push(block);
                    }
                }
                Next::Lagged(n) => cursor.lagged(n),
                Next::Closed => {
                    // What the delay still holds is never due: the stream ended.
                    closed = true;
                    break;
                }
                Next::Empty => break,
            }
            next = Next::from_try_recv(live.try_recv());
        }
    };
    stats
        .lagged_resyncs
        .fetch_add(cursor.lagged_resyncs, std::sync::atomic::Ordering::Relaxed);
    let delivery = Delivery {
        delivered_blocks,
        skipped_blocks: cursor.skipped_blocks + shaper.skipped(),
    };
    (end, delivery)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercast_media::psi::{write_pat_packet, write_pmt_packet};
    use tiercast_media::ts::pid_of;
    use tiercast_media::PACKET_SIZE;

    /// A block of PAT, PMT (video 0x100, audio 0x101), one video and one audio
    /// packet; cut every 100 ms, a keyframe every second.
    fn block(seq: u64) -> LiveBlock {
        let mut ts = write_pat_packet(1, 1, 0x1000, 0).to_vec();
        ts.extend_from_slice(&write_pmt_packet(
            0x1000,
            1,
            0x101,
            &[(0x1B, 0x100), (0x0F, 0x101)],
            0,
        ));
        for pid in [0x100u16, 0x101] {
            let mut p = [0xAAu8; PACKET_SIZE];
            p[..4].copy_from_slice(&[0x47, (pid >> 8) as u8, pid as u8, 0x10]);
            ts.extend_from_slice(&p);
        }
        LiveBlock {
            seq,
            keyframe: seq.is_multiple_of(10),
            origin_time_us: seq * 100_000,
            payload: Bytes::from(ts),
        }
    }

    #[test]
    fn an_audio_feed_carries_no_video_packet() {
        let mut shaper = FeedShaper::new(
            ViewerFeed {
                kind: FeedKind::Audio,
                delay_s: 0,
            },
            0,
        );
        shaper.push(block(0));
        let out = shaper.pop().unwrap();
        let pids: Vec<u16> = out.chunks(PACKET_SIZE).map(pid_of).collect();
        assert_eq!(pids, vec![0, 0x1000, 0x101]);
        assert!(shaper.pop().is_none());
    }

    #[test]
    fn a_delayed_feed_releases_each_block_the_delay_after_it() {
        let feed = ViewerFeed {
            kind: FeedKind::Full,
            delay_s: 2,
        };
        let mut shaper = FeedShaper::new(feed, 1000);
        let mut released = Vec::new();
        for seq in 0..50 {
            shaper.push(block(seq));
            while let Some(payload) = shaper.pop() {
                assert_eq!(payload, block(0).payload, "untouched bytes");
                released.push(seq);
            }
        }
        // Nothing in the first 2 s, then one per block: 30 blocks for seqs 20..50.
        assert_eq!(released.first(), Some(&20));
        assert_eq!(released.len(), 30);
    }
}
