//! Link tests over loopback QUIC (X3, V9): exchange of control messages and
//! blocks, refusal of a node without the cluster key, malformed and oversized
//! frames, unknown peers, disconnects and simultaneous dials. Every await is
//! bounded by a timeout; nothing sleeps on a fixed schedule.

use super::*;
use bytes::{BufMut, Bytes, BytesMut};
use std::future::Future;
use std::time::Instant;
use tiercast_proto::{Block, ChannelId, Timestamp};
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
}

async fn node(id: u32, key: ClusterKey) -> (Links, Receiver<LinkEvent>) {
    node_with(LinkConfig::new(NodeId(id), key)).await
}

async fn node_with(cfg: LinkConfig) -> (Links, Receiver<LinkEvent>) {
    let listen = "127.0.0.1:0".parse().expect("literal address");
    within("bind", Links::bind(listen, cfg))
        .await
        .expect("bind on loopback")
}

async fn next_event(rx: &mut Receiver<LinkEvent>) -> LinkEvent {
    within("a link event", rx.recv())
        .await
        .expect("event stream open")
}

/// The next message, skipping `Up` events; panics on `Down`.
async fn next_message(rx: &mut Receiver<LinkEvent>) -> (NodeId, Message) {
    loop {
        match next_event(rx).await {
            LinkEvent::Message { from, msg } => return (from, msg),
            LinkEvent::Up { .. } => {}
            LinkEvent::Down { peer, reason } => panic!("unexpected Down from {peer}: {reason}"),
        }
    }
}

async fn next_down(rx: &mut Receiver<LinkEvent>) -> (NodeId, String) {
    loop {
        match next_event(rx).await {
            LinkEvent::Down { peer, reason } => return (peer, reason),
            LinkEvent::Message { from, msg } => panic!("unexpected {} from {from}", msg.kind()),
            LinkEvent::Up { .. } => {}
        }
    }
}

fn login() -> Message {
    Message::Login {
        channel: ChannelId(7),
        from_seq: Some(3),
        feed: tiercast_proto::Feed::All,
    }
}

fn block(seq: u64, len: usize) -> Message {
    let payload = Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    Message::Block(Block::new(
        ChannelId(7),
        seq,
        Timestamp(seq * 1000),
        seq == 0,
        payload,
    ))
}

/// Two admitted nodes, `a` having dialed `b` (and `b` knowing `a`'s address).
async fn connected_pair(
    b_cfg: LinkConfig,
) -> (Links, Receiver<LinkEvent>, Links, Receiver<LinkEvent>) {
    let key = b_cfg.cluster_key.clone();
    let (a, mut a_rx) = node(1, key).await;
    let (b, mut b_rx) = node_with(b_cfg).await;
    a.set_address(b.node_id(), b.local_addr());
    a.send(b.node_id(), login()).expect("queue login");
    assert!(matches!(
        next_event(&mut b_rx).await,
        LinkEvent::Up {
            peer: NodeId(1),
            ..
        }
    ));
    assert_eq!(next_message(&mut b_rx).await, (NodeId(1), login()));
    assert!(matches!(
        next_event(&mut a_rx).await,
        LinkEvent::Up {
            peer: NodeId(2),
            ..
        }
    ));
    (a, a_rx, b, b_rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_60k_blocks_cross_in_both_directions() {
    init_tracing();
    let key = ClusterKey::random();
    let (a, mut a_rx, b, mut b_rx) = connected_pair(LinkConfig::new(NodeId(2), key)).await;

    // b answers on the connection a dialed (it learned a's address from it).
    b.send(NodeId(1), login()).expect("queue login back");
    assert_eq!(next_message(&mut a_rx).await, (NodeId(2), login()));

    let big = block(0, 60 * 1024);
    let started = Instant::now();
    a.send(NodeId(2), big.clone()).expect("queue block a->b");
    assert_eq!(next_message(&mut b_rx).await, (NodeId(1), big.clone()));
    let a_to_b = started.elapsed();
    let started = Instant::now();
    b.send(NodeId(1), big.clone()).expect("queue block b->a");
    assert_eq!(next_message(&mut a_rx).await, (NodeId(2), big));
    let b_to_a = started.elapsed();
    eprintln!("60 KiB block over loopback QUIC: a->b {a_to_b:?}, b->a {b_to_a:?}");

    // A burst, to see blocks queue and arrive in order (timing printed, not asserted).
    const BURST: u64 = 200;
    let started = Instant::now();
    for seq in 1..=BURST {
        a.send(NodeId(2), block(seq, 60 * 1024))
            .expect("queue burst block");
    }
    for seq in 1..=BURST {
        match next_message(&mut b_rx).await {
            (_, Message::Block(b)) => assert_eq!(b.seq, seq),
            (_, other) => panic!("expected a block, got {}", other.kind()),
        }
    }
    let elapsed = started.elapsed();
    let mib = (BURST * 60 * 1024) as f64 / (1024.0 * 1024.0);
    eprintln!(
        "{BURST} x 60 KiB blocks over loopback QUIC: {elapsed:?} ({:.0} MiB/s)",
        mib / elapsed.as_secs_f64()
    );

    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.connections, sb.connections), (1, 1));
    assert_eq!(sa.frames_out, 2 + BURST);
    assert_eq!(sb.frames_in, 2 + BURST);
    assert_eq!(
        (sa.bad_frames, sb.bad_frames, sb.refused_admissions),
        (0, 0, 0)
    );
    assert!(sb.bytes_in >= BURST * 60 * 1024);
    within("close a", a.close()).await;
    within("close b", b.close()).await;
}

