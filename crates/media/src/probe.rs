//! Deciding whether input is an MPEG-TS stream, and saying what it is when it
//! is not (an HTTP request, HTML, RTP, FLV, MP4, TLS, text, hex), so that a
//! publisher who points the wrong tool at an ingest port gets a useful reason.
//! Feature X1.

use crate::ts::{PACKET_SIZE, SYNC_BYTE};

/// Sync bytes at 188-byte spacing needed to believe the input is TS.
pub const SYNC_RUN: usize = 3;

/// Outcome of looking for a run of sync bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncSearch {
    /// The run starts at this offset.
    Found(usize),
    /// Every candidate offset whose run ends before the limit was ruled out.
    NotFound,
    /// Candidates from this offset on need more bytes to decide.
    NeedMore(usize),
}

/// Looks for the smallest offset `i >= from` where `data` holds [`SYNC_RUN`]
/// sync bytes at 188-byte spacing, considering only runs whose last sync byte
/// lies before `limit`. The answer for a given offset never depends on how
/// much data has arrived, only on the bytes themselves.
pub fn find_sync_run(data: &[u8], from: usize, limit: usize) -> SyncSearch {
    let span = (SYNC_RUN - 1) * PACKET_SIZE;
    let mut i = from;
    loop {
        if i + span >= limit {
            return SyncSearch::NotFound;
        }
        let mut decided = true;
        let mut all_sync = true;
        for k in 0..SYNC_RUN {
            match data.get(i + k * PACKET_SIZE) {
                Some(&SYNC_BYTE) => {}
                Some(_) => {
                    all_sync = false;
                    break;
                }
                None => {
                    decided = false;
                    break;
                }
            }
        }
        if !decided {
            return SyncSearch::NeedMore(i);
        }
        if all_sync {
            return SyncSearch::Found(i);
        }
        i += 1;
    }
}

/// True when a single datagram looks like TS: some offset below 188 where
/// every 188-byte step inside the datagram hits a sync byte, and at least one
/// whole packet follows it.
pub fn datagram_looks_like_ts(data: &[u8]) -> bool {
    (0..PACKET_SIZE.min(data.len())).any(|offset| {
        data.len() - offset >= PACKET_SIZE
            && data[offset..]
                .iter()
                .step_by(PACKET_SIZE)
                .all(|&b| b == SYNC_BYTE)
    })
}

/// A short description of what `data` appears to be, for error messages:
/// `"HTML, starts with '<html><body>'"`.
pub fn describe(data: &[u8]) -> String {
    format!("{}, starts with {}", kind(data), prefix(data))
}

fn kind(data: &[u8]) -> &'static str {
    let head = &data[..data.len().min(512)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let starts = |p: &[u8]| lower.starts_with(p);
    let contains = |p: &[u8]| lower.windows(p.len()).any(|w| w == p);
    if data.is_empty() {
        "empty input"
    } else if [b"get ".as_slice(), b"post ", b"put ", b"head ", b"options "]
        .iter()
        .any(|m| starts(m))
    {
        "an HTTP request (is the HTTP ingest on another port?)"
    } else if starts(b"http/") {
        "an HTTP response"
    } else if contains(b"<html") || contains(b"<!doctype") {
        "HTML"
    } else if starts(b"flv") {
        "an FLV stream (use -f mpegts, not -f flv)"
    } else if data.len() >= 8 && &data[4..8] == b"ftyp" {
        "an MP4/ISO-BMFF file (use -f mpegts)"
    } else if data.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        "a Matroska/WebM stream (use -f mpegts)"
    } else if data.len() >= 2 && data[0] == 0x16 && data[1] == 0x03 {
        "a TLS handshake (the ingest speaks plain TCP/HTTP)"
    } else if data.len() > 12 + PACKET_SIZE
        && data[0] & 0xC0 == 0x80
        && data[1] & 0x7F == 33
        && data[12] == SYNC_BYTE
    {
        "MPEG-TS inside RTP (send raw TS: -f mpegts udp://..., not -f rtp_mpegts)"
    } else if data.len() > 4 + 2 * 192 && data[4] == SYNC_BYTE && data[4 + 192] == SYNC_BYTE {
        "192-byte M2TS packets (send 188-byte MPEG-TS)"
    } else if head
        .iter()
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        "text"
    } else {
        "binary data"
    }
}

/// The first bytes, quoted as text when printable, else as hex.
fn prefix(data: &[u8]) -> String {
    const SHOWN: usize = 24;
    let head = &data[..data.len().min(SHOWN)];
    let printable = head
        .iter()
        .filter(|b| b.is_ascii_graphic() || **b == b' ')
        .count();
    if !head.is_empty() && printable * 4 >= head.len() * 3 {
        let text: String = head
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    char::from(b)
                } else {
                    '.'
                }
            })
            .collect();
        format!("'{text}'")
    } else {
        let hex: Vec<String> = head.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("hex {}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n * PACKET_SIZE];
        for p in v.chunks_mut(PACKET_SIZE) {
            p[0] = SYNC_BYTE;
        }
        v
    }

    #[test]
    fn finds_run_after_garbage() {
        let mut data = vec![1u8; 10];
        data.extend(ts(3));
        assert_eq!(find_sync_run(&data, 0, 1504), SyncSearch::Found(10));
        assert_eq!(
            find_sync_run(&data[..300], 0, 1504),
            SyncSearch::NeedMore(10)
        );
        assert_eq!(find_sync_run(&[0u8; 1504], 0, 1504), SyncSearch::NotFound);
    }

    #[test]
    fn datagram_check() {
        assert!(datagram_looks_like_ts(&ts(7)));
        let mut shifted = vec![9u8; 5];
        shifted.extend(ts(2));
        assert!(datagram_looks_like_ts(&shifted));
        assert!(!datagram_looks_like_ts(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!datagram_looks_like_ts(&[0x47; 100]));
    }

    #[test]
    fn describes_common_mistakes() {
        assert!(describe(b"GET /live HTTP/1.1\r\n").contains("HTTP request"));
        assert!(describe(b"GET /live HTTP/1.1\r\n").contains("'GET /live HTTP/1.1..'"));
        assert!(describe(b"<!DOCTYPE html><html>").starts_with("HTML"));
        assert!(describe(b"FLV\x01\x05\0\0\0\x09").contains("FLV"));
        assert!(describe(&[0u8, 1, 2, 3]).contains("hex 00 01 02 03"));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..1000), from in 0usize..1200) {
            let _ = describe(&data);
            let _ = datagram_looks_like_ts(&data);
            let _ = find_sync_run(&data, from, 1504);
        }
    }
}
