//! Fuzz target (X1, X3): the MPEG-TS packet parser, PAT/PMT parsing, the block
//! cutter and the audio-only filter (`crates/media/src/ts.rs`, `psi.rs`,
//! `cutter/`, `audio_only.rs`). The first two bytes pick the cutter's settings
//! and how the rest is split into pushes; every block cut must be whole packets
//! within the block size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercast_media::psi::{parse_pat, parse_pmt};
use tiercast_media::{AudioOnlyFilter, BlockCutter, CutBlock, CutterConfig, TsPacket, PACKET_SIZE};

fn check(block: &CutBlock, max_block_bytes: usize) {
    assert_eq!(
        block.payload.len() % PACKET_SIZE,
        0,
        "block of partial packets"
    );
    assert!(!block.payload.is_empty(), "empty block");
    assert!(
        block.payload.len() <= max_block_bytes,
        "block over the limit"
    );
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (knobs, input) = (&data[..2], &data[2..]);
    let cfg = CutterConfig {
        max_block_bytes: (4 + usize::from(knobs[0] & 0x3F)) * PACKET_SIZE,
        probe_bytes: if knobs[0] & 0x40 != 0 {
            3 * PACKET_SIZE
        } else {
            8 * PACKET_SIZE
        },
    };
    let flush_often = knobs[0] & 0x80 != 0;
    let step = usize::from(knobs[1]).max(1) * if knobs[1] > 200 { 188 } else { 1 };

    let mut cutter = BlockCutter::new(cfg);
    for piece in input.chunks(step) {
        if cutter.push(piece).is_err() {
            break;
        }
        if flush_often {
            if let Some(b) = cutter.flush() {
                check(&b, cfg.max_block_bytes);
            }
        }
        while let Some(b) = cutter.poll_block() {
            check(&b, cfg.max_block_bytes);
        }
        let _ = cutter.continues_stream(piece);
    }
    let _ = cutter.finish();
    while let Some(b) = cutter.poll_block() {
        check(&b, cfg.max_block_bytes);
    }
    let _ = cutter.stats();

    for chunk in input.chunks(PACKET_SIZE) {
        if let Ok(p) = TsPacket::parse(chunk) {
            let _ = parse_pat(&p);
            let _ = parse_pmt(&p);
        }
    }
    let out = AudioOnlyFilter::new().filter(input);
    assert!(
        out.len() <= input.len(),
        "the audio-only filter grew its input"
    );
});
