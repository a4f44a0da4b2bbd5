//! The backup origin's side (D7, issue 12): an origin that stands by for a
//! channel, and the rules of its takeover. The coordinator decides *when* (the
//! primary lost, `coordinator::content_directory::backup`); this decides *what*
//! the backup sends, so the simulator and the driver use the same rules:
//!
//! - while standing by, the backup cuts its own ingest into a [`StandbyWindow`]
//!   (the last `span` of blocks, bounded in count), feeds nobody, and follows
//!   the primary's blocks as the overlay delivers them ([`PrimaryWatch`]: the
//!   highest seq, the latest keyframe block and the GOP between keyframes, by
//!   their cut times);
//! - promoted (`Announced` → `ChannelReady`), it starts at its first keyframe
//!   cut more than half a GOP after the primary's last keyframe
//!   ([`PrimaryWatch::takeover_after_us`]): the GOP after the primary's last,
//!   so a viewer's frames go on where the primary's stopped — no GOP repeated,
//!   and no hole longer than one GOP when both encoders are fed the same source
//!   and their cut times differ by less than half a GOP; with no such keyframe
//!   held yet, at the next one its ingest cuts;
//! - its seqs continue the channel's: [`first_backup_seq`] — above the highest
//!   the primary was seen to send, by [`IN_FLIGHT_MARGIN`] for blocks that
//!   reached some relays and not the backup's watch, and never below the
//!   coordinator's `next_seq`;
//! - handed back (a returning primary took the channel, `StandbyAccepted` while
//!   this node is its origin), it drops the channel and stands by again.

use crate::event::Event;
use crate::node::Node;
use bytes::Bytes;
use std::collections::VecDeque;
use tiercast_proto::{ChannelDesc, NodeRole, COORDINATOR_ID};

/// Seqs left unused between the highest the backup saw from the primary and
/// its own first: blocks of the primary still in flight when it died may have
/// reached some relays (a seq is never reused).
pub const IN_FLIGHT_MARGIN: u64 = 64;

impl Node {
    /// The origin stands by for `channel_name` as its backup (signing with the
    /// channel's key, `public_key`'s pair).
    pub fn announce_backup(&mut self, channel_name: &str, public_key: [u8; 32]) {
        self.standby.insert(channel_name.to_string());
        self.announce(channel_name, public_key);
    }

    /// Whether this origin stands by for `channel_name` now.
    pub fn is_standby(&self, channel_name: &str) -> bool {
        self.standby.contains(channel_name)
    }

    pub(crate) fn on_standby_accepted(&mut self, desc: ChannelDesc) {
        if self.cfg.role != NodeRole::Origin || !self.announcing.contains_key(&desc.name) {
            self.invalid(
                COORDINATOR_ID,
                "standby_accepted",
                "not a channel this origin announced",
            );
            return;
        }
        // Handed back to a returning primary: its children were re-homed to it.
        self.channels.remove(&desc.id);
        self.held_ingest.retain(|b| b.channel != desc.id);
        self.standby.insert(desc.name.clone());
        self.events.push_back(Event::StandbyAccepted { desc });
    }
}

/// The backup's first seq when promoted: above what the primary was seen to
/// send (plus [`IN_FLIGHT_MARGIN`]), never below the coordinator's `next_seq`.
pub fn first_backup_seq(next_seq: u64, primary_last_seq: Option<u64>) -> u64 {
    primary_last_seq
        .map_or(0, |s| s.saturating_add(1 + IN_FLIGHT_MARGIN))
        .max(next_seq)
}

/// The primary's blocks as the backup's watch received them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrimaryWatch {
    /// The highest seq seen and its cut time (wall-clock µs, the block's timestamp).
    pub last: Option<(u64, u64)>,
    /// The cut time of the latest keyframe block seen (by seq), with its seq.
    pub last_keyframe: Option<(u64, u64)>,
    /// The time between the primary's last two keyframe blocks seen (µs).
    pub gop_us: Option<u64>,
}

