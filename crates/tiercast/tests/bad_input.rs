//! Bad input gets a clear answer and harms nothing (Must show 5 of the foundation
//! issue): malformed and oversized frames from an admitted node, a node without the
//! cluster key, an unknown channel, a full relay and a full tier. In-process, real
//! sockets; the non-TS ingest cases are in `tiercast-net`'s ingest tests.

mod support;

use std::time::Duration;
use support::*;
use tiercast_coordinator::CoordinatorConfig;
use tiercast_net::coordinator_driver::{spawn_coordinator, CoordinatorHandle, CoordinatorRuntime};
use tiercast_net::endpoint::CoordinatorUrl;
use tiercast_net::http::ViewerLimits;
use tiercast_net::link::{ClusterKey, LinkConfig, LinkEvent, Links};
use tiercast_net::node_driver::{spawn_node, NodeHandle, NodeRuntime};
use tiercast_net::origin::{spawn_origin, OriginHandle, OriginRuntime, OriginSource};
use tiercast_node::NodeConfig;
use tiercast_proto::{ChannelId, Message, NodeId, NodeRole, OriginKey};

async fn coordinator(key: &ClusterKey) -> (CoordinatorHandle, CoordinatorUrl) {
    let c = spawn_coordinator(CoordinatorRuntime {
        listen: "127.0.0.1:0".parse().unwrap(),
        cluster_key: key.clone(),
        config: CoordinatorConfig::default(),
        data_dir: None,
        history_save_ms: tiercast_net::coordinator_driver::HISTORY_SAVE_MS,
        election: None,
        net_emulation: None,
    })
    .await
    .unwrap();
    let url = CoordinatorUrl::parse(&c.url()).await.unwrap();
    (c, url)
}

fn runtime(
    id: u32,
    role: NodeRole,
    tier: u8,
    capacity: u32,
    key: &ClusterKey,
    url: &CoordinatorUrl,
) -> NodeRuntime {
    NodeRuntime {
        node: NodeConfig {
            id: NodeId(id),
            role,
            tier,
            capacity,
            min_threshold: capacity.min(2),
            ..NodeConfig::default()
        },
        cluster_key: key.clone(),
        coordinator: url.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: (role == NodeRole::Relay).then(|| "127.0.0.1:0".parse().unwrap()),
        viewer_limits: ViewerLimits::default(),
        live_queue_blocks: 64,
        playout: None,
        net_emulation: None,
    }
}

async fn origin(key: &ClusterKey, url: &CoordinatorUrl) -> OriginHandle {
    spawn_origin(OriginRuntime {
        node: runtime(1, NodeRole::Origin, 0, 10, key, url),
        channel: "live".into(),
        source: OriginSource::TestSource { kbps: 500 },
        key: OriginKey::generate().unwrap(),
        seq: None,
        announce_timeout: Duration::from_secs(10),
        flush_after_ms: 200,
        cutter: tiercast_media::CutterConfig::default(),
        backup: None,
    })
    .await
    .unwrap()
}