#[tokio::test]
async fn node_with_another_cluster_key_is_refused() {
    init_tracing();
    let (listener, mut listener_rx) = node(1, ClusterKey::random()).await;
    let (intruder, mut intruder_rx) = node(2, ClusterKey::random()).await;
    intruder.set_address(NodeId(1), listener.local_addr());
    intruder.send(NodeId(1), login()).expect("queue login");

    let (peer, reason) = next_down(&mut intruder_rx).await;
    assert_eq!(peer, NodeId(1));
    assert!(reason.contains("not admitted"), "reason: {reason}");
    assert_eq!(listener.stats().refused_admissions, 1);
    assert_eq!(listener.stats().connections, 0);
    assert_eq!(listener.stats().frames_in, 0);
    // Nothing at all reached the listener's consumer.
    let quiet = tokio::time::timeout(Duration::from_millis(200), listener_rx.recv()).await;
    assert!(quiet.is_err(), "listener got an event: {quiet:?}");
}

#[tokio::test]
async fn node_claiming_our_own_id_is_refused() {
    let key = ClusterKey::random();
    let (listener, _listener_rx) = node(1, key.clone()).await;
    let (twin, mut twin_rx) = node(1, key).await;
    let (_, reason) = {
        // `send` refuses our own id, so dial through a second name for the listener.
        twin.set_address(NodeId(9), listener.local_addr());
        twin.send(NodeId(9), login()).expect("queue login");
        next_down(&mut twin_rx).await
    };
    assert!(reason.contains("not admitted"), "reason: {reason}");
    assert_eq!(listener.stats().refused_admissions, 1);
}

fn raw_frame(len_field: u32, body: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u32(len_field);
    out.extend_from_slice(body);
    out.freeze()
}

#[tokio::test]
async fn malformed_and_oversized_frames_are_counted_and_skipped() {
    init_tracing();
    let mut b_cfg = LinkConfig::new(NodeId(2), ClusterKey::random());
    b_cfg.max_frame_bytes = 16 * 1024;
    let (a, _a_rx, b, mut b_rx) = connected_pair(b_cfg).await;

    // Valid length, protocol version 9.
    let wrong_version = [&[9u8, 0][..], &[0u8; 10][..]].concat();
    a.send_raw_for_test(
        NodeId(2),
        raw_frame(wrong_version.len() as u32, &wrong_version),
    )
    .expect("raw frame");
    // Version 1, control kind, garbage postcard.
    let garbage = [1u8, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07];
    a.send_raw_for_test(NodeId(2), raw_frame(garbage.len() as u32, &garbage))
        .expect("raw frame");
    // A length over b's limit, with that many bytes following.
    let oversized = vec![0xabu8; 20_000];
    a.send_raw_for_test(NodeId(2), raw_frame(oversized.len() as u32, &oversized))
        .expect("raw frame");
    let after = Message::Logoff {
        channel: ChannelId(7),
    };
    a.send(NodeId(2), after.clone()).expect("queue logoff");

    assert_eq!(next_message(&mut b_rx).await, (NodeId(1), after));
    let s = b.stats();
    assert_eq!((s.bad_frames, s.oversized_frames), (2, 1));
    assert_eq!(s.connections, 1, "the connection stays up");
    // Sending a frame over our own limit is refused before it is queued.
    let too_big = block(1, 16 * 1024);
    assert!(matches!(
        b.send(NodeId(1), too_big),
        Err(LinkError::FrameTooLarge { .. })
    ));
}

