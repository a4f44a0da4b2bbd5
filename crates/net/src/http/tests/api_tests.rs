//! Coordinator API over real sockets against a fake coordinator (V2, X3).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{exchange, get, within};
use crate::etcd::Leadership;
use crate::http::coordinator_api::{serve_api_with, ApiRequest, ApiStats, WatchAnswer};
use crate::http::operator_auth::sign;
use crate::http::LeaderView;
use crate::link::ClusterKey;

const KEY: ClusterKey = ClusterKey([3; 32]);

/// A `Watch` as the fake coordinator saw it.
#[derive(Debug)]
struct Watched {
    channel: String,
    region: Option<String>,
    client: SocketAddr,
}

struct Api {
    addr: SocketAddr,
    stats: Arc<ApiStats>,
    watched: mpsc::UnboundedReceiver<Watched>,
}

/// Starts the API with a fake coordinator: `missing` is not found, `busy` is
/// unavailable, `silent` is never answered, any other channel is redirected
/// to a relay named after the region.
async fn start(reply_timeout: Duration) -> Api {
    start_with(reply_timeout, None).await
}

/// [`start`], with an election's view for `GET /leader`.
async fn start_with(reply_timeout: Duration, leader: Option<LeaderView>) -> Api {
    let listener = within(TcpListener::bind("127.0.0.1:0")).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(ApiStats::default());
    let (requests, mut coordinator) = mpsc::channel(64);
    let (watched_tx, watched) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut unanswered = Vec::new();
        while let Some(request) = coordinator.recv().await {
            match request {
                ApiRequest::ApplyPolicy { source, reply } => {
                    let _ = reply.send(if source.contains("bad") {
                        Err("line 2: bad rule".into())
                    } else {
                        Ok(source.lines().count())
                    });
                }
                ApiRequest::SetPublishKeys { digests, reply, .. } => {
                    let _ = reply.send(Ok(digests.len()));
                }
                ApiRequest::Status { reply } => {
                    let _ = reply.send(serde_json::json!({"nodes": 3, "channels": ["a"]}));
                }
                ApiRequest::Metrics { reply } => {
                    let _ = reply.send("# TYPE tiercast_x gauge\ntiercast_x 1\n".into());
                }
                ApiRequest::Watch {
                    channel,
                    region,
                    client,
                    reply,
                    ..
                } => {
                    let answer = match channel.as_str() {
                        "missing" => WatchAnswer::NotFound("no channel named missing".into()),
                        "blocked" => WatchAnswer::Refused {
                            status: 451,
                            reason: "not in your region".into(),
                        },
                        "busy" => WatchAnswer::Unavailable {
                            retry_after_s: 4,
                            reason: "no relay has room".into(),
                        },
                        "silent" => {
                            unanswered.push(reply);
                            continue;
                        }
                        _ => {
                            let relay = region.as_deref().unwrap_or("default");
                            WatchAnswer::Redirect(format!(
                                "http://{relay}.relay:8080/live/{channel}.ts"
                            ))
                        }
                    };
                    let _ = watched_tx.send(Watched {
                        channel,
                        region,
                        client,
                    });
                    let _ = reply.send(answer);
                }
            }
        }
    });
    tokio::spawn(serve_api_with(
        listener,
        requests,
        stats.clone(),
        100,
        reply_timeout,
        KEY,
        leader,
    ));
    Api {
        addr,
        stats,
        watched,
    }
}

