//! Fuzz target (X1, X3): what an encoder sends to name its channel and key —
//! the SRT stream id (`#!::r=CHANNEL,k=KEY`, URL-encoded or not) and the
//! publish key checked against a key set — and the key file's lines
//! (`crates/net/src/ingest/publish_key.rs`); also the origin's signing key file
//! (`crates/net/src/origin_state.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercast_net::ingest::publish_key::{
    parse_key_file, parse_srt_stream_id, percent_decode, validate_key,
};
use tiercast_net::ingest::PublishKeys;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (channel, key) = parse_srt_stream_id(&text);
    let _ = percent_decode(&text);
    let _ = validate_key(&text);
    let keys = PublishKeys::new("live", &["s3cret".to_string()], None).expect("valid key");
    let _ = keys.check(channel.as_deref(), key.as_deref());
    let _ = PublishKeys::open("live").check(channel.as_deref(), key.as_deref());
    let _ = parse_key_file(&text, "live", "fuzz");
    let _ = tiercast_net::origin_state::parse_key(data);
});