#[tokio::test]
async fn full_send_queue_drops_and_counts() {
    let key = ClusterKey::random();
    let mut a_cfg = LinkConfig::new(NodeId(1), key.clone());
    a_cfg.send_queue_frames = 4;
    let (a, _a_rx) = node_with(a_cfg).await;
    let (b, mut b_rx) = node(2, key).await;
    a.set_address(NodeId(2), b.local_addr());
    // Single-threaded runtime: the dial cannot drain the queue between these calls.
    for seq in 0..4 {
        a.send(
            NodeId(2),
            Message::Login {
                channel: ChannelId(7),
                from_seq: Some(seq),
                feed: tiercast_proto::Feed::All,
            },
        )
        .expect("room in queue");
    }
    assert!(matches!(
        a.send(NodeId(2), login()),
        Err(LinkError::QueueFull(NodeId(2)))
    ));
    assert_eq!(a.stats().queue_full_drops, 1);
    for seq in 0..4 {
        let expected = Message::Login {
            channel: ChannelId(7),
            from_seq: Some(seq),
            feed: tiercast_proto::Feed::All,
        };
        assert_eq!(next_message(&mut b_rx).await, (NodeId(1), expected));
    }
}

#[tokio::test]
async fn garbage_hello_is_refused_without_harm() {
    let key = ClusterKey::random();
    let (listener, mut listener_rx) = node(1, key.clone()).await;
    // A client speaking our TLS and ALPN but sending a bad Hello.
    let client_cfg = tls::endpoint_configs(&LinkConfig::new(NodeId(5), key))
        .expect("tls config")
        .client;
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().expect("literal address"))
        .expect("client endpoint");
    client.set_default_client_config(client_cfg);
    let connecting = client
        .connect(listener.local_addr(), tls::SERVER_NAME)
        .expect("connect");
    let conn = within("handshake", connecting)
        .await
        .expect("tls handshake");
    let (mut send, _recv) = within("open stream", conn.open_bi()).await.expect("stream");
    within("write hello", send.write_all(&[b'X'; admission::HELLO_LEN]))
        .await
        .expect("write");
    let closed = within("close by listener", conn.closed()).await;
    let reason = connection::describe_close(&closed);
    assert!(
        reason.starts_with("not admitted: bad hello"),
        "reason: {reason}"
    );
    assert_eq!(listener.stats().refused_admissions, 1);
    let quiet = tokio::time::timeout(Duration::from_millis(100), listener_rx.recv()).await;
    assert!(quiet.is_err(), "listener got an event: {quiet:?}");
}

#[tokio::test]
async fn sending_to_unknown_peer_errors() {
    let (a, _rx) = node(1, ClusterKey::random()).await;
    assert!(matches!(
        a.send(NodeId(42), login()),
        Err(LinkError::UnknownAddress(NodeId(42)))
    ));
    assert!(matches!(
        a.send(NodeId(1), login()),
        Err(LinkError::OwnNodeId(NodeId(1)))
    ));
    assert!(matches!(
        a.send_raw_for_test(NodeId(42), Bytes::from_static(b"x")),
        Err(LinkError::NotConnected(NodeId(42)))
    ));
    within("close", a.close()).await;
    a.set_address(NodeId(42), "127.0.0.1:9".parse().expect("literal address"));
    assert!(matches!(
        a.send(NodeId(42), login()),
        Err(LinkError::Closed)
    ));
}

#[tokio::test]
async fn disconnect_brings_both_sides_down() {
    let key = ClusterKey::random();
    let (a, mut a_rx, b, mut b_rx) = connected_pair(LinkConfig::new(NodeId(2), key)).await;
    a.disconnect(NodeId(2));
    assert_eq!(next_down(&mut a_rx).await.0, NodeId(2));
    let (peer, reason) = next_down(&mut b_rx).await;
    assert_eq!((peer, reason.as_str()), (NodeId(1), "disconnected"));
    assert!(!a.is_connected(NodeId(2)));
    assert_eq!(a.stats().connections, 0);
    // The next send dials again.
    a.send(NodeId(2), login()).expect("queue login");
    assert_eq!(next_message(&mut b_rx).await, (NodeId(1), login()));
    assert!(b.is_connected(NodeId(1)));
}