#[tokio::test]
async fn api_watch_redirects_with_location() {
    let mut api = start(Duration::from_secs(5)).await;
    let reply = get(api.addr, "/watch/x").await;
    assert_eq!(reply.status, 302);
    assert!(reply.head.starts_with("HTTP/1.1 302 Found\r\n"));
    assert_eq!(
        reply.header("location").as_deref(),
        Some("http://default.relay:8080/live/x.ts")
    );
    let watched = within(api.watched.recv()).await.unwrap();
    assert_eq!(
        (watched.channel.as_str(), watched.region.as_deref()),
        ("x", None)
    );
    assert!(watched.client.ip().is_loopback());
    assert_eq!(api.stats.redirects.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn api_watch_ts_suffix_and_region_are_passed() {
    let mut api = start(Duration::from_secs(5)).await;
    let reply = get(api.addr, "/watch/x.ts?region=eu-west").await;
    assert_eq!(reply.status, 302);
    assert_eq!(
        reply.header("location").as_deref(),
        Some("http://eu-west.relay:8080/live/x.ts")
    );
    let watched = within(api.watched.recv()).await.unwrap();
    assert_eq!(watched.region.as_deref(), Some("eu-west"));
}

#[tokio::test]
async fn api_watch_refusals_map_to_404_and_503() {
    let api = start(Duration::from_secs(5)).await;
    let missing = get(api.addr, "/watch/missing").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body_text().contains("no channel named missing"));
    let busy = get(api.addr, "/watch/busy.ts").await;
    assert_eq!(busy.status, 503);
    assert_eq!(busy.header("retry-after").as_deref(), Some("4"));
    assert!(busy.body_text().contains("no relay has room"));
}

#[tokio::test]
async fn api_reply_timeout_is_503() {
    let api = start(Duration::from_millis(100)).await;
    let reply = get(api.addr, "/watch/silent").await;
    assert_eq!(reply.status, 503);
    assert!(reply.header("retry-after").is_some());
    assert!(reply.body_text().contains("did not answer"));
}

#[tokio::test]
async fn api_metrics_is_the_prometheus_text_format() {
    let api = start(Duration::from_secs(5)).await;
    let reply = get(api.addr, "/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(reply.body, b"# TYPE tiercast_x gauge\ntiercast_x 1\n");
}

#[tokio::test]
async fn api_status_returns_json() {
    let api = start(Duration::from_secs(5)).await;
    let reply = get(api.addr, "/status").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(value["nodes"], 3);
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string())
    );
}

#[tokio::test]
async fn api_health_ok_and_unknown_path_404() {
    let api = start(Duration::from_secs(5)).await;
    let health = get(api.addr, "/health").await;
    assert_eq!((health.status, health.body_text().as_str()), (200, "ok\n"));
    let unknown = get(api.addr, "/nope").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body_text().contains("/watch/<channel>"));
}

#[tokio::test]
async fn api_leader_answers_from_the_election_view_without_asking_the_coordinator() {
    let (tx, rx) = tokio::sync::watch::channel(Leadership::Standby {
        leader: Some("127.0.0.1:7000".into()),
    });
    // What the election read from etcd: manager 0's holder.
    let mut map = crate::etcd::Directory::default();
    map.holders.insert(0, "127.0.0.1:7000".into());
    let (dir_tx, dir_rx) = tokio::sync::watch::channel(map);
    let view = LeaderView::new(rx, dir_rx, "127.0.0.1:7001".into());
    // A coordinator that never answers: `/leader` does not wait for it.
    let api = start_with(Duration::from_secs(5), Some(view)).await;
    let reply = get(api.addr, "/leader").await;
    assert_eq!(reply.status, 200);
    let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(value, serde_json::json!({ "leader": "127.0.0.1:7000" }));
    assert_eq!(api.stats.status_requests.load(Ordering::Relaxed), 0);
    // What a node's probe reads from it.
    let probe = crate::node_driver::leader_probe::ask_leader;
    let timeout = Duration::from_secs(2);
    let named = within(probe(api.addr, 0, timeout)).await.unwrap();
    assert_eq!(named, Some("127.0.0.1:7000".parse().unwrap()));
    tx.send_replace(Leadership::Standby { leader: None });
    dir_tx.send_replace(crate::etcd::Directory::default());
    assert_eq!(within(probe(api.addr, 0, timeout)).await.unwrap(), None);
    // Without an election nobody is named.
    let plain = start(Duration::from_secs(5)).await;
    assert_eq!(within(probe(plain.addr, 0, timeout)).await.unwrap(), None);
}

