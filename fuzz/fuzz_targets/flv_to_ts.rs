//! Fuzz target (X1, X3): FLV video/audio tag bodies as an RTMP publisher sends
//! them, remuxed to MPEG-TS (`crates/media/src/flv.rs`, `ts_mux.rs`). The input
//! is a sequence of `[kind][timestamp: 3 bytes][length: 2 bytes][tag]`; the TS
//! written must be whole packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercast_media::flv::AacConfig;
use tiercast_media::{FlvToTs, PACKET_SIZE};

fuzz_target!(|data: &[u8]| {
    let _ = AacConfig::parse(data);
    let mut flv = FlvToTs::new();
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 6 {
        let kind = rest[0];
        // RTMP timestamps are 32-bit; the top byte comes from the kind byte.
        let ts_ms = u64::from(u32::from_be_bytes([kind >> 1, rest[1], rest[2], rest[3]]));
        let len = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
        let end = (6 + len).min(rest.len());
        let tag = &rest[6..end];
        rest = &rest[end..];
        let _ = if kind & 1 == 0 {
            flv.video(ts_ms, tag, &mut out)
        } else {
            flv.audio(ts_ms, tag, &mut out)
        };
        assert_eq!(out.len() % PACKET_SIZE, 0, "TS output of partial packets");
    }
    let _ = flv.stats();
});
