//! RTMP ingest over loopback, bad input (X1; issue 17 Must show 3): garbage
//! instead of a handshake, a handshake cut halfway, and a message announcing
//! an absurd size are each closed, counted and given a reason; nothing
//! panics and the buffered bytes stay under the limit.

use std::sync::atomic::Ordering;

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use tokio::io::AsyncWriteExt;

use super::*;
use crate::ingest::rtmp::MAX_PENDING_BEFORE_PUBLISH;

async fn wait_rejected(handle: &IngestHandle, n: u64) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    while handle.stats.rejected_connections.load(Ordering::Relaxed) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "refusal counted in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stats.last_error().expect("a reason")
}

#[tokio::test]
async fn garbage_is_closed_and_counted() {
    let (handle, _rx) = start(IngestListen::Rtmp).await;
    let mut s = TcpStream::connect(handle.local_addr)
        .await
        .expect("connect");
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let _ = s.write_all(&[0x55; 4000]).await;
    read_to_end(&mut s).await;
    let reason = wait_rejected(&handle, 1).await;
    assert!(reason.contains("RTMP handshake"), "{reason}");
}

#[tokio::test]
async fn handshake_cut_halfway_is_counted() {
    let (handle, _rx) = start(IngestListen::Rtmp).await;
    let mut s = TcpStream::connect(handle.local_addr)
        .await
        .expect("connect");
    let mut c0c1 = Handshake::new(PeerType::Client)
        .generate_outbound_p0_and_p1()
        .expect("C0+C1");
    c0c1.truncate(700);
    s.write_all(&c0c1).await.expect("write");
    drop(s);
    let reason = wait_rejected(&handle, 1).await;
    assert!(reason.contains("cut short"), "{reason}");
}

/// A completed handshake on `s`.
async fn handshake(s: &mut TcpStream) {
    let mut hs = Handshake::new(PeerType::Client);
    let c0c1 = hs.generate_outbound_p0_and_p1().expect("C0+C1");
    s.write_all(&c0c1).await.expect("write");
    let mut buf = vec![0u8; 8192];
    loop {
        let n = timeout(WAIT, s.read(&mut buf))
            .await
            .expect("S0/S1/S2 in time")
            .expect("read");
        assert!(n > 0, "server answered the handshake");
        match hs.process_bytes(&buf[..n]).expect("valid server handshake") {
            HandshakeProcessResult::InProgress { response_bytes } => {
                s.write_all(&response_bytes).await.expect("write");
            }
            HandshakeProcessResult::Completed { response_bytes, .. } => {
                s.write_all(&response_bytes).await.expect("write");
                return;
            }
        }
    }
}

#[tokio::test]
async fn absurd_message_size_is_refused_within_the_limit() {
    let (handle, _rx) = start(IngestListen::Rtmp).await;
    let mut s = TcpStream::connect(handle.local_addr)
        .await
        .expect("connect");
    handshake(&mut s).await;
    // Chunk stream 6, type 0 header: timestamp 0, length 0xFFFFFF (16 MiB),
    // type 9 (video = an FLV video tag), message stream 1; then 128-byte chunks.
    let mut first = vec![0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0];
    first.extend_from_slice(&[0x17; 128]);
    s.write_all(&first).await.expect("write");
    let mut chunk = vec![0xC6];
    chunk.extend_from_slice(&[0x27; 128]);
    let mut sent = 0;
    // The server closes well before the 16 MiB arrive.
    while sent < 4 * MAX_PENDING_BEFORE_PUBLISH {
        if s.write_all(&chunk).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let reason = wait_rejected(&handle, 1).await;
    assert!(reason.contains("over 65536 bytes"), "{reason}");
}