#[tokio::test]
async fn api_bad_requests_are_400_405_431() {
    let api = start(Duration::from_secs(5)).await;
    let bad_name = get(api.addr, "/watch/no.such.name").await;
    assert_eq!(bad_name.status, 400);
    assert!(bad_name.body_text().contains("invalid channel name"));
    assert_eq!(get(api.addr, "/watch/x?region=a.b").await.status, 400);
    assert_eq!(exchange(api.addr, b"GET\r\n\r\n").await.status, 400);
    assert_eq!(
        exchange(api.addr, b"\x16\x03\x01garbage\r\n\r\n")
            .await
            .status,
        400
    );
    let delete = exchange(api.addr, b"DELETE /watch/x HTTP/1.1\r\n\r\n").await;
    assert_eq!(delete.status, 405);
    let big = format!(
        "GET /health HTTP/1.1\r\nCookie: {}\r\n\r\n",
        "c".repeat(17_000)
    );
    assert_eq!(exchange(api.addr, big.as_bytes()).await.status, 431);
    assert_eq!(api.stats.bad_requests.load(Ordering::Relaxed), 6);
}

fn post_policy(body: &str, auth: Option<String>) -> Vec<u8> {
    post_to("/policy", body, auth)
}

fn post_to(path: &str, body: &str, auth: Option<String>) -> Vec<u8> {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn api_publish_keys_need_a_signature_and_valid_keys() {
    let api = start(Duration::from_secs(5)).await;
    let path = "/publish-keys/live";
    let signed = |body: &str| Some(sign(&KEY, path, unix_now(), body.as_bytes()));
    let body = "k-one\n# a comment\nlive k-two\nother k-three\n";
    let reply = exchange(api.addr, &post_to(path, body, None)).await;
    assert_eq!(reply.status, 401, "{}", reply.body_text());
    let reply = exchange(api.addr, &post_to(path, body, signed(body))).await;
    assert_eq!(
        (reply.status, reply.body_text().trim()),
        (200, "ok: 2 publish keys for channel 'live'")
    );
    let bad = "has/slash\n";
    let reply = exchange(api.addr, &post_to(path, bad, signed(bad))).await;
    assert_eq!(reply.status, 400, "{}", reply.body_text());
    assert!(
        reply.body_text().contains("not allowed"),
        "{}",
        reply.body_text()
    );
    let path = "/publish-keys/no%20such";
    let reply = exchange(
        api.addr,
        &post_to(
            path,
            body,
            Some(sign(&KEY, path, unix_now(), body.as_bytes())),
        ),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body_text());
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn api_policy_needs_a_signature_by_the_cluster_key_and_answers_the_check() {
    let api = start(Duration::from_secs(5)).await;
    let body = "a = 1\nb = 2\n";
    let signed =
        |key: &ClusterKey, body: &str| Some(sign(key, "/policy", unix_now(), body.as_bytes()));
    let reply = exchange(api.addr, &post_policy(body, None)).await;
    assert_eq!(reply.status, 401, "{}", reply.body_text());
    let reply = exchange(
        api.addr,
        &post_policy(body, signed(&ClusterKey([4; 32]), body)),
    )
    .await;
    assert_eq!(reply.status, 401, "{}", reply.body_text());
    // Signed for another body.
    let reply = exchange(api.addr, &post_policy(body, signed(&KEY, "other"))).await;
    assert_eq!(reply.status, 401, "{}", reply.body_text());
    assert_eq!(api.stats.unauthorized.load(Ordering::Relaxed), 3);
    let reply = exchange(api.addr, &post_policy(body, signed(&KEY, body))).await;
    assert_eq!(
        (reply.status, reply.body_text().trim()),
        (200, "ok: 2 rules")
    );
    let bad = "x\nbad\n";
    let reply = exchange(api.addr, &post_policy(bad, signed(&KEY, bad))).await;
    assert_eq!(
        (reply.status, reply.body_text().trim()),
        (400, "line 2: bad rule")
    );
    let reply = get(api.addr, "/policy").await;
    assert_eq!(reply.status, 405);
    // Only /policy takes a body.
    let reply = exchange(
        api.addr,
        b"GET /status HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await;
    assert_eq!(reply.status, 413);
}

#[tokio::test]
async fn api_watch_refused_by_policy_is_451_with_the_reason() {
    let api = start(Duration::from_secs(5)).await;
    let reply = get(api.addr, "/watch/blocked?region=cn").await;
    assert_eq!(reply.status, 451);
    assert!(reply
        .head
        .starts_with("HTTP/1.1 451 Unavailable For Legal Reasons\r\n"));
    assert_eq!(reply.body_text().trim(), "not in your region");
}