impl PrimaryWatch {
    pub fn saw(&mut self, seq: u64, cut_at_us: u64, keyframe: bool) {
        if self.last.is_none_or(|(s, _)| seq > s) {
            self.last = Some((seq, cut_at_us));
        }
        if keyframe && self.last_keyframe.is_none_or(|(s, _)| seq > s) {
            if let Some((_, t)) = self.last_keyframe {
                self.gop_us = Some(cut_at_us.saturating_sub(t));
            }
            self.last_keyframe = Some((seq, cut_at_us));
        }
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.last.map(|(s, _)| s)
    }

    pub fn last_cut_at_us(&self) -> Option<u64> {
        self.last.map(|(_, t)| t)
    }

    /// The backup's takeover starts at its first keyframe cut after this (µs):
    /// half a GOP after the primary's last keyframe — so the two encoders'
    /// cut times may differ by up to half a GOP and the backup still starts at
    /// the GOP after the primary's last, never repeating it (a decoder given
    /// the same GOP twice shows broken frames) and never skipping one — or,
    /// with no GOP known, after the primary's last block.
    pub fn takeover_after_us(&self) -> Option<u64> {
        match (self.last_keyframe, self.gop_us) {
            (Some((_, t)), Some(gop)) => Some(t.saturating_add(gop / 2)),
            _ => self.last_cut_at_us(),
        }
    }
}

/// One block the backup's ingest cut, not yet numbered nor signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowBlock {
    /// When it was cut (wall-clock µs: the clock the primary stamps its blocks with).
    pub cut_at_us: u64,
    pub keyframe: bool,
    pub payload: Bytes,
}

/// The standby's recent blocks, then the gate of its takeover.
#[derive(Debug)]
pub struct StandbyWindow {
    blocks: VecDeque<WindowBlock>,
    span_us: u64,
    max_blocks: usize,
    /// `None` standing by; promoted, `Some(after)`: the takeover starts at a
    /// keyframe cut after `after` (µs).
    promoted_after: Option<u64>,
    /// Promoted and sending (its first keyframe passed).
    started: bool,
}

