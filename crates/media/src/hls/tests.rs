//! Tests of the HLS segmenter, playlist and reload decisions (X2).

use bytes::Bytes;

use super::*;

const BLOCK_US: u64 = 100_000;
const T0: u64 = 1_796_679_766_000_000;

/// A block's payload: its keyframe flag, then its seq (9 bytes).
fn payload(seq: u64, keyframe: bool) -> Bytes {
    let mut v = vec![u8::from(keyframe)];
    v.extend_from_slice(&seq.to_be_bytes());
    Bytes::from(v)
}

/// Blocks `from..to`, one per 100 ms, a keyframe every `gop` blocks.
fn feed(seg: &mut Segmenter, from: u64, to: u64, gop: u64) {
    for seq in from..to {
        let kf = seq % gop == 0;
        seg.push(seq, T0 + seq * BLOCK_US, kf, payload(seq, kf));
    }
}

fn starts_with_keyframe(bytes: &[u8]) -> bool {
    bytes.first() == Some(&1)
}

#[test]
fn segments_start_at_keyframes_and_reach_the_target() {
    let mut seg = Segmenter::new(HlsConfig::default());
    feed(&mut seg, 3, 100, 10); // starts mid-GOP: blocks 3..9 are dropped
    assert_eq!(seg.stats().dropped_blocks, 7);
    let segments = seg.segments();
    assert_eq!(segments.len(), 4, "2 s segments of 1 s GOPs over ~9 s");
    for s in segments {
        assert!(starts_with_keyframe(&s.bytes), "segment {}", s.msn);
        assert_eq!(s.duration_us, 2_000_000);
        assert_eq!(s.bytes.len(), 20 * 9);
        let joined: Vec<u8> = s.parts.iter().flat_map(|p| p.bytes.to_vec()).collect();
        assert_eq!(joined, s.bytes.to_vec(), "parts make up the segment");
        let total: u64 = s.parts.iter().map(|p| p.duration_us).sum();
        assert_eq!(total, s.duration_us);
        for p in &s.parts {
            assert!(p.duration_us <= 500_000, "part of {} µs", p.duration_us);
            assert_eq!(p.independent, starts_with_keyframe(&p.bytes));
        }
        assert!(s.parts[0].independent);
    }
    assert_eq!(seg.target_duration_s(), 2);
    assert_eq!(seg.stats().longest_part_us, 500_000);
}

#[test]
fn a_keyframe_a_little_early_still_closes_the_segment() {
    let mut seg = Segmenter::new(HlsConfig::default());
    // Keyframes at 0, 0.95 s and 1.9 s (jitter): the segment closes at 1.9 s.
    for seq in 0..40u64 {
        let kf = seq % 10 == 0;
        let time = T0 + seq * 95_000;
        seg.push(seq, time, kf, payload(seq, kf));
    }
    let first = seg.segments().front().expect("one segment");
    assert_eq!(first.duration_us, 1_900_000);
    assert_eq!(seg.target_duration_s(), 2);
}

#[test]
fn durations_are_the_medias_not_the_ingests_jitter() {
    use crate::{BlockCutter, CutterConfig, TestSource};
    let mut source = TestSource::new(800, 1_000);
    let mut cutter = BlockCutter::new(CutterConfig::default());
    let mut seg = Segmenter::new(HlsConfig::default());
    let mut seq = 0;
    for step in 1..=150u64 {
        cutter.push(&source.generate(step * 100_000)).unwrap();
        while let Some(block) = cutter.poll_block() {
            // Up to 90 ms of arrival jitter on the cut times.
            let cut = T0 + step * 100_000 + (seq * 37 % 10) * 9_000;
            seg.push(seq, cut, block.keyframe, block.payload);
            seq += 1;
        }
    }
    assert!(seg.segments().len() >= 5);
    for s in seg.segments() {
        assert_eq!(s.duration_us, 2_000_000, "segment {}", s.msn);
        assert_eq!(
            s.parts.iter().map(|p| p.duration_us).sum::<u64>(),
            2_000_000
        );
        assert!(s.parts.iter().all(|p| p.duration_us <= 500_000));
    }
    assert_eq!(seg.target_duration_s(), 2);
}

#[test]
fn a_long_gop_makes_longer_segments_and_a_larger_target() {
    let mut seg = Segmenter::new(HlsConfig::default());
    feed(&mut seg, 0, 200, 35); // 3.5 s GOP
    for s in seg.segments() {
        assert_eq!(s.duration_us, 3_500_000);
        assert!(starts_with_keyframe(&s.bytes));
    }
    assert_eq!(seg.target_duration_s(), 4);
    let text = render_playlist(&seg);
    assert!(text.contains("#EXT-X-TARGETDURATION:4\n"), "{text}");
    assert!(text.contains("#EXTINF:3.500,\n"), "{text}");
}

