//! UDP and TCP ingest over loopback (X1).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::{assert_same_stream, collect, loopback, read_to_end, start, stream, WAIT};
use crate::ingest::IngestListen;

#[tokio::test]
async fn udp_ingest_delivers_blocks_from_unaligned_datagrams() {
    let (handle, mut rx) = start(IngestListen::Udp).await;
    let data = stream();
    let socket = UdpSocket::bind(loopback()).await.unwrap();
    // Sizes as ffmpeg sends them: 1472-byte datagrams split packets, and
    // flushes leave fragments (32 bytes: the tail of a packet, no sync byte).
    let sizes = [1472usize, 32, 1316, 1472, 128, 940, 1472, 1472];
    let mut at = 0;
    for (i, size) in sizes.iter().cycle().enumerate() {
        if at >= data.len() {
            break;
        }
        let end = (at + size).min(data.len());
        socket
            .send_to(&data[at..end], handle.local_addr)
            .await
            .unwrap();
        at = end;
        if i % 16 == 15 {
            // Stay well inside the receive buffer on a loaded machine.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // The tail comes out by the flush timer.
    let blocks = collect(&mut rx, data.len()).await;
    assert_same_stream(&blocks, &data);
    assert_eq!(
        handle.stats.bytes.load(Ordering::Relaxed),
        data.len() as u64
    );
    assert_eq!(
        handle.stats.blocks.load(Ordering::Relaxed),
        blocks.len() as u64
    );
    assert_eq!(handle.stats.rejected_datagrams.load(Ordering::Relaxed), 0);
    assert_eq!(handle.stats.skipped_bytes.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn udp_ingest_drops_and_counts_non_ts_datagrams() {
    let (handle, mut rx) = start(IngestListen::Udp).await;
    let socket = UdpSocket::bind(loopback()).await.unwrap();
    socket
        .send_to(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", handle.local_addr)
        .await
        .unwrap();
    socket
        .send_to(&[0xAB; 1316], handle.local_addr)
        .await
        .unwrap();
    let data = stream();
    for datagram in data.chunks(1316).take(50) {
        socket.send_to(datagram, handle.local_addr).await.unwrap();
    }
    let block = timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    assert!(block.keyframe);
    assert_eq!(handle.stats.rejected_datagrams.load(Ordering::Relaxed), 2);
    let error = handle.stats.last_error().expect("reason recorded");
    assert!(
        error.contains("not an MPEG-TS datagram (1316 bytes)"),
        "{error}"
    );
}

#[tokio::test]
async fn tcp_ingest_delivers_blocks_from_test_source() {
    let (handle, mut rx) = start(IngestListen::Tcp).await;
    let data = stream();
    let mut publisher = TcpStream::connect(handle.local_addr).await.unwrap();
    for piece in data.chunks(1000) {
        publisher.write_all(piece).await.unwrap();
    }
    publisher.shutdown().await.unwrap();
    let blocks = collect(&mut rx, data.len()).await;
    assert_same_stream(&blocks, &data);
    assert_eq!(handle.stats.publishers.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn tcp_ingest_refuses_a_second_publisher() {
    let (handle, mut rx) = start(IngestListen::Tcp).await;
    let data = stream();
    let mut first = TcpStream::connect(handle.local_addr).await.unwrap();
    first.write_all(&data[..20 * 188]).await.unwrap();
    timeout(WAIT, rx.recv())
        .await
        .expect("first publisher is live")
        .unwrap();
    let mut second = TcpStream::connect(handle.local_addr).await.unwrap();
    assert_eq!(read_to_end(&mut second).await, "", "closed without a word");
    assert_eq!(handle.stats.rejected_connections.load(Ordering::Relaxed), 1);
    assert!(handle
        .stats
        .last_error()
        .unwrap()
        .contains("another publisher is live"));
    // The first one carries on.
    first.write_all(&data[20 * 188..]).await.unwrap();
    first.shutdown().await.unwrap();
    let blocks = collect(&mut rx, data.len() - 20 * 188 - 1).await;
    assert!(!blocks.is_empty());
}

#[tokio::test]
async fn tcp_ingest_closes_and_counts_non_ts() {
    let (handle, mut rx) = start(IngestListen::Tcp).await;
    let mut publisher = TcpStream::connect(handle.local_addr).await.unwrap();
    let html = format!("<html><body>{}</body></html>", "x".repeat(3000));
    publisher.write_all(html.as_bytes()).await.unwrap();
    assert_eq!(read_to_end(&mut publisher).await, "");
    assert_eq!(handle.stats.rejected_connections.load(Ordering::Relaxed), 1);
    let error = handle.stats.last_error().unwrap();
    assert!(
        error.contains("not an MPEG-TS stream") && error.contains("HTML"),
        "{error}"
    );
    // The slot is free again for a real publisher.
    let data = stream();
    let mut next = TcpStream::connect(handle.local_addr).await.unwrap();
    next.write_all(&data).await.unwrap();
    next.shutdown().await.unwrap();
    assert_same_stream(&collect(&mut rx, data.len()).await, &data);
}

#[tokio::test]
async fn tcp_with_keys_on_takes_only_allowed_sources() {
    use crate::ingest::{AllowList, IngestOptions, PublishKeys};
    let keys = PublishKeys::new("live", &["k3y".to_string()], None).unwrap();
    let closed = IngestOptions {
        keys: keys.clone(),
        ..IngestOptions::open("live")
    };
    let (handle, _rx) = super::start_with(IngestListen::Tcp, closed).await;
    let mut s = TcpStream::connect(handle.local_addr).await.unwrap();
    let _ = s.write_all(&stream()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while handle.stats.refused_keys.load(Ordering::Relaxed) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "refusal counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(handle
        .stats
        .last_error()
        .unwrap()
        .contains("--ingest-allow"));

    let allowed = IngestOptions {
        keys,
        allow: AllowList(vec!["127.0.0.0/8".parse().unwrap()]),
        ..IngestOptions::open("live")
    };
    let (handle, mut rx) = super::start_with(IngestListen::Tcp, allowed).await;
    let mut s = TcpStream::connect(handle.local_addr).await.unwrap();
    let data = stream();
    s.write_all(&data).await.unwrap();
    drop(s);
    let blocks = collect(&mut rx, data.len()).await;
    assert_same_stream(&blocks, &data);
}
