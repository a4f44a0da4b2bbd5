//! Cuts at frame boundaries (X1, X2; D7 issue 12): the cutter cuts at PAT,
//! which muxers write between PES packets, but a cut by size
//! (`max_block_bytes`) or by the flush timer falls wherever the input stopped
//! — possibly mid-frame. Such a block is harmless while the next one follows,
//! but when the origin dies right after it, viewers get a frame cut short, and
//! a decoder fed it and then the backup origin's stream decodes the backup's
//! first GOP broken (seen in `e2e_backup_origin`: a 16 KiB keyframe block cut
//! 10 packets into the next frame). So both cuts are made before the open
//! block's last video PES start when a video payload comes before it (that PES
//! may be unfinished; it opens the next block):
//!
//! - by size: the rest of the block moves on; a block holding one frame
//!   (or none known) is cut whole — a frame larger than a block is split;
//! - by the flush: a block whose only video PES may be unfinished stays open;
//!   what a flush held back is cut whole by the next flush if no packet came
//!   in between (the stream paused or ended); a block without video is cut
//!   whole.

use super::BlockCutter;
use crate::ts::{pid_of, PACKET_SIZE};

/// Where the open block's frames end.
enum Frames {
    /// No video payload in it (or no video PID known).
    NoVideo,
    /// Its last video PES starts at this packet, after a video payload.
    LastStartsAt(usize),
    /// Its only video PES may be unfinished.
    OneUnfinished,
}

impl BlockCutter {
    fn frames(&self) -> Frames {
        let Some(video) = self.psi.video_pid else {
            return Frames::NoVideo;
        };
        let mut first_payload = None;
        let mut last_start = None;
        for (i, p) in self.block.bytes.chunks_exact(PACKET_SIZE).enumerate() {
            if pid_of(p) != video {
                continue;
            }
            if first_payload.is_none() && p[3] & 0x10 != 0 {
                first_payload = Some(i);
            }
            if p[1] & 0x40 != 0 {
                last_start = Some(i);
            }
        }
        match (first_payload, last_start) {
            (None, _) => Frames::NoVideo,
            (Some(first), Some(last)) if last > first => Frames::LastStartsAt(last),
            _ => Frames::OneUnfinished,
        }
    }

    /// Cuts the open block before packet `at`; the rest stays open.
    fn cut_before(&mut self, at: usize) {
        let rest = self.block.bytes.split_off(at * PACKET_SIZE);
        self.cut();
        self.block.bytes.extend_from_slice(&rest);
    }

    /// The open block is full.
    pub(super) fn size_cut(&mut self) {
        match self.frames() {
            Frames::LastStartsAt(at) => self.cut_before(at),
            Frames::NoVideo | Frames::OneUnfinished => self.cut(),
        }
    }

    /// The flush timer's cut.
    pub(super) fn flush_cut(&mut self) {
        if std::mem::take(&mut self.held_at_flush) {
            return self.cut();
        }
        match self.frames() {
            Frames::NoVideo => self.cut(),
            Frames::LastStartsAt(at) => {
                self.cut_before(at);
                self.held_at_flush = true;
            }
            Frames::OneUnfinished => self.held_at_flush = true,
        }
    }
}
