//! Fuzz target (X3): wire frames and messages between nodes and the coordinator
//! (`crates/proto/src/codec.rs`, `message.rs`). Bytes go through the stream
//! decoder (split in two at a fuzzer-chosen point) and through `decode_frame`;
//! every message decoded is re-encoded and must decode again to the same value.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tiercast_proto::{decode_frame, encode_frame, FrameDecoder, Message};

/// A small limit so the oversized-frame path is reached often.
const FUZZ_MAX_FRAME: usize = 64 * 1024;

fn round_trip(msg: &Message) {
    let mut out = BytesMut::new();
    encode_frame(msg, &mut out).expect("a decoded message re-encodes");
    let body = out.split_off(4).freeze();
    let again = decode_frame(body).expect("a re-encoded message decodes");
    assert_eq!(&again, msg, "decode(encode(m)) != m");
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut stream = FrameDecoder::new(FUZZ_MAX_FRAME);
    for piece in [&data[..split], &data[split..]] {
        stream.extend(piece);
        while let Some(frame) = stream.next_frame() {
            if let Ok(msg) = frame {
                round_trip(&msg);
            }
        }
    }
    if let Ok(msg) = decode_frame(Bytes::copy_from_slice(data)) {
        round_trip(&msg);
    }
});