#[test]
fn the_window_keeps_six_segments_and_the_sequence_moves_on() {
    let mut seg = Segmenter::new(HlsConfig::default());
    feed(&mut seg, 0, 201, 10);
    assert_eq!(seg.stats().segments, 10);
    assert_eq!(seg.segments().len(), 6);
    assert_eq!(seg.media_sequence(), 4);
    assert_eq!(seg.last_complete_msn(), Some(9));
    assert_eq!(seg.window_bytes(), 6 * 20 * 9);
    let msns: Vec<u64> = seg.segments().iter().map(|s| s.msn).collect();
    assert_eq!(msns, vec![4, 5, 6, 7, 8, 9]);
    assert!(render_playlist(&seg).contains("#EXT-X-MEDIA-SEQUENCE:4\n"));
}

#[test]
fn the_window_is_bounded_in_bytes() {
    let config = HlsConfig {
        max_window_bytes: 3 * 20 * 9,
        max_segment_bytes: 100 * 9,
        ..HlsConfig::default()
    };
    let mut seg = Segmenter::new(config);
    feed(&mut seg, 0, 201, 10);
    assert_eq!(seg.segments().len(), 3);
    assert!(seg.window_bytes() <= 3 * 20 * 9);
}

#[test]
fn a_gap_closes_the_segment_and_the_next_one_is_a_discontinuity() {
    let mut seg = Segmenter::new(HlsConfig::default());
    feed(&mut seg, 0, 45, 10);
    // Blocks 45..53 lost (a lag skip): 53..59 are dropped until keyframe 60.
    feed(&mut seg, 53, 100, 10);
    assert_eq!(seg.stats().discontinuities, 1);
    assert_eq!(seg.stats().dropped_blocks, 7);
    let segments: Vec<_> = seg.segments().iter().collect();
    let cut = segments.iter().position(|s| s.discontinuity).expect("one");
    assert!(starts_with_keyframe(&segments[cut].bytes));
    assert_eq!(&segments[cut].bytes[1..9], &60u64.to_be_bytes());
    // The segment before the gap ends with its last block (40..44).
    assert_eq!(segments[cut - 1].bytes.len(), 5 * 9);
    assert_eq!(segments[cut - 1].duration_us, 500_000);
    for s in &segments {
        assert!(starts_with_keyframe(&s.bytes));
    }
    let text = render_playlist(&seg);
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    // Once the discontinuity leaves the window, the sequence counts it.
    feed(&mut seg, 100, 300, 10);
    assert_eq!(seg.discontinuity_sequence(), 1);
    assert!(render_playlist(&seg).contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
}

#[test]
fn an_origin_restart_is_a_discontinuity_and_msn_keeps_rising() {
    let mut seg = Segmenter::new(HlsConfig::default());
    feed(&mut seg, 0, 50, 10);
    let before = seg.last_complete_msn().unwrap();
    for seq in 0..50u64 {
        let kf = seq % 10 == 0;
        seg.push(seq, T0 + 10_000_000 + seq * BLOCK_US, kf, payload(seq, kf));
    }
    assert_eq!(seg.stats().discontinuities, 1);
    let after: Vec<_> = seg
        .segments()
        .iter()
        .filter(|s| s.msn > before + 1)
        .collect();
    assert!(after[0].discontinuity);
    assert!(after.windows(2).all(|w| w[1].msn == w[0].msn + 1));
}

#[test]
fn a_segment_without_a_keyframe_for_too_long_is_dropped() {
    let config = HlsConfig {
        max_segment_bytes: 50 * 9,
        ..HlsConfig::default()
    };
    let mut seg = Segmenter::new(config);
    feed(&mut seg, 0, 100, 100); // one keyframe, then 99 blocks without
    assert_eq!(seg.stats().oversized_segments, 1);
    assert!(seg.segments().is_empty());
    feed(&mut seg, 100, 140, 10);
    let first = seg
        .segments()
        .front()
        .expect("a segment after the keyframe");
    assert!(first.discontinuity && starts_with_keyframe(&first.bytes));
}

#[test]
fn the_playlist_carries_the_ll_hls_tags() {
    let mut seg = Segmenter::new(HlsConfig::default());
    feed(&mut seg, 0, 72, 10);
    let text = render_playlist(&seg);
    for tag in [
        "#EXTM3U\n",
        "#EXT-X-VERSION:9\n",
        "#EXT-X-TARGETDURATION:2\n",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n",
        "#EXT-X-PART-INF:PART-TARGET=0.500\n",
        "#EXT-X-MEDIA-SEQUENCE:0\n",
        "#EXT-X-PROGRAM-DATE-TIME:2026-12-07T21:42:46.000Z\n",
        "#EXTINF:2.000,\n0.ts\n",
        "#EXT-X-PART:DURATION=0.500,URI=\"2.0.ts\",INDEPENDENT=YES\n",
        "#EXT-X-PART:DURATION=0.500,URI=\"3.1.ts\"\n",
    ] {
        assert!(text.contains(tag), "{tag:?} in:\n{text}");
    }
    // Segment 3: parts 60-64 and 65-69 closed, 70-71 being filled.
    assert!(
        text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"3.2.ts\"\n"),
        "{text}"
    );
    // Parts of segment 0 are no longer listed (only the last two complete ones).
    assert!(!text.contains("URI=\"0.0.ts\""));
}

