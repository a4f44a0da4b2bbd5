//! Unit tests of the block cutter (X1, X2), and stream builders shared with
//! the property tests in `props`.

use super::*;
use crate::psi::{write_pat_packet, write_pmt_packet};
use crate::TestSource;

pub(super) const VIDEO: u16 = 0x100;
pub(super) const AUDIO: u16 = 0x101;
pub(super) const PMT: u16 = 0x1000;
pub(super) type Packet = [u8; PACKET_SIZE];

pub(super) fn pat() -> Packet {
    write_pat_packet(1, 1, PMT, 0)
}

pub(super) fn pmt() -> Packet {
    write_pmt_packet(PMT, 1, VIDEO, &[(0x1B, VIDEO), (0x0F, AUDIO)], 0)
}

/// An elementary stream packet; `rai` adds a 1-byte adaptation field.
pub(super) fn es(pid: u16, rai: bool, tag: u8) -> Packet {
    let mut p = [tag; PACKET_SIZE];
    p[0] = SYNC_BYTE;
    p[1] = 0x40 | (pid >> 8) as u8;
    p[2] = pid as u8;
    if rai {
        p[3] = 0x30;
        p[4] = 1;
        p[5] = 0x40;
    } else {
        p[3] = 0x10;
    }
    p
}

pub(super) fn join(packets: &[Packet]) -> Vec<u8> {
    packets.concat()
}

fn drain(cutter: &mut BlockCutter, out: &mut Vec<CutBlock>) {
    while let Some(block) = cutter.poll_block() {
        out.push(block);
    }
}

/// Pushes `chunks`, finishes, returns every block.
pub(super) fn cut_chunks(
    cfg: CutterConfig,
    chunks: &[&[u8]],
) -> (Result<(), IngestError>, Vec<CutBlock>, CutterStats) {
    let mut cutter = BlockCutter::new(cfg);
    let mut blocks = Vec::new();
    for chunk in chunks {
        if let Err(e) = cutter.push(chunk) {
            return (Err(e), blocks, cutter.stats());
        }
        drain(&mut cutter, &mut blocks);
    }
    let result = cutter.finish();
    drain(&mut cutter, &mut blocks);
    (result, blocks, cutter.stats())
}

fn cut(data: &[u8]) -> (Vec<CutBlock>, CutterStats) {
    let (result, blocks, stats) = cut_chunks(CutterConfig::default(), &[data]);
    result.expect("input is TS");
    (blocks, stats)
}

pub(super) fn pids(block: &CutBlock) -> Vec<u16> {
    block.payload.chunks(PACKET_SIZE).map(pid_of).collect()
}

/// Checks the blocks against the packets of `input` (garbage removed):
/// whole packets, identical except inserted PAT/PMT copies, whose number is returned.
pub(super) fn check_against_input(blocks: &[CutBlock], input_packets: &[&[u8]]) -> u64 {
    let mut input = input_packets.iter();
    let mut next = input.next();
    let mut copies = 0;
    for block in blocks {
        assert_eq!(block.payload.len() % PACKET_SIZE, 0);
        assert!(!block.payload.is_empty());
        if block.keyframe {
            assert_eq!(
                pid_of(&block.payload),
                PID_PAT,
                "keyframe blocks start with PAT"
            );
        }
        for packet in block.payload.chunks(PACKET_SIZE) {
            assert_eq!(packet[0], SYNC_BYTE);
            if Some(&packet) == next {
                next = input.next();
            } else {
                assert!(
                    matches!(pid_of(packet), PID_PAT | PMT),
                    "only PSI is inserted"
                );
                copies += 1;
            }
        }
    }
    assert_eq!(next, None, "every input packet is in a block");
    copies
}