async fn registered(h: &NodeHandle) -> bool {
    for _ in 0..100 {
        if h.snapshot().await.is_some_and(|s| s.registered) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn get(url: String, read_for: Duration) -> HttpResponse {
    tokio::task::spawn_blocking(move || http_get(&url, read_for))
        .await
        .unwrap()
        .expect("HTTP request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_are_dropped_and_the_relay_survives() {
    let key = ClusterKey::dev_default();
    let (_c, url) = coordinator(&key).await;
    let relay = spawn_node(runtime(11, NodeRole::Relay, 1, 10, &key, &url))
        .await
        .unwrap();
    assert!(registered(&relay).await);

    // An admitted peer that misbehaves.
    let (peer, mut events) = Links::bind(
        "127.0.0.1:0".parse().unwrap(),
        LinkConfig::new(NodeId(777), key.clone()),
    )
    .await
    .unwrap();
    peer.set_address(NodeId(11), relay.addr);
    peer.send(
        NodeId(11),
        Message::Logoff {
            channel: ChannelId(9),
        },
    )
    .unwrap();
    let up = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = events.recv().await {
            if matches!(e, LinkEvent::Up { .. }) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(up, Ok(true));
    // A frame with an unknown version, then one longer than any limit.
    peer.send_raw_for_test(
        NodeId(11),
        bytes::Bytes::from_static(b"\x00\x00\x00\x05\x09\x00abc"),
    )
    .unwrap();
    peer.send_raw_for_test(NodeId(11), bytes::Bytes::from_static(b"\x7f\xff\xff\xff"))
        .unwrap();
    // The relay is still there: it answers a LOGIN (refusing it, the channel is not carried).
    let (peer2, mut events2) = Links::bind(
        "127.0.0.1:0".parse().unwrap(),
        LinkConfig::new(NodeId(778), key.clone()),
    )
    .await
    .unwrap();
    peer2.set_address(NodeId(11), relay.addr);
    peer2
        .send(
            NodeId(11),
            Message::Login {
                channel: ChannelId(9),
                from_seq: None,
                feed: tiercast_proto::Feed::All,
            },
        )
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = events2.recv().await {
            if let LinkEvent::Message { msg, .. } = e {
                return Some(msg);
            }
        }
        None
    })
    .await
    .unwrap();
    assert!(
        matches!(answer, Some(Message::LoginDenied { .. })),
        "got {answer:?}"
    );
    // The bad frames came on another connection: nothing orders them before the
    // LOGIN's answer, so wait (bounded) for the relay to have counted them.
    let mut snap = relay.snapshot().await.unwrap();
    for _ in 0..50 {
        if snap.bad_frames >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        snap = relay.snapshot().await.unwrap();
    }
    assert!(
        snap.bad_frames >= 2,
        "bad frames counted: {}",
        snap.bad_frames
    );
    assert!(snap.registered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_cluster_key_is_refused() {
    let key = ClusterKey::dev_default();
    let (c, url) = coordinator(&key).await;
    let wrong = ClusterKey([7u8; 32]);
    let intruder = spawn_node(runtime(66, NodeRole::Relay, 1, 10, &wrong, &url))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snap = intruder.snapshot().await.unwrap();
    assert!(
        !snap.registered,
        "a node with the wrong key never registers"
    );
    let status = c.status().await.unwrap();
    assert_eq!(
        status["nodes"].as_array().unwrap().len(),
        0,
        "the coordinator knows no node: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_channel_full_relay_and_full_tier_get_clear_answers() {
    let key = ClusterKey::dev_default();
    let (_c, url) = coordinator(&key).await;
    let a = spawn_node(runtime(21, NodeRole::Relay, 1, 1, &key, &url))
        .await
        .unwrap();
    let b = spawn_node(runtime(22, NodeRole::Relay, 1, 1, &key, &url))
        .await
        .unwrap();
    assert!(registered(&a).await && registered(&b).await);
    let _o = origin(&key, &url).await;

    // Unknown channel: 404 with a reason, at the coordinator and (via redirect) at a relay.
    let r = get(
        format!("{}/watch/nope", url.base),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("unknown channel"),
        "reason given: {}",
        r.text()
    );
    let a_http = format!("http://{}", a.http_addr.unwrap());
    let r = get(format!("{a_http}/live/nope.ts"), Duration::from_millis(500)).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("Location"),
        Some(format!("{}/watch/nope.ts", url.base).as_str())
    );

    // Viewer 1 takes the first relay (capacity 1) and keeps reading.
    let base = url.base.clone();
    let v1 = tokio::task::spawn_blocking(move || {
        http_get_follow(&format!("{base}/watch/live"), Duration::from_secs(4))
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // That relay is now full: asked directly, it sends the viewer back to the coordinator.
    let full = if a.snapshot().await.unwrap().load == 1 {
        &a
    } else {
        &b
    };
    let r = get(
        format!("http://{}/live/live.ts", full.http_addr.unwrap()),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(r.status, 302, "a full relay redirects");
    assert!(r.header("Location").unwrap().contains("/watch/live"));
    // Viewer 2 goes to the other relay; viewer 3 finds the whole tier full: 503 + Retry-After.
    let base = url.base.clone();
    let v2 = tokio::task::spawn_blocking(move || {
        http_get_follow(&format!("{base}/watch/live"), Duration::from_secs(2))
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = get(
        format!("{}/watch/live", url.base),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(r.status, 503, "whole tier full");
    assert!(r.header("Retry-After").is_some());
    assert!(r.text().contains("full"), "reason given: {}", r.text());
    let (l1, r1) = v1.await.unwrap().unwrap();
    let (l2, r2) = v2.await.unwrap().unwrap();
    assert_eq!((r1.status, r2.status), (200, 200));
    assert_ne!(l1, l2, "the two viewers were placed on different relays");
    assert!(!r1.body.is_empty() && !r2.body.is_empty());
}
