//! What the simulator keeps per viewer (X5): when it started watching, when it was
//! first served, and — in blocks mode — a 256-seq window of the blocks it received,
//! which both counts blocks once (continuity) and catches a block stored twice in
//! one watch session (an invariant). About 90 bytes a viewer.

/// Not set yet.
pub(crate) const NONE: u64 = u64::MAX;
/// Seqs tracked behind the highest one.
pub(crate) const WINDOW: u64 = 256;

/// Viewer groups taken at the first relay fault, by the viewer's relay then:
/// it had two or more connected parents and kept at least one;
pub(crate) const GROUP_REDUNDANT: u8 = 1;
/// it lost every connected parent (or crashed itself, or the viewer had no relay);
pub(crate) const GROUP_ORPHANED: u8 = 2;
/// it had one connected parent, which survived.
pub(crate) const GROUP_SINGLE: u8 = 3;

#[derive(Clone, Debug)]
pub(crate) struct ViewerStats {
    pub watch_at: u64,
    /// When it left, `NONE` while watching.
    pub end_at: u64,
    /// First block (blocks mode) or first served sample (rate mode).
    pub first_at: u64,
    /// Blocks mode: the first keyframe held (`NONE` before).
    pub playable_at: u64,
    pub first_seq: u64,
    /// When it last stored a block it had not had (blocks mode; "fed", see `starving`).
    pub last_new_at: u64,
    pub highest: u64,
    /// Bit `i` of the 256-bit window: seq `highest - i` was received.
    pub window: [u64; 4],
    /// Seqs at or below this were from before a re-watch (may come again).
    pub session_floor: u64,
    /// Blocks received within the playout deadline.
    pub on_time: u64,
    /// On-time blocks cut at or after the first relay fault.
    pub post_on_time: u64,
    pub recv_in_sample: u32,
    pub process: u16,
    pub group: u8,
    pub sessions: u16,
    /// Peers: turned away by the overlay at least once (C6).
    pub ejected: bool,
    /// Peers: a premium viewer (C3's `premium_first`).
    pub premium: bool,
    /// First seq of its current stretch as a member of the overlay (`NONE`: none
    /// yet, or out; see `members_ledger`).
    pub member_from: u64,
    /// Ejected and not admitted again (C6).
    pub out: bool,
    /// Blocks mode: block messages received and blocks stored (duplicates per level).
    pub block_msgs: u32,
    pub blocks_stored: u32,
    /// Rate mode, from `steady_from_s` on: seconds it was expected to play and
    /// the share of them it got (its own continuity; `restarts.rs`' worst viewer).
    pub steady_expected: f32,
    pub steady_delivered: f32,
}

