//! SRT ingest over loopback (X1, X3): a publisher with the key gets its stream
//! cut into blocks; no key, a wrong key, another channel and a second
//! publisher are refused and counted; garbage datagrams on the port are
//! dropped and counted and the next publisher still gets in.

use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::SinkExt;
use srt_tokio::SrtSocket;
use tokio::net::UdpSocket;

use super::*;
use crate::ingest::{IngestOptions, PublishKeys};

fn keyed() -> IngestOptions {
    IngestOptions {
        keys: PublishKeys::new("live", &["k3y".to_string()], None).expect("valid key"),
        ..IngestOptions::open("live")
    }
}

async fn call(addr: SocketAddr, stream_id: &str) -> std::io::Result<SrtSocket> {
    timeout(WAIT, SrtSocket::builder().call(addr, Some(stream_id)))
        .await
        .expect("answer in time")
}

/// Sends `ts` as an encoder would: 1316-byte messages, paced (SRT live mode
/// drops what the receiver gets later than its latency).
async fn publish(socket: &mut SrtSocket, ts: &[u8]) {
    for chunk in ts.chunks(1316) {
        socket
            .send((Instant::now(), Bytes::copy_from_slice(chunk)))
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn keyed_publisher_is_cut_into_blocks() {
    let (handle, mut rx) = start_with(IngestListen::Srt, keyed()).await;
    let mut socket = call(handle.local_addr, "#!::r=live,k=k3y")
        .await
        .expect("accepted");
    let ts = stream();
    publish(&mut socket, &ts).await;
    let blocks = collect(&mut rx, ts.len()).await;
    assert_same_stream(&blocks, &ts);
    assert_eq!(handle.stats.publishers.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn wrong_missing_other_channel_and_second_are_refused() {
    let (handle, _rx) = start_with(IngestListen::Srt, keyed()).await;
    let addr = handle.local_addr;
    assert!(call(addr, "").await.is_err(), "no key");
    assert!(call(addr, "nope").await.is_err(), "wrong key");
    assert!(
        call(addr, "#!::r=other,k=k3y").await.is_err(),
        "other channel"
    );
    assert_eq!(handle.stats.refused_keys.load(Ordering::Relaxed), 3);
    let error = handle.stats.last_error().expect("a reason");
    assert!(error.contains("2404"), "{error}");
    let _first = call(addr, "k3y").await.expect("first publisher");
    assert!(call(addr, "k3y").await.is_err(), "second publisher");
    assert_eq!(handle.stats.refused_busy.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn takeover_replaces_the_live_publisher() {
    let options = IngestOptions {
        publisher_takeover: true,
        ..keyed()
    };
    let (handle, mut rx) = start_with(IngestListen::Srt, options).await;
    let _first = call(handle.local_addr, "k3y").await.expect("first");
    let mut second = call(handle.local_addr, "k3y")
        .await
        .expect("second takes over");
    assert_eq!(handle.stats.takeovers.load(Ordering::Relaxed), 1);
    let ts = stream();
    publish(&mut second, &ts).await;
    let blocks = collect(&mut rx, ts.len()).await;
    assert_same_stream(&blocks, &ts);
}

#[tokio::test]
async fn garbage_datagrams_are_dropped_and_counted() {
    let (handle, mut rx) = start_with(IngestListen::Srt, keyed()).await;
    let garbage = UdpSocket::bind(loopback()).await.expect("bind");
    let mut x: u32 = 7;
    for len in [0usize, 1, 3, 16, 100, 1316, 1500] {
        for _ in 0..20 {
            let d: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = garbage.send_to(&d, handle.local_addr).await;
        }
    }
    // The ingest still takes a publisher.
    let mut socket = call(handle.local_addr, "k3y")
        .await
        .expect("accepted after garbage");
    let ts = stream();
    publish(&mut socket, &ts).await;
    collect(&mut rx, ts.len()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while handle.stats.garbage_packets.load(Ordering::Relaxed) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "garbage counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn passphrase_is_required_when_set() {
    let options = IngestOptions {
        srt_passphrase: Some("0123456789abc".to_string()),
        ..IngestOptions::open("live")
    };
    let (handle, mut rx) = start_with(IngestListen::Srt, options).await;
    let plain = call(handle.local_addr, "").await;
    assert!(plain.is_err(), "no passphrase: refused");
    let mut socket = timeout(
        WAIT,
        SrtSocket::builder()
            .encryption(16, "0123456789abc")
            .call(handle.local_addr, None),
    )
    .await
    .expect("answer in time")
    .expect("the right passphrase is accepted");
    let ts = stream();
    publish(&mut socket, &ts).await;
    let blocks = collect(&mut rx, ts.len()).await;
    assert_same_stream(&blocks, &ts);
}

#[tokio::test]
async fn caller_mode_dials_a_listening_encoder() {
    use futures::StreamExt;
    use srt_tokio::SrtListener;
    // The "encoder": an SRT listener that sends the stream to whoever calls.
    let socket = UdpSocket::bind(loopback()).await.expect("bind");
    let encoder_addr = socket.local_addr().expect("addr");
    let (_listener, mut incoming) = SrtListener::builder()
        .socket(socket)
        .bind(encoder_addr)
        .await
        .expect("listen");
    let ts = stream();
    let sent = ts.clone();
    let encoder = tokio::spawn(async move {
        let request = incoming.incoming().next().await.expect("the origin calls");
        let mut socket = request.accept(None).await.expect("accept");
        publish(&mut socket, &sent).await;
        socket
    });
    let (tx, mut rx) = mpsc::channel(64);
    let options = IngestOptions {
        srt_stream_id: Some("#!::r=live".to_string()),
        ..IngestOptions::open("live")
    };
    let handle = crate::ingest::start_ingest_with(
        IngestListen::SrtCall(encoder_addr),
        options,
        CutterConfig::default(),
        tx,
        50,
    )
    .await
    .expect("start");
    let blocks = collect(&mut rx, ts.len()).await;
    assert_same_stream(&blocks, &ts);
    assert_eq!(handle.stats.publishers.load(Ordering::Relaxed), 1);
    let _socket = encoder.await.expect("encoder task");
}
