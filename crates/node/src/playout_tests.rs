//! Tests of the playout stage ([`super`]): in order, a gap given up the delay
//! after the missing block was due, play resumed at a keyframe, the bounds, and
//! end-to-end lag.

use super::*;
use bytes::Bytes;
use proptest::prelude::*;

/// What the tokio driver plays (`tiercast_net::http::LiveBlock`'s fields).
#[derive(Clone, Debug)]
struct LiveBlock {
    seq: u64,
    keyframe: bool,
    origin_time_us: u64,
    #[allow(dead_code)]
    payload: Bytes,
}

impl PlayoutBlock for LiveBlock {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn keyframe(&self) -> bool {
        self.keyframe
    }
    fn origin_time_us(&self) -> u64 {
        self.origin_time_us
    }
}

/// The origin cuts a block every 100 ms: seq `s` at `s` × 100 ms.
const PACE_MS: u64 = 100;

fn blk(seq: u64, keyframe: bool) -> LiveBlock {
    LiveBlock {
        seq,
        keyframe,
        origin_time_us: seq * PACE_MS * 1000,
        payload: Bytes::from(vec![seq as u8; 4]),
    }
}

/// A keyframe every `gop` seqs (seq 0 is one).
fn gop_blk(seq: u64, gop: u64) -> LiveBlock {
    blk(seq, seq.is_multiple_of(gop))
}

/// When block `seq` arrives over a path of `path_ms`.
fn arrives(seq: u64, path_ms: u64) -> Timestamp {
    ms(seq * PACE_MS + path_ms)
}

fn drain(p: &mut Playout<LiveBlock>) -> Vec<u64> {
    std::iter::from_fn(|| p.poll_output())
        .map(|b| b.seq)
        .collect()
}

fn ms(t: u64) -> Timestamp {
    Timestamp::from_millis(t)
}

fn playout(delay_ms: u64) -> Playout<LiveBlock> {
    Playout::new(PlayoutConfig {
        delay_ms,
        ..PlayoutConfig::default()
    })
}

#[test]
fn out_of_order_in_is_in_order_out() {
    let mut p = playout(1500);
    // Four substreams from four parents: each parent's blocks in order, the
    // parents interleaved badly.
    let order = [0, 2, 1, 3, 6, 5, 4, 7, 9, 11, 8, 10];
    let mut played = Vec::new();
    for (i, s) in order.iter().enumerate() {
        p.push(ms(i as u64 * 10), gop_blk(*s, 8));
        played.extend(drain(&mut p));
    }
    assert_eq!(played, (0..12).collect::<Vec<_>>());
    let st = p.stats();
    assert_eq!((st.played, st.skipped(), st.gaps), (12, 0, 0));
    assert!(st.reordered > 0);
    assert_eq!(p.poll_timeout(), None);
    assert_eq!(st.on_time_ratio(), 1.0);
}

#[test]
fn a_gap_that_fills_within_the_delay_loses_nothing() {
    let mut p = playout(1500);
    p.push(arrives(0, 50), gop_blk(0, 8));
    p.push(arrives(2, 50), gop_blk(2, 8));
    p.push(arrives(3, 50), gop_blk(3, 8));
    assert_eq!(drain(&mut p), vec![0]);
    // Seq 1 was due at 100 + 50 ms: given up 1.5 s later.
    assert_eq!(p.poll_timeout(), Some(ms(1650)));
    p.handle_timeout(ms(1600));
    assert!(drain(&mut p).is_empty());
    p.push(ms(1640), gop_blk(1, 8));
    assert_eq!(drain(&mut p), vec![1, 2, 3]);
    let st = p.stats();
    assert_eq!(st.skipped(), 0);
    // Lags: 50 ms, then 1.54 s for the repair and the blocks held behind it.
    assert_eq!(st.lag.count(), 4);
    assert_eq!(st.lag.max_ms(), Some(1540));
    // (A quantile is the top of its bucket: 50 ms shares one with 51.)
    assert_eq!(st.lag.quantile_ms(0.25), Some(51));
}

