//! Fuzz target (X3): the D8 heartbeat (`crates/proto/src/heartbeat.rs`), as its
//! postcard body and wrapped in a control frame; a decoded heartbeat re-encodes
//! and decodes again to the same value.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tiercast_proto::codec::PROTOCOL_VERSION;
use tiercast_proto::{decode_frame, Heartbeat, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(hb) = postcard::from_bytes::<Heartbeat>(data) {
        let bytes = postcard::to_allocvec(&hb).expect("a decoded heartbeat re-encodes");
        let again: Heartbeat = postcard::from_bytes(&bytes).expect("re-encoded heartbeat decodes");
        assert_eq!(again, hb);
    }
    // The same bytes as the body of a `Message::Heartbeat` control frame.
    let variant =
        postcard::to_allocvec(&Message::Heartbeat(Heartbeat::default())).expect("encodes")[0];
    let mut body = BytesMut::with_capacity(data.len() + 3);
    body.put_u8(PROTOCOL_VERSION);
    body.put_u8(0); // control
    body.put_u8(variant);
    body.extend_from_slice(data);
    let _ = decode_frame(Bytes::from(body));
});
