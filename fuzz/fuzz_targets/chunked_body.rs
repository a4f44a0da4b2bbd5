//! Fuzz target (X1, X3): the chunked transfer coding of HTTP ingest bodies
//! (`crates/net/src/ingest/chunked.rs`). The same bytes decoded whole and in
//! pieces of a fuzzer-chosen size must give the same body, the same end and the
//! same error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercast_net::ingest::chunked::ChunkedDecoder;

/// Body bytes, whether the body ended, and whether it failed.
fn decode(input: &[u8], step: usize) -> (Vec<u8>, bool, bool) {
    let mut dec = ChunkedDecoder::default();
    let mut body = Vec::new();
    for piece in input.chunks(step) {
        let mut rest = piece;
        loop {
            match dec.next(&mut rest) {
                Ok(Some(data)) => body.extend_from_slice(data),
                Ok(None) => break,
                Err(_) => return (body, dec.is_done(), true),
            }
        }
        if dec.is_done() {
            break;
        }
    }
    (body, dec.is_done(), false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let whole = decode(input, input.len().max(1));
    let pieces = decode(input, usize::from(step).max(1));
    assert_eq!(whole.1, pieces.1, "end of body depends on the split");
    assert_eq!(whole.2, pieces.2, "error depends on the split");
    if !whole.2 {
        assert_eq!(whole.0, pieces.0, "body depends on the split");
    }
});