#[test]
fn test_source_blocks_start_at_pat_and_mark_keyframes() {
    let data = TestSource::new(500, 1000).generate(3_000_000);
    let (blocks, stats) = cut(&data);
    let packets: Vec<&[u8]> = data.chunks(PACKET_SIZE).collect();
    assert_eq!(check_against_input(&blocks, &packets), 0);
    assert_eq!(blocks.iter().filter(|b| b.keyframe).count(), 3);
    assert!(blocks[0].keyframe);
    for block in &blocks {
        assert_eq!(pids(block)[..2], [PID_PAT, 0x1000]);
    }
    assert_eq!(stats.keyframes, 3);
    assert_eq!(stats.blocks, blocks.len() as u64);
    assert_eq!(stats.packets, packets.len() as u64);
    assert_eq!((stats.resyncs, stats.psi_copies), (0, 0));
}

#[test]
fn mid_block_keyframe_starts_a_block_with_psi_copies() {
    let input = [
        pat(),
        pmt(),
        es(VIDEO, true, 1),
        es(VIDEO, false, 2),
        es(AUDIO, false, 3),
        es(VIDEO, true, 4),
        es(VIDEO, false, 5),
    ];
    let (blocks, stats) = cut(&join(&input));
    assert_eq!(blocks.len(), 2);
    assert!(blocks[0].keyframe && blocks[1].keyframe);
    assert_eq!(pids(&blocks[1]), vec![PID_PAT, PMT, VIDEO, VIDEO]);
    assert_eq!(
        blocks[1].payload[..2 * PACKET_SIZE],
        join(&[pat(), pmt()])[..]
    );
    assert_eq!(stats.psi_copies, 2);
    let packets: Vec<&[u8]> = input.iter().map(|p| p.as_slice()).collect();
    assert_eq!(check_against_input(&blocks, &packets), 2);
}

#[test]
fn video_before_random_access_makes_a_plain_block() {
    let input = [
        pat(),
        pmt(),
        es(AUDIO, true, 1),
        es(VIDEO, false, 2),
        es(VIDEO, true, 3),
    ];
    let (blocks, _) = cut(&join(&input));
    assert_eq!(blocks.len(), 2);
    assert!(!blocks[0].keyframe, "video payload without RAI came first");
    assert!(blocks[1].keyframe);
    assert_eq!(pids(&blocks[1]), vec![PID_PAT, PMT, VIDEO]);
}

#[test]
fn without_pmt_any_random_access_counts() {
    let input = [
        es(AUDIO, false, 1),
        es(AUDIO, false, 1),
        pat(),
        es(AUDIO, true, 2),
        es(VIDEO, false, 3),
    ];
    let (blocks, stats) = cut(&join(&input));
    assert_eq!(blocks.len(), 2);
    assert!(!blocks[0].keyframe);
    assert!(blocks[1].keyframe);
    assert_eq!(stats.psi_copies, 0);
}

#[test]
fn long_runs_are_split_at_max_block_bytes() {
    let cfg = CutterConfig {
        max_block_bytes: 10 * PACKET_SIZE + 50,
        ..CutterConfig::default()
    };
    // One frame of 23 packets: larger than a block, it is split.
    let mut input = vec![pat(), pmt(), es(VIDEO, true, 1)];
    input.extend((0..22).map(cont));
    let (result, blocks, _) = cut_chunks(cfg, &[&join(&input)]);
    result.unwrap();
    let sizes: Vec<usize> = blocks
        .iter()
        .map(|b| b.payload.len() / PACKET_SIZE)
        .collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    assert_eq!(
        blocks.iter().map(|b| b.keyframe).collect::<Vec<_>>(),
        vec![true, false, false]
    );
    // Frames of one packet each: a full block is cut before its last frame,
    // which may be unfinished (it opens the next block).
    let mut input = vec![pat(), pmt(), es(VIDEO, true, 1)];
    input.extend((0..22).map(|i| es(VIDEO, false, i)));
    let (result, blocks, _) = cut_chunks(cfg, &[&join(&input)]);
    result.unwrap();
    let sizes: Vec<usize> = blocks
        .iter()
        .map(|b| b.payload.len() / PACKET_SIZE)
        .collect();
    assert_eq!(sizes, vec![9, 9, 7]);
}

