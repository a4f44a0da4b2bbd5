//! Viewer endpoint over real sockets against a fake hub (X2, V2, X3).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tiercast_proto::ViewerId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{broadcast, oneshot};

use super::viewer_hub::{standard_hub, start, start_standard, Left, SMALL};
use super::{block, exchange, get, seqs_in, within, Reply};
use crate::http::viewer::{ViewerLimits, ViewerStream};

#[tokio::test]
async fn viewer_gets_backlog_then_live_in_order() {
    let mut server = start_standard().await;
    let reply = get(server.addr, "/live/news.ts").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type").as_deref(), Some("video/mp2t"));
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(reply.header("connection").as_deref(), Some("close"));
    assert_eq!(reply.header("content-length"), None);
    assert_eq!(reply.header("transfer-encoding"), None);
    assert_eq!(seqs_in(&reply.body, SMALL), (0..10).collect::<Vec<_>>());
    let left = within(server.leaves.recv()).await.unwrap();
    let expected = Left {
        channel: "news".into(),
        viewer: ViewerId(7),
        delivered: 10,
        skipped: 0,
    };
    assert_eq!(left, expected);
    assert!(server.stats.bytes_out.load(Ordering::Relaxed) >= 10 * SMALL as u64);
}

#[tokio::test]
async fn head_request_gets_head_only_and_leaves() {
    let mut server = start_standard().await;
    let reply = exchange(server.addr, b"HEAD /live/news.ts HTTP/1.1\r\n\r\n").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type").as_deref(), Some("video/mp2t"));
    assert!(reply.body.is_empty());
    let left = within(server.leaves.recv()).await.unwrap();
    assert_eq!((left.delivered, left.skipped), (0, 0));
}