#[test]
fn a_gap_is_skipped_after_the_delay_and_play_resumes_at_a_keyframe() {
    let mut p = playout(1500);
    for s in 0..5 {
        p.push(arrives(s, 50), gop_blk(s, 8));
    }
    assert_eq!(drain(&mut p), vec![0, 1, 2, 3, 4]);
    // Seq 5 never comes; 6..=9 do (8 is a keyframe).
    for s in 6..10 {
        p.push(arrives(s, 50), gop_blk(s, 8));
    }
    assert!(drain(&mut p).is_empty(), "held back by the gap");
    let due = p.poll_timeout().expect("a gap waits");
    // Seq 5 was cut at 500 ms (between 4's 400 and 6's 600) and due 50 ms
    // later; counted from 6's arrival (the old rule) it would be 2150.
    assert_eq!(due, ms(500 + 50 + 1500));
    p.handle_timeout(ms(2049));
    assert!(drain(&mut p).is_empty(), "not yet");
    p.handle_timeout(due);
    // 5 given up, 6 and 7 dropped (no keyframe to decode them from), 8 on.
    assert_eq!(drain(&mut p), vec![8, 9]);
    let st = p.stats();
    assert_eq!((st.skipped_missing, st.skipped_resync, st.gaps), (1, 2, 1));
    // The late block is dropped, not played out of order.
    p.push(ms(2100), gop_blk(5, 8));
    p.push(ms(2100), gop_blk(10, 8));
    assert_eq!(drain(&mut p), vec![10]);
    assert_eq!(p.stats().late, 1);
    assert_eq!(p.stats().played, 8);
}

#[test]
fn after_an_outage_the_gap_is_given_up_as_soon_as_blocks_come_back() {
    let mut p = playout(1000);
    for s in 0..5 {
        p.push(arrives(s, 50), gop_blk(s, 8));
    }
    assert_eq!(drain(&mut p), vec![0, 1, 2, 3, 4]);
    // The parents die: 5..=27 never come. A new parent pushes from 28 on,
    // live; seq 5 was due at 550 ms, its delay ran out at 1.55 s.
    p.push(arrives(28, 50), gop_blk(28, 8));
    assert_eq!(p.poll_timeout(), None, "given up at once");
    for s in 29..32 {
        p.push(arrives(s, 50), gop_blk(s, 8));
        assert!(drain(&mut p).is_empty(), "{s}: no keyframe yet");
    }
    // The next keyframe plays as it arrives, 50 ms behind the origin. (The
    // old rule held it until 28's arrival + 1 s = 3.85 s, 650 ms late, and
    // that wait after every outage is what pushed a peer's lag up.)
    p.push(arrives(32, 50), gop_blk(32, 8));
    assert_eq!(drain(&mut p), vec![32]);
    for s in 33..40 {
        p.push(arrives(s, 50), gop_blk(s, 8));
    }
    assert_eq!(drain(&mut p), (33..40).collect::<Vec<_>>());
    let st = p.stats();
    assert_eq!((st.skipped_missing, st.skipped_resync, st.gaps), (23, 4, 1));
    assert_eq!(st.lag.max_ms(), Some(50), "every block played 50 ms behind");
}

#[test]
fn the_fastest_path_is_a_minimum_over_the_last_window_or_two() {
    let mut p = playout(1000);
    // 30 s over a 50 ms path, then 30 s over 500 ms (the fast parent is
    // gone, or the origin's clock stepped back 450 ms).
    for s in 0..300 {
        p.push(arrives(s, 50), gop_blk(s, 10));
    }
    for s in 300..600 {
        p.push(arrives(s, 500), gop_blk(s, 10));
    }
    assert_eq!(drain(&mut p).len(), 600);
    // Seq 600 is missing, 601 comes: 600 was due at 60 s + 500 ms.
    p.push(arrives(601, 500), gop_blk(601, 10));
    assert_eq!(p.poll_timeout(), Some(ms(60_000 + 500 + 1000)));
    // Within the window the fastest path counts: a 500 ms sample does not
    // move a 50 ms minimum.
    let mut q = playout(1000);
    for s in 0..50 {
        q.push(arrives(s, 50), gop_blk(s, 10));
    }
    for s in 50..60 {
        q.push(arrives(s, 500), gop_blk(s, 10));
    }
    q.push(arrives(61, 500), gop_blk(61, 10));
    assert_eq!(q.poll_timeout(), Some(ms(6_000 + 50 + 1000)));
}