impl StandbyWindow {
    /// Holds the last `span_ms` of blocks, at most `max_blocks` (≥ 1).
    pub fn new(span_ms: u64, max_blocks: usize) -> Self {
        StandbyWindow {
            blocks: VecDeque::new(),
            span_us: span_ms.saturating_mul(1000),
            max_blocks: max_blocks.max(1),
            promoted_after: None,
            started: false,
        }
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Whether the takeover has started sending (a keyframe was found).
    pub fn started(&self) -> bool {
        self.started
    }

    /// A block the ingest cut. Standing by: kept (the oldest beyond the span or
    /// the count go), and nothing is sent. Promoted: what to send now.
    pub fn cut(&mut self, b: WindowBlock) -> Option<WindowBlock> {
        match self.promoted_after {
            None => {
                let newest = b.cut_at_us;
                self.blocks.push_back(b);
                while self.blocks.len() > self.max_blocks
                    || self
                        .blocks
                        .front()
                        .is_some_and(|f| newest.saturating_sub(f.cut_at_us) > self.span_us)
                {
                    self.blocks.pop_front();
                }
                None
            }
            Some(_) if self.started => Some(b),
            Some(after) => {
                if b.keyframe && b.cut_at_us > after {
                    self.started = true;
                    Some(b)
                } else {
                    None
                }
            }
        }
    }

    /// Promoted: the held blocks to send at once — from the first keyframe cut
    /// after `after_us` ([`PrimaryWatch::takeover_after_us`]), or from the
    /// latest keyframe held when the primary was never seen (`None`). Empty:
    /// the takeover starts at the next such keyframe [`StandbyWindow::cut`] passes.
    pub fn promote(&mut self, after_us: Option<u64>) -> Vec<WindowBlock> {
        let primary_last_at_us = after_us;
        let held = std::mem::take(&mut self.blocks);
        let start = match primary_last_at_us {
            Some(t) => held.iter().position(|b| b.keyframe && b.cut_at_us > t),
            None => held.iter().rposition(|b| b.keyframe),
        };
        self.promoted_after = Some(primary_last_at_us.unwrap_or(0));
        match start {
            Some(i) => {
                self.started = true;
                held.into_iter().skip(i).collect()
            }
            None => Vec::new(),
        }
    }

    /// Handed back: standing by again, empty.
    pub fn stand_by(&mut self) {
        self.blocks.clear();
        self.promoted_after = None;
        self.started = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(t: u64, key: bool) -> WindowBlock {
        WindowBlock {
            cut_at_us: t,
            keyframe: key,
            payload: Bytes::from(t.to_be_bytes().to_vec()),
        }
    }

    #[test]
    fn the_takeover_starts_at_the_first_keyframe_after_the_primarys_last_block() {
        let mut w = StandbyWindow::new(10_000, 100);
        for t in 0..40u64 {
            assert!(
                w.cut(b(t * 100_000, t % 10 == 0)).is_none(),
                "standby sends nothing"
            );
        }
        // The primary's last block was cut at 2.05 s: start at 3.0 s.
        let sent = w.promote(Some(2_050_000));
        assert_eq!(sent.first().unwrap().cut_at_us, 3_000_000);
        assert_eq!(sent.len(), 10);
        assert!(w.started());
        assert_eq!(w.cut(b(4_000_000, false)).unwrap().cut_at_us, 4_000_000);
    }

    #[test]
    fn with_no_keyframe_held_after_the_primary_it_waits_for_the_next_one() {
        let mut w = StandbyWindow::new(10_000, 100);
        for t in 0..5u64 {
            w.cut(b(t * 100_000, t == 0));
        }
        assert!(w.promote(Some(450_000)).is_empty());
        assert!(!w.started());
        assert!(w.cut(b(500_000, false)).is_none(), "no start mid-GOP");
        assert!(w.cut(b(600_000, true)).is_some());
        assert!(w.cut(b(700_000, false)).is_some());
        w.stand_by();
        assert!(w.cut(b(800_000, true)).is_none(), "standing by again");
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn never_seen_primary_starts_at_the_latest_keyframe_and_the_window_is_bounded() {
        let mut w = StandbyWindow::new(1_000, 8);
        for t in 0..100u64 {
            w.cut(b(t * 100_000, t % 4 == 0));
            assert!(w.len() <= 8);
        }
        let sent = w.promote(None);
        assert_eq!(sent.first().unwrap().cut_at_us, 9_600_000);
        let mut span = StandbyWindow::new(1_000, 1000);
        for t in 0..100u64 {
            span.cut(b(t * 100_000, false));
        }
        assert_eq!(span.len(), 11, "1 s of 100 ms blocks, both ends held");
    }

    #[test]
    fn the_backups_seqs_continue_above_the_primarys() {
        assert_eq!(first_backup_seq(10, None), 10);
        assert_eq!(first_backup_seq(10, Some(500)), 501 + IN_FLIGHT_MARGIN);
        assert_eq!(first_backup_seq(9_000, Some(500)), 9_000);
        let mut p = PrimaryWatch::default();
        p.saw(7, 70, false);
        p.saw(5, 99, false);
        assert_eq!(p.last, Some((7, 70)));
        assert_eq!(
            p.takeover_after_us(),
            Some(70),
            "no GOP known: the last block"
        );
    }

    #[test]
    fn a_backup_cutting_later_than_the_primary_starts_at_the_next_gop_not_the_same() {
        // GOP 1 s; the backup cuts each block 80 ms after the primary's.
        let mut p = PrimaryWatch::default();
        let mut w = StandbyWindow::new(10_000, 100);
        for t in 0..35u64 {
            let at = t * 200_000;
            let key = t % 5 == 0;
            if t <= 26 {
                p.saw(t, at, key);
            }
            w.cut(b(at + 80_000, key));
        }
        // The primary's last block (seq 26, 5.2 s) came 200 ms after its
        // keyframe at 5.0 s; the backup's copy of that keyframe was cut at
        // 5.08 s, after the primary's last block: not it, the next GOP's.
        assert_eq!(p.gop_us, Some(1_000_000));
        let sent = w.promote(p.takeover_after_us());
        assert_eq!(sent.first().unwrap().cut_at_us, 6_000_000 + 80_000);
    }
}