#[tokio::test]
async fn dropping_the_last_handle_shuts_the_node_down() {
    let key = ClusterKey::random();
    let (a, a_rx, _b, mut b_rx) = connected_pair(LinkConfig::new(NodeId(2), key)).await;
    let clone = a.clone();
    drop(a);
    assert!(
        clone.is_connected(NodeId(2)),
        "a clone keeps the links open"
    );
    drop((clone, a_rx));
    let (peer, reason) = next_down(&mut b_rx).await;
    assert_eq!((peer, reason.as_str()), (NodeId(1), "node shutting down"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_lose_nothing() {
    init_tracing();
    let key = ClusterKey::random();
    let (a, mut a_rx) = node(1, key.clone()).await;
    let (b, mut b_rx) = node(2, key).await;
    a.set_address(NodeId(2), b.local_addr());
    b.set_address(NodeId(1), a.local_addr());
    const N: u64 = 50;
    for seq in 0..N {
        a.send(NodeId(2), block(seq, 1000)).expect("queue a->b");
        b.send(NodeId(1), block(seq, 1000)).expect("queue b->a");
    }
    for rx in [&mut a_rx, &mut b_rx] {
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < N as usize {
            match next_message(rx).await {
                (_, Message::Block(b)) => assert!(seen.insert(b.seq), "duplicate {}", b.seq),
                (_, other) => panic!("expected a block, got {}", other.kind()),
            }
        }
    }
    // Both ends keep the connection node 1 dialed; the other one is retired and
    // closes once both sides have drained it.
    let started = Instant::now();
    within("the duplicate connection to close", async {
        while a.stats().connections + b.stats().connections > 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    eprintln!(
        "simultaneous dial: one connection left after {:?}",
        started.elapsed()
    );
    // Both still deliver after the dust settles.
    a.send(NodeId(2), login()).expect("queue login a->b");
    b.send(NodeId(1), login()).expect("queue login b->a");
    assert_eq!(next_message(&mut b_rx).await, (NodeId(1), login()));
    assert_eq!(next_message(&mut a_rx).await, (NodeId(2), login()));
}

#[test]
fn config_validation_names_the_bad_limit() {
    let mut cfg = LinkConfig::new(NodeId(1), ClusterKey::dev_default());
    assert!(cfg.validate().is_ok());
    cfg.keep_alive_ms = cfg.idle_timeout_ms;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("keep_alive_ms"), "{err}");
    let cfg = LinkConfig {
        send_queue_frames: 0,
        ..LinkConfig::default()
    };
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .contains("send_queue_frames"));
}

/// Issue 13: bytes are split into media (blocks and recovery shards) and control
/// as the simulator splits them, whole frames each (`codec::frame_len`, the
/// simulator's `wire_bytes`); only `Block` messages count as block messages.
#[tokio::test]
async fn media_and_control_bytes_are_split_as_the_simulator_splits_them() {
    init_tracing();
    let key = ClusterKey::random();
    let (a, _a_rx, b, mut b_rx) = connected_pair(LinkConfig::new(NodeId(2), key)).await;
    let shard = Message::Shard {
        channel: ChannelId(7),
        group: 3,
        k: 4,
        n: 2,
        index: 5,
        data: vec![7; 900],
    };
    let sent = [block(1, 5000), shard.clone(), login(), block(2, 3000)];
    for m in &sent {
        a.send(NodeId(2), m.clone()).expect("queue");
    }
    for m in &sent {
        assert_eq!(&next_message(&mut b_rx).await.1, m);
    }
    let len = |m: &Message| tiercast_proto::codec::frame_len(m) as u64;
    let media = len(&sent[0]) + len(&shard) + len(&sent[3]);
    // connected_pair's login and this one.
    let control = 2 * len(&login());
    // The writer counts after its write returned: wait for it (bounded).
    within("a's writer counters", async {
        while a.stats().frames_out < 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.media_bytes_out, sa.control_bytes_out), (media, control));
    assert_eq!(sa.media_bytes_out + sa.control_bytes_out, sa.bytes_out);
    assert_eq!((sb.media_bytes_in, sb.control_bytes_in), (media, control));
    assert_eq!(sb.media_bytes_in + sb.control_bytes_in, sb.bytes_in);
    assert_eq!(sb.block_msgs_in, 2, "blocks, not shards");
    assert_eq!((sa.block_msgs_in, sa.media_bytes_in), (0, 0));
    assert_eq!(sb.coordinator_bytes_in, 0, "node 1 is not the coordinator");
    within("close a", a.close()).await;
    within("close b", b.close()).await;
}

/// A node's goodbye is not lost in its own close: what it queued right before
/// `close()` — here 40 frames of 60 KiB behind one another, so the writer is
/// still busy when the close begins — reaches the peer before the connection
/// goes. Before the drain, the endpoint closed at once and dropped the queue:
/// leaving peers' `Unwatch` rarely reached the coordinator (`tiercast cluster`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_queued_before_a_close_reach_the_peer() {
    init_tracing();
    let key = ClusterKey::random();
    let (a, _a_rx, _b, mut b_rx) = connected_pair(LinkConfig::new(NodeId(2), key)).await;
    for seq in 1..=40 {
        a.send(NodeId(2), block(seq, 60 * 1024))
            .expect("queue block");
    }
    a.send(NodeId(2), login()).expect("queue the goodbye");
    within("close", a.close()).await;
    for seq in 1..=40 {
        assert_eq!(
            next_message(&mut b_rx).await,
            (NodeId(1), block(seq, 60 * 1024))
        );
    }
    assert_eq!(next_message(&mut b_rx).await, (NodeId(1), login()));
}