#[test]
fn a_full_block_is_cut_before_its_unfinished_frame() {
    // The e2e case: a keyframe block of 16 KiB filled by a keyframe, a frame,
    // and the start of a third; the third goes whole to the next block.
    let cfg = CutterConfig {
        max_block_bytes: 8 * PACKET_SIZE,
        ..CutterConfig::default()
    };
    let input = [
        pat(),
        pmt(),
        es(VIDEO, true, 1),
        cont(2),
        es(VIDEO, false, 3),
        cont(4),
        es(VIDEO, false, 5),
        cont(6),
        cont(7),
        pat(),
    ];
    let mut cutter = BlockCutter::new(cfg);
    cutter.push(&join(&input)).unwrap();
    let first = cutter.poll_block().expect("the keyframe block");
    assert_eq!(first.payload.as_ref(), join(&input[..6]).as_slice());
    assert!(first.keyframe);
    let second = cutter.poll_block().expect("the third frame, whole");
    assert_eq!(second.payload.as_ref(), join(&input[6..9]).as_slice());
    assert!(cutter.poll_block().is_none());
}

#[test]
fn flush_cuts_what_is_pending() {
    let mut cutter = BlockCutter::new(CutterConfig::default());
    let mut input = vec![pat(), pmt(), es(VIDEO, true, 1)];
    input.extend((0..5).map(|i| es(VIDEO, false, i)));
    cutter.push(&join(&input[..2])).unwrap();
    assert!(
        !cutter.detected(),
        "still probing: two packets are not a run of three"
    );
    assert_eq!(cutter.flush(), None);
    cutter.push(&join(&input[2..])).unwrap();
    cutter.push(&[SYNC_BYTE, 0x01]).unwrap();
    assert_eq!(cutter.poll_block(), None);
    // Every `es` packet starts a PES: the last one may be unfinished and stays...
    let block = cutter.flush().expect("pending packets");
    assert_eq!(block.payload.len(), 7 * PACKET_SIZE);
    assert!(block.keyframe);
    // ...until the next flush with nothing new: the stream paused or ended.
    let last = cutter.flush().expect("the held PES");
    assert_eq!(last.payload.len(), PACKET_SIZE);
    assert_eq!(cutter.flush(), None);
    assert!(cutter.detected());
    assert_eq!(cutter.video_pid(), Some(VIDEO));
}

/// A video packet continuing a PES (no payload_unit_start).
fn cont(tag: u8) -> Packet {
    let mut p = es(VIDEO, false, tag);
    p[1] &= !0x40;
    p
}

#[test]
fn a_flush_never_ends_a_block_mid_frame() {
    let mut cutter = BlockCutter::new(CutterConfig::default());
    // Frame 1 (a keyframe, 3 packets), then the first 2 packets of frame 2.
    let frame1 = [es(VIDEO, true, 1), cont(2), cont(3)];
    let mut input = vec![pat(), pmt()];
    input.extend(frame1);
    input.extend([es(VIDEO, false, 4), cont(5)]);
    cutter.push(&join(&input)).unwrap();
    let block = cutter.flush().expect("frame 1");
    assert_eq!(block.payload.as_ref(), join(&input[..5]).as_slice());
    assert!(block.keyframe);
    // Frame 2 goes on (so a second flush would still hold it), then the next
    // PAT cuts it whole.
    cutter.push(&join(&[cont(6)])).unwrap();
    assert_eq!(cutter.flush(), None, "its only PES may be unfinished");
    cutter.push(&join(&[pat(), pmt()])).unwrap();
    let block = cutter.poll_block().expect("frame 2");
    assert_eq!(
        block.payload.as_ref(),
        join(&[es(VIDEO, false, 4), cont(5), cont(6)]).as_slice()
    );
    assert!(!block.keyframe);
    // A block of PSI and audio only is flushed whole.
    cutter.push(&join(&[es(AUDIO, false, 7)])).unwrap();
    let block = cutter.flush().expect("no video in it");
    assert_eq!(block.payload.len(), 3 * PACKET_SIZE);
}