#[test]
fn blocking_reload_decisions() {
    let mut seg = Segmenter::new(HlsConfig::default());
    assert_eq!(playlist_readiness(&seg, None, None), Readiness::Wait);
    feed(&mut seg, 0, 72, 10); // segments 0..=2 complete, 3 open with parts 0 and 1 closed
    assert_eq!(playlist_readiness(&seg, None, None), Readiness::Ready);
    assert_eq!(playlist_readiness(&seg, Some(2), None), Readiness::Ready);
    assert_eq!(playlist_readiness(&seg, Some(3), None), Readiness::Wait);
    assert_eq!(playlist_readiness(&seg, Some(3), Some(1)), Readiness::Ready);
    assert_eq!(playlist_readiness(&seg, Some(3), Some(2)), Readiness::Wait);
    assert_eq!(playlist_readiness(&seg, Some(4), Some(0)), Readiness::Wait);
    assert!(matches!(
        playlist_readiness(&seg, Some(5), None),
        Readiness::Refuse(_)
    ));
    assert!(matches!(
        playlist_readiness(&seg, None, Some(1)),
        Readiness::Refuse(_)
    ));
    let before = seg.version();
    feed(&mut seg, 72, 76, 10); // part 3.2 (blocks 70..74) closes at block 75
    assert!(seg.version() > before);
    assert_eq!(playlist_readiness(&seg, Some(3), Some(2)), Readiness::Ready);
}

#[test]
fn media_lookup() {
    let mut seg = Segmenter::new(HlsConfig::default());
    feed(&mut seg, 0, 72, 10);
    match lookup_media(&seg, 1, None) {
        MediaAnswer::Found(b) => assert_eq!(b.len(), 20 * 9),
        other => panic!("{other:?}"),
    }
    match lookup_media(&seg, 3, Some(1)) {
        MediaAnswer::Found(b) => assert_eq!(&b[1..9], &65u64.to_be_bytes()),
        other => panic!("{other:?}"),
    }
    assert_eq!(lookup_media(&seg, 3, Some(2)), MediaAnswer::Wait);
    assert_eq!(lookup_media(&seg, 3, None), MediaAnswer::Wait);
    assert!(matches!(
        lookup_media(&seg, 3, Some(3)),
        MediaAnswer::NotHere(_)
    ));
    assert!(matches!(
        lookup_media(&seg, 9, None),
        MediaAnswer::NotHere(_)
    ));
    assert!(matches!(
        lookup_media(&seg, 1, Some(7)),
        MediaAnswer::NotHere(_)
    ));
    feed(&mut seg, 72, 300, 10);
    assert!(matches!(
        lookup_media(&seg, 1, None),
        MediaAnswer::NotHere(_)
    ));
}

#[test]
fn reset_forgets_the_window_but_not_the_sequence() {
    let mut seg = Segmenter::new(HlsConfig::default());
    feed(&mut seg, 0, 72, 10);
    seg.reset();
    assert!(seg.segments().is_empty());
    assert_eq!(playlist_readiness(&seg, None, None), Readiness::Wait);
    feed(&mut seg, 500, 531, 10);
    let first = seg.segments().front().unwrap();
    assert_eq!(first.msn, 4);
    assert!(first.discontinuity);
}

#[test]
fn config_defaults_are_valid() {
    assert_eq!(HlsConfig::default().validate(), Ok(()));
    let bad = HlsConfig {
        part_target_ms: 0,
        ..HlsConfig::default()
    };
    assert!(bad.validate().is_err());
}
