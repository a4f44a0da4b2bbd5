//! Fuzz target (L1, X3): messages between peers of the locality join
//! (`crates/locality/src/msg.rs`); a decoded message re-encodes and decodes
//! again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercast_locality::LocalityMsg;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = LocalityMsg::decode(data) {
        let bytes = msg.encode();
        assert_eq!(bytes.len(), msg.encoded_len());
        assert_eq!(LocalityMsg::decode(&bytes).as_ref(), Ok(&msg));
    }
});