#[tokio::test]
async fn unknown_channel_is_404_with_reason() {
    let server = start_standard().await;
    let reply = get(server.addr, "/live/nope.ts").await;
    assert_eq!(reply.status, 404);
    assert!(reply
        .body_text()
        .contains("channel nope is not carried here"));
    assert_eq!(server.stats.refused.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn redirect_refusal_is_302_with_location() {
    let server = start_standard().await;
    let reply = get(server.addr, "/live/moved.ts").await;
    assert_eq!(reply.status, 302);
    assert!(reply.head.starts_with("HTTP/1.1 302 Found\r\n"));
    assert_eq!(
        reply.header("location").as_deref(),
        Some("http://10.0.0.2:8080/live/moved.ts")
    );
}

#[tokio::test]
async fn unavailable_refusal_is_503_with_retry_after() {
    let server = start_standard().await;
    let reply = get(server.addr, "/live/busy.ts").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after").as_deref(), Some("9"));
    assert!(reply.body_text().contains("relay full"));
}

#[tokio::test]
async fn bad_paths_methods_and_names_are_refused() {
    let server = start_standard().await;
    let bad_name = get(server.addr, "/live/bad.name.ts").await;
    assert_eq!(bad_name.status, 400);
    assert!(bad_name.body_text().contains("invalid channel name"));
    assert_eq!(
        get(server.addr, &format!("/live/{}.ts", "x".repeat(65)))
            .await
            .status,
        400
    );
    assert_eq!(get(server.addr, "/live/news").await.status, 404);
    let other = get(server.addr, "/index.html").await;
    assert_eq!(other.status, 404);
    assert!(other.body_text().contains("/live/<channel>.ts"));
    assert_eq!(get(server.addr, "/live/a%2Fb.ts").await.status, 400);
    // C3's feeds: an unknown feed, a delay that is no number or past the limit (60 s).
    let feed = get(server.addr, "/live/news.ts?feed=video").await;
    assert_eq!(feed.status, 400);
    assert!(feed.body_text().contains("feed=full or feed=audio"));
    assert_eq!(
        get(server.addr, "/live/news.ts?delay=soon").await.status,
        400
    );
    let long = get(server.addr, "/live/news.ts?delay=61").await;
    assert_eq!(long.status, 400);
    assert!(
        long.body_text().contains("limit of 60 s"),
        "{}",
        long.body_text()
    );
    let post = exchange(server.addr, b"POST /live/news.ts HTTP/1.1\r\n\r\n").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow").as_deref(), Some("GET, HEAD"));
    assert_eq!(server.stats.bad_requests.load(Ordering::Relaxed), 9);
}

#[tokio::test]
async fn health_is_ok() {
    let server = start_standard().await;
    let reply = get(server.addr, "/health").await;
    assert_eq!((reply.status, reply.body_text().as_str()), (200, "ok\n"));
}

#[tokio::test]
async fn malformed_request_line_is_400() {
    let server = start_standard().await;
    assert_eq!(exchange(server.addr, b"HELLO\r\n\r\n").await.status, 400);
    assert_eq!(
        exchange(server.addr, b"GET /health HTTP/9.9\r\n\r\n")
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn oversized_head_is_431() {
    let server = start_standard().await;
    let request = format!(
        "GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(exchange(server.addr, request.as_bytes()).await.status, 431);
}

#[tokio::test]
async fn slow_head_times_out_with_408() {
    let limits = ViewerLimits {
        head_timeout_ms: 100,
        ..ViewerLimits::default()
    };
    let server = start(limits, Duration::from_secs(5), standard_hub).await;
    assert_eq!(exchange(server.addr, b"GET /health HT").await.status, 408);
}

#[tokio::test]
async fn silent_hub_gives_503_after_join_timeout() {
    let mut held = Vec::new();
    let server = start(
        ViewerLimits::default(),
        Duration::from_millis(100),
        move |_, reply| held.push(reply),
    )
    .await;
    let reply = get(server.addr, "/live/news.ts").await;
    assert_eq!(reply.status, 503);
    assert!(reply.header("retry-after").is_some());
    assert!(reply.body_text().contains("did not answer"));
}

/// Reads the response head and the first `blocks` blocks of a stream.
async fn open_stream(addr: SocketAddr, channel: &str, blocks: usize) -> TcpStream {
    let mut stream = within(TcpStream::connect(addr)).await.unwrap();
    let request = format!("GET /live/{channel}.ts HTTP/1.1\r\n\r\n");
    within(stream.write_all(request.as_bytes())).await.unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = within(stream.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "stream ended early");
        seen.extend_from_slice(&chunk[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            if seen.len() >= end + 4 + blocks * SMALL {
                assert!(seen.starts_with(b"HTTP/1.1 200 OK\r\n"));
                return stream;
            }
        }
    }
}

#[tokio::test]
async fn leave_is_sent_with_counts_when_the_client_disconnects() {
    let mut server = start_standard().await;
    let stream = open_stream(server.addr, "endless", 4).await;
    drop(stream);
    let left = within(server.leaves.recv()).await.unwrap();
    assert_eq!(
        (left.channel.as_str(), left.viewer),
        ("endless", ViewerId(8))
    );
    assert!(left.delivered >= 4, "{left:?}");
    assert_eq!(left.skipped, 0);
    within(async {
        while server.stats.active.load(Ordering::Relaxed) != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn connection_limit_gives_503_with_retry_after() {
    let limits = ViewerLimits {
        max_connections: 1,
        ..ViewerLimits::default()
    };
    let server = start(limits, Duration::from_secs(5), standard_hub).await;
    let first = open_stream(server.addr, "endless", 1).await;
    let reply = get(server.addr, "/health").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after").as_deref(), Some("2"));
    assert!(reply.body_text().contains("limit of 1 connections"));
    assert_eq!(server.stats.refused.load(Ordering::Relaxed), 1);
    drop(first);
}

#[tokio::test]
async fn lagged_viewer_skips_to_the_next_keyframe() {
    // Capacity 4 and 50 blocks sent before the viewer reads any: it lags by
    // 46, skips 46 and 47, resumes at keyframe 48.
    let mut server = start(
        ViewerLimits::default(),
        Duration::from_secs(5),
        |_, reply| {
            let (tx, live) = broadcast::channel(4);
            for seq in 0..50 {
                let _ = tx.send(block(seq, seq % 8 == 0, SMALL));
            }
            let viewer = ViewerId(9);
            let _ = reply.send(Ok(ViewerStream {
                viewer,
                backlog: Vec::new(),
                live,
            }));
        },
    )
    .await;
    let reply = get(server.addr, "/live/laggy.ts").await;
    assert_eq!(reply.status, 200);
    assert_eq!(seqs_in(&reply.body, SMALL), vec![48, 49]);
    let left = within(server.leaves.recv()).await.unwrap();
    assert_eq!((left.delivered, left.skipped), (2, 48));
    assert_eq!(server.stats.lagged_resyncs.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn slow_socket_reader_resyncs_at_a_keyframe() {
    // The client's tiny receive window stalls the viewer's writes while the
    // hub pushes 52 blocks of 256 KiB through a channel of capacity 4; the
    // last four left in the channel are 48, 49, 50 (keyframe), 51.
    const BIG: usize = 256 * 1024;
    let (pushed_tx, pushed) = oneshot::channel();
    let mut pushed_tx = Some(pushed_tx);
    let mut server = start(
        ViewerLimits::default(),
        Duration::from_secs(5),
        move |_, reply| {
            let (tx, live) = broadcast::channel(4);
            let _ = reply.send(Ok(ViewerStream {
                viewer: ViewerId(10),
                backlog: Vec::new(),
                live,
            }));
            let done = pushed_tx.take();
            tokio::spawn(async move {
                for seq in 0..52 {
                    let _ = tx.send(block(seq, seq % 10 == 0, BIG));
                    tokio::task::yield_now().await;
                }
                drop(tx);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            });
        },
    )
    .await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = within(socket.connect(server.addr)).await.unwrap();
    within(stream.write_all(b"GET /live/slow.ts HTTP/1.1\r\n\r\n"))
        .await
        .unwrap();
    within(pushed).await.unwrap();
    let mut bytes = Vec::new();
    within(stream.read_to_end(&mut bytes)).await.unwrap();
    let reply = Reply::parse(&bytes);
    let seqs = seqs_in(&reply.body, BIG);
    let left = within(server.leaves.recv()).await.unwrap();
    assert_eq!(left.delivered, seqs.len() as u64);
    assert_eq!(left.delivered + left.skipped, 52, "{left:?}");
    assert_eq!(seqs.last(), Some(&51));
    assert_eq!(server.stats.lagged_resyncs.load(Ordering::Relaxed), 1);
    for pair in seqs.windows(2) {
        assert!(pair[0] < pair[1], "in order: {seqs:?}");
        if pair[1] != pair[0] + 1 {
            assert_eq!(pair[1] % 10, 0, "resumes at a keyframe: {seqs:?}");
        }
    }
}