#[test]
fn continues_stream_follows_packet_alignment() {
    let data = join(&[pat(), pmt(), es(VIDEO, true, 1), es(VIDEO, false, 2)]);
    let mut cutter = BlockCutter::new(CutterConfig::default());
    assert!(!cutter.continues_stream(&data), "not locked yet");
    cutter.push(&data[..3 * PACKET_SIZE + 100]).unwrap();
    assert!(cutter.continues_stream(&data[3 * PACKET_SIZE + 100..3 * PACKET_SIZE + 120]));
    assert!(cutter.continues_stream(&data[3 * PACKET_SIZE + 100..]));
    let mut next_packet_at_88 = vec![0u8; 200];
    next_packet_at_88[88] = SYNC_BYTE;
    assert!(cutter.continues_stream(&next_packet_at_88));
    next_packet_at_88[88] = 0;
    assert!(!cutter.continues_stream(&next_packet_at_88));
}

#[test]
fn html_is_rejected_with_reason_and_stays_rejected() {
    let html = "<!DOCTYPE html><html><body>".to_string() + &"hello ".repeat(400);
    let mut cutter = BlockCutter::new(CutterConfig::default());
    let err = cutter.push(html.as_bytes()).unwrap_err();
    let IngestError::NotTransportStream { reason } = &err;
    assert!(reason.contains("first 1504 bytes"), "{reason}");
    assert!(reason.contains("HTML"), "{reason}");
    assert!(reason.contains("'<!DOCTYPE html><html><bo'"), "{reason}");
    assert!(err.to_string().starts_with("not an MPEG-TS stream: "));
    assert_eq!(cutter.push(&join(&[pat(), pmt(), pat()])), Err(err.clone()));
    assert_eq!(cutter.finish(), Err(err));
    assert_eq!(cutter.flush(), None);
}

#[test]
fn short_inputs_are_decided_at_finish() {
    let (result, blocks, _) = cut_chunks(
        CutterConfig::default(),
        &[&join(&[pat(), es(VIDEO, true, 1)])],
    );
    result.unwrap();
    assert_eq!(blocks.len(), 1);
    let (result, _, _) = cut_chunks(
        CutterConfig::default(),
        &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    );
    let Err(IngestError::NotTransportStream { reason }) = result else {
        panic!("accepted")
    };
    assert!(
        reason.contains("input ended after 27 bytes") && reason.contains("HTTP request"),
        "{reason}"
    );
    assert_eq!(cut_chunks(CutterConfig::default(), &[]).0, Ok(()));
}

#[test]
fn garbage_between_packets_is_skipped_and_counted() {
    let data = TestSource::new(300, 500).generate(1_000_000);
    let packets: Vec<&[u8]> = data.chunks(PACKET_SIZE).collect();
    let mut dirty = vec![0x55u8; 100];
    let mut garbage = 100;
    for (i, packet) in packets.iter().enumerate() {
        dirty.extend_from_slice(packet);
        if i % 7 == 3 {
            let len = 1 + i % 200;
            dirty.extend((0..len).map(|k| if k % 2 == 0 { 0x00 } else { 0xAB }));
            garbage += len;
        }
    }
    let (blocks, stats) = cut(&dirty);
    check_against_input(&blocks, &packets);
    assert_eq!(stats.resyncs, garbage as u64);
    assert_eq!(stats.packets, packets.len() as u64);
}

#[test]
fn config_is_validated_and_clamped() {
    assert_eq!(CutterConfig::default().validate(), Ok(()));
    let tiny = CutterConfig {
        max_block_bytes: 10,
        probe_bytes: 5,
    };
    assert!(matches!(
        tiny.validate(),
        Err(CutterConfigError::BlockTooSmall(10))
    ));
    let cutter = BlockCutter::new(tiny);
    assert_eq!(cutter.max_block_bytes, 4 * PACKET_SIZE);
    assert_eq!(cutter.probe_bytes, 2 * PACKET_SIZE + 1);
}