#[test]
fn lag_is_measured_on_the_origin_clock() {
    // The stage's clock started 1000 s after the origin's epoch; every
    // block arrives 80 ms after it was cut.
    let offset: i64 = 1_000_000_000;
    let mut p = Playout::with_origin_clock(PlayoutConfig::default(), offset);
    for s in 0..10 {
        let mut b = gop_blk(s, 5);
        b.origin_time_us += offset as u64;
        p.push(arrives(s, 80), b);
    }
    assert_eq!(drain(&mut p).len(), 10);
    let lag = &p.stats().lag;
    assert_eq!(
        (lag.count(), lag.max_ms(), lag.quantile_ms(0.5)),
        (10, Some(80), Some(80))
    );
}

#[test]
fn after_a_gap_without_a_keyframe_waiting_blocks_are_dropped_until_one_comes() {
    let mut p = playout(100);
    p.push(arrives(0, 50), gop_blk(0, 8));
    // Seq 1 was due at 150 ms: at 250 its delay ran out as 2 arrives.
    p.push(arrives(2, 50), gop_blk(2, 8));
    p.push(arrives(3, 50), gop_blk(3, 8));
    assert_eq!(drain(&mut p), vec![0]);
    for s in 4..8 {
        p.push(arrives(s, 50), gop_blk(s, 8));
    }
    assert!(drain(&mut p).is_empty());
    p.push(arrives(8, 50), gop_blk(8, 8));
    assert_eq!(drain(&mut p), vec![8]);
    let st = p.stats();
    assert_eq!((st.skipped_missing, st.skipped_resync), (1, 6));
}

#[test]
fn playback_starts_at_a_keyframe() {
    let mut p = playout(1500);
    p.push(ms(0), gop_blk(5, 8));
    p.push(ms(0), gop_blk(6, 8));
    assert!(drain(&mut p).is_empty());
    assert_eq!(p.poll_timeout(), None);
    p.push(ms(0), gop_blk(8, 8));
    p.push(ms(0), gop_blk(7, 8));
    p.push(ms(0), gop_blk(9, 8));
    assert_eq!(drain(&mut p), vec![8, 9]);
    let st = p.stats();
    assert_eq!(st.first_seq, Some(8));
    assert_eq!(st.skipped(), 0, "nothing was due before the start");
    assert_eq!(st.late, 1);
}

#[test]
fn too_many_waiting_blocks_give_the_gap_up_at_once() {
    let mut p = Playout::new(PlayoutConfig {
        delay_ms: 60_000,
        max_pending_blocks: 16,
        history_blocks: 8,
    });
    p.push(ms(0), gop_blk(0, 4));
    for s in 2..200 {
        p.push(ms(1), gop_blk(s, 4));
        assert!(p.pending_len() <= 16);
    }
    let played = drain(&mut p);
    assert_eq!(played.first(), Some(&0));
    assert_eq!(played.get(1), Some(&4), "resynced at the next keyframe");
    assert_eq!(*played.last().unwrap(), 199);
    let st = p.stats();
    assert_eq!(
        (st.overflows, st.skipped_missing, st.skipped_resync),
        (1, 1, 2)
    );
    assert!(p.backlog().len() <= 8);
    assert!(p.backlog()[0].keyframe);
}