/// Moves a 256-seq window `k` seqs up (bit `i` becomes bit `i + k`; the highest
/// seq's bit 0 is then free). Shared with the playout's on-time window (`playout.rs`).
pub(crate) fn shift_window(window: &mut [u64; 4], k: u64) {
    if k >= WINDOW {
        *window = [0; 4];
        return;
    }
    let (q, r) = ((k / 64) as usize, (k % 64) as u32);
    let old = *window;
    for w in (0..4).rev() {
        let hi = if w >= q { old[w - q] << r } else { 0 };
        let lo = if r > 0 && w > q {
            old[w - q - 1] >> (64 - r)
        } else {
            0
        };
        window[w] = hi | lo;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    New,
    /// Seen before in this watch session: a block counted twice.
    Duplicate,
    /// Received before a re-watch and sent again by the new relay: not counted.
    Resent,
    /// Older than the window: cannot be checked, not counted.
    TooOld,
}

impl ViewerStats {
    pub fn new(now: u64, process: u16) -> Self {
        ViewerStats {
            watch_at: now,
            end_at: NONE,
            first_at: NONE,
            playable_at: NONE,
            first_seq: NONE,
            last_new_at: NONE,
            highest: 0,
            window: [0; 4],
            session_floor: NONE,
            on_time: 0,
            post_on_time: 0,
            recv_in_sample: 0,
            process,
            group: 0,
            sessions: 0,
            ejected: false,
            premium: false,
            member_from: NONE,
            out: false,
            block_msgs: 0,
            blocks_stored: 0,
            steady_expected: 0.0,
            steady_delivered: 0.0,
        }
    }

    pub fn watching(&self) -> bool {
        self.end_at == NONE
    }

    fn bit(&self, i: u64) -> bool {
        self.window[(i / 64) as usize] >> (i % 64) & 1 == 1
    }

    fn set(&mut self, i: u64) {
        self.window[(i / 64) as usize] |= 1 << (i % 64);
    }

    fn shift(&mut self, k: u64) {
        shift_window(&mut self.window, k);
    }

    /// A new watch session began (the viewer was sent to a relay again).
    pub fn new_session(&mut self) {
        self.sessions = self.sessions.saturating_add(1);
        if self.sessions > 1 && self.first_seq != NONE {
            self.session_floor = self.highest;
        }
    }

    /// Records that block `seq` was stored.
    pub fn mark(&mut self, seq: u64) -> Mark {
        if self.first_seq == NONE {
            self.first_seq = seq;
            self.highest = seq;
            self.window = [1, 0, 0, 0];
            return Mark::New;
        }
        if seq > self.highest {
            self.shift(seq - self.highest);
            self.highest = seq;
            self.set(0);
            return Mark::New;
        }
        let d = self.highest - seq;
        if d >= WINDOW {
            return Mark::TooOld;
        }
        if self.bit(d) {
            if self.session_floor != NONE && seq <= self.session_floor {
                return Mark::Resent;
            }
            return Mark::Duplicate;
        }
        self.set(d);
        Mark::New
    }

    /// The received seqs above `s_end` (all of them when `None`) still in the window.
    pub fn seqs_above(&self, s_end: Option<u64>) -> impl Iterator<Item = u64> + '_ {
        let n = match (self.first_seq, s_end) {
            (NONE, _) => 0,
            (_, Some(e)) if self.highest <= e => 0,
            (_, Some(e)) => (self.highest - e).min(WINDOW),
            (_, None) => (self.highest - self.first_seq + 1).min(WINDOW),
        };
        (0..n).filter(|i| self.bit(*i)).map(|i| self.highest - i)
    }

    /// Received seqs above `s_end` (all still in the window when `highest - s_end < 256`).
    pub fn received_above(&self, s_end: u64) -> u64 {
        if self.first_seq == NONE || self.highest <= s_end {
            return 0;
        }
        let n = (self.highest - s_end).min(WINDOW);
        (0..n).filter(|i| self.bit(*i)).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_once_and_catches_duplicates() {
        let mut v = ViewerStats::new(0, 0);
        assert_eq!(v.mark(10), Mark::New);
        assert_eq!(v.mark(12), Mark::New);
        assert_eq!(v.mark(11), Mark::New);
        assert_eq!(v.mark(11), Mark::Duplicate);
        assert_eq!(v.mark(200), Mark::New);
        assert_eq!(v.mark(12), Mark::Duplicate, "still inside the window");
        assert_eq!(v.mark(300), Mark::New);
        assert_eq!(v.mark(12), Mark::TooOld);
        assert_eq!(v.received_above(150), 2);
        assert_eq!(v.received_above(250), 1);
        assert_eq!(v.received_above(300), 0);
    }

    #[test]
    fn shifting_across_words_keeps_bits() {
        let mut v = ViewerStats::new(0, 0);
        for s in [0u64, 1, 63, 64, 65, 127, 128] {
            v.mark(s);
        }
        v.mark(190);
        for s in [0u64, 1, 63, 64, 65, 127, 128, 190] {
            assert_eq!(v.mark(s), Mark::Duplicate, "{s}");
        }
        assert_eq!(v.mark(2), Mark::New);
        assert_eq!(v.received_above(0), 8);
    }

    #[test]
    fn blocks_sent_again_after_a_rewatch_are_not_duplicates() {
        let mut v = ViewerStats::new(0, 0);
        v.new_session();
        for s in 0..10 {
            v.mark(s);
        }
        v.new_session();
        assert_eq!(v.mark(8), Mark::Resent);
        assert_eq!(v.mark(10), Mark::New);
        assert_eq!(v.mark(10), Mark::Duplicate);
    }
}
