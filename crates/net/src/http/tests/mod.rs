//! Socket-level tests of the HTTP servers (X2, V2, X3): plain `TcpStream`
//! clients on loopback against the real servers, with fake driver tasks
//! answering their requests. Every await is bounded by [`within`].

mod api_tests;
mod hls_tests;
mod viewer_hub;
mod viewer_tests;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::viewer::LiveBlock;

/// Upper bound on every await in these tests.
pub(super) const PATIENCE: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
pub(super) async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("test step timed out")
}

/// A response as a client saw it.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    /// Parses everything a client read up to EOF.
    pub fn parse(bytes: &[u8]) -> Reply {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(bytes)));
        let head = String::from_utf8(bytes[..end].to_vec()).expect("head is text");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("status code");
        Reply {
            status,
            head,
            body: bytes[end + 4..].to_vec(),
        }
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects, sends `request` as is, reads until the server closes.
pub(super) async fn exchange(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = within(TcpStream::connect(addr)).await.expect("connect");
    // The server may answer (and stop reading) before an oversized request is
    // all sent; the answer is what matters.
    let _ = within(stream.write_all(request)).await;
    let mut bytes = Vec::new();
    let _ = within(stream.read_to_end(&mut bytes)).await;
    Reply::parse(&bytes)
}

/// `GET <target>` with a minimal HTTP/1.1 head.
pub(super) async fn get(addr: SocketAddr, target: &str) -> Reply {
    exchange(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
    )
    .await
}

/// A block whose payload is `size` bytes: a TS sync byte, then the seq.
pub(super) fn block(seq: u64, keyframe: bool, size: usize) -> LiveBlock {
    assert!(size >= 9, "payload holds the seq");
    let mut payload = vec![0u8; size];
    payload[0] = 0x47;
    payload[1..9].copy_from_slice(&seq.to_be_bytes());
    LiveBlock {
        seq,
        keyframe,
        origin_time_us: seq * 100_000,
        payload: Bytes::from(payload),
    }
}

/// The seqs of a body made of `size`-byte blocks from [`block`].
pub(super) fn seqs_in(body: &[u8], size: usize) -> Vec<u64> {
    assert_eq!(body.len() % size, 0, "body holds whole blocks");
    body.chunks(size)
        .map(|chunk| {
            assert_eq!(chunk[0], 0x47);
            u64::from_be_bytes(chunk[1..9].try_into().expect("8 bytes"))
        })
        .collect()
}