#[test]
fn the_backlog_is_the_current_gop_and_stays_bounded() {
    let mut p = Playout::new(PlayoutConfig {
        history_blocks: 4,
        ..PlayoutConfig::default()
    });
    for s in 0..11 {
        p.push(ms(s), gop_blk(s, 8));
    }
    let b: Vec<u64> = p.backlog().iter().map(|b| b.seq).collect();
    assert_eq!(b, vec![8, 9, 10]);
    p.push(ms(20), gop_blk(11, 8));
    p.push(ms(20), gop_blk(12, 8));
    assert!(
        p.backlog().is_empty(),
        "a GOP longer than the history is not kept"
    );
    p.push(ms(20), gop_blk(13, 8));
    assert!(p.backlog().is_empty());
    p.push(ms(20), gop_blk(16, 8));
    p.push(ms(20), gop_blk(14, 8));
    p.push(ms(20), gop_blk(15, 8));
    assert_eq!(p.backlog()[0].seq, 16);
}

#[test]
fn a_far_jump_restarts_playback_without_counting_a_gap() {
    let mut p = playout(1500);
    p.push(ms(0), gop_blk(0, 8));
    p.push(ms(0), gop_blk(1, 8));
    p.push(ms(0), gop_blk(10_000_000, 8));
    p.push(ms(0), gop_blk(10_000_001, 8));
    assert_eq!(drain(&mut p), vec![0, 1, 10_000_000, 10_000_001]);
    let st = p.stats();
    assert_eq!((st.discontinuities, st.skipped()), (1, 0));
}

proptest! {
    /// Whatever the arrival order and losses: output strictly increasing, every
    /// run after a gap starts at a keyframe, every seq from the start on is
    /// played or counted as skipped, memory stays bounded, a gap is never held
    /// past the delay after the first block behind it arrived, and every block
    /// played is in the lag histogram.
    #[test]
    fn output_is_ordered_decodable_and_accounted(
        lost in proptest::collection::btree_set(1u64..300, 0..20),
        jitter in proptest::collection::vec(0u64..2000, 300),
    ) {
        let cfg = PlayoutConfig { delay_ms: 500, max_pending_blocks: 64, history_blocks: 32 };
        let mut p = Playout::new(cfg);
        // Block s is cut at 40 ms · s and arrives after a jitter of up to 2 s.
        let block = |s: u64| LiveBlock {
            seq: s,
            keyframe: s.is_multiple_of(10),
            origin_time_us: s * 40_000,
            payload: Bytes::new(),
        };
        let mut arrivals: Vec<(u64, u64)> = (0..300u64)
            .filter(|s| !lost.contains(s))
            .map(|s| (s * 40 + jitter[s as usize], s))
            .collect();
        arrivals.sort();
        let mut out = Vec::new();
        for (t, s) in arrivals {
            while let Some(due) = p.poll_timeout().filter(|d| *d <= ms(t)) {
                p.handle_timeout(due);
            }
            p.push(ms(t), block(s));
            if let Some(due) = p.poll_timeout() {
                let oldest = p.pending.values().map(|(a, _)| *a).min().unwrap();
                prop_assert!(due <= oldest.plus_millis(500));
            }
            prop_assert!(p.pending_len() <= 65);
            prop_assert!(p.backlog().len() <= 32);
            out.extend(std::iter::from_fn(|| p.poll_output()));
        }
        let mut t = 20_000;
        while p.poll_timeout().is_some() {
            t += 1000;
            p.handle_timeout(ms(t));
        }
        out.extend(std::iter::from_fn(|| p.poll_output()));
        for w in out.windows(2) {
            prop_assert!(w[0].seq < w[1].seq);
            if w[1].seq != w[0].seq + 1 {
                prop_assert!(w[1].keyframe, "a jump lands on a keyframe");
            }
        }
        let st = p.stats();
        prop_assert_eq!(st.played, out.len() as u64);
        prop_assert_eq!(st.lag.count(), st.played);
        if let (Some(first), Some(next)) = (st.first_seq, p.next_seq()) {
            prop_assert!(out[0].keyframe);
            prop_assert_eq!(out[0].seq, first);
            prop_assert_eq!(st.played + st.skipped(), next - first);
        }
    }
}
