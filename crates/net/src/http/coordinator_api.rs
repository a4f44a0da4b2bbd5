//! The coordinator's HTTP API: `GET /watch/<channel>[.ts][?region=NAME]
//! [&feed=full|audio][&delay=SECONDS]` asks
//! the coordinator (through [`ApiRequest::Watch`]) where the viewer should go
//! and answers `302 Found` with `Location` — the relay's `/live/<channel>.ts`,
//! with `?feed=audio` / `?delay=N` when the policies give that feed (C3) — (or
//! 400 / 404 / 503); `GET /status` serves
//! the coordinator's JSON status; `GET /metrics` its Prometheus page (X4,
//! `crate::metrics::coordinator`); `GET /health` answers `ok`; `GET /leader`
//! who leads, from the election's view ([`super::leader_view`]); `POST /policy`
//! (signed with the cluster key, `operator_auth`) installs an operators' policy
//! file: `200 ok: N rules`, `400 line L: reason`, `401`.
//!
//! Features: V2 (redirect viewers to a relay), C3 (policies applied live), C4's
//! reason (`451` for a geo block), X3 (connection cap, head and body size and
//! time limits, reply timeout, clear errors). The server stops accepting
//! when the coordinator drops its `Receiver<ApiRequest>`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tiercast_proto::ids::valid_channel_name;
use tiercast_proto::viewer_feed::ViewerFeed;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::accept::{accept_loop, ConnectionCounters, BUSY_RETRY_AFTER_S};
use super::leader_view::{leader_json, LeaderView};
use super::operator_auth;
use super::request::{
    read_request, truncate, Method, RequestError, RequestHead, HEAD_TIMEOUT_MS, MAX_HEAD_BYTES,
};
use super::response::Response;
use crate::link::ClusterKey;
use tiercast_coordinator::policy_store::MAX_POLICY_BYTES;

/// Concurrent API connections at most.
pub const API_MAX_CONNECTIONS: usize = 10_000;
/// `POST /policy` bodies read at once at most.
pub const MAX_POLICY_UPLOADS: usize = 4;
/// How long a request may wait for the coordinator's answer.
pub const API_REPLY_TIMEOUT_MS: u64 = 5_000;

/// What the API asks of the coordinator.
pub enum ApiRequest {
    /// A viewer wants `channel`: where should it go?
    Watch {
        channel: String,
        /// From `?region=NAME`, if given and not empty.
        region: Option<String>,
        /// From `?feed=` and `?delay=` (C3): what the viewer asked for.
        feed: ViewerFeed,
        /// The viewer's address as seen by this server.
        client: SocketAddr,
        reply: oneshot::Sender<WatchAnswer>,
    },
    /// The coordinator's status as JSON.
    Status {
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// The coordinator's Prometheus page (`GET /metrics`, X4).
    Metrics { reply: oneshot::Sender<String> },
    /// An operator (signature checked) installs a policy file: the number of
    /// rules in force, or the refusal (`line L: reason`).
    ApplyPolicy {
        source: String,
        reply: oneshot::Sender<Result<usize, String>>,
    },
    /// An operator (signature checked) sets a channel's publish keys (X3,
    /// issue 17): their digests; the number in force, or the refusal.
    SetPublishKeys {
        channel: String,
        digests: Vec<[u8; 32]>,
        reply: oneshot::Sender<Result<usize, String>>,
    },
}

/// The coordinator's answer to a `Watch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchAnswer {
    /// `302 Found` to this absolute URL.
    Redirect(String),
    /// `404` with this reason.
    NotFound(String),
    /// `503` with `Retry-After`.
    Unavailable { retry_after_s: u32, reason: String },
    /// Refused by a policy: `451` (geo block) or `403`, with the reason.
    Refused { status: u16, reason: String },
}

/// Counters of the API server (read them any time; all relaxed).
#[derive(Debug, Default)]
pub struct ApiStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections open now.
    pub active: AtomicU64,
    /// Requests refused: connection limit, coordinator timeouts, 503 answers.
    pub refused: AtomicU64,
    /// Requests answered 400 / 404 / 405 / 408 / 431 before reaching the coordinator.
    pub bad_requests: AtomicU64,
    /// `Watch` requests handed to the coordinator.
    pub watches: AtomicU64,
    /// `Watch` requests answered with a redirect.
    pub redirects: AtomicU64,
    /// `Status` requests handed to the coordinator.
    pub status_requests: AtomicU64,
    /// `POST /policy` refused for a missing or wrong signature.
    pub unauthorized: AtomicU64,
}

impl ConnectionCounters for ApiStats {
    fn connections(&self) -> &AtomicU64 {
        &self.connections
    }
    fn active(&self) -> &AtomicU64 {
        &self.active
    }
    fn refused(&self) -> &AtomicU64 {
        &self.refused
    }
}

/// Serves the API on `listener` until the coordinator drops the receiving end
/// of `requests`; operator requests must be signed with `operator_key`;
/// `leader` answers `GET /leader` (`None`: no election).
pub async fn serve_api(
    listener: TcpListener,
    requests: mpsc::Sender<ApiRequest>,
    stats: Arc<ApiStats>,
    operator_key: ClusterKey,
    leader: Option<LeaderView>,
) {
    let reply_timeout = Duration::from_millis(API_REPLY_TIMEOUT_MS);
    serve_api_with(
        listener,
        requests,
        stats,
        API_MAX_CONNECTIONS,
        reply_timeout,
        operator_key,
        leader,
    )
    .await
}

struct Context {
    requests: mpsc::Sender<ApiRequest>,
    reply_timeout: Duration,
    stats: Arc<ApiStats>,
    operator_key: ClusterKey,
    policy_uploads: Arc<tokio::sync::Semaphore>,
    leader: Option<LeaderView>,
}

pub(crate) async fn serve_api_with(
    listener: TcpListener,
    requests: mpsc::Sender<ApiRequest>,
    stats: Arc<ApiStats>,
    max_connections: usize,
    reply_timeout: Duration,
    operator_key: ClusterKey,
    leader: Option<LeaderView>,
) {
    let context = Arc::new(Context {
        requests: requests.clone(),
        reply_timeout,
        stats: stats.clone(),
        operator_key,
        policy_uploads: Arc::new(tokio::sync::Semaphore::new(MAX_POLICY_UPLOADS)),
        leader,
    });
    let until = async move { requests.closed().await };
    accept_loop(
        "api",
        listener,
        max_connections,
        stats,
        until,
        |stream, peer| serve_connection(stream, peer, context.clone()),
    )
    .await
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Health,
    Status,
    Metrics,
    /// Who holds `manager` (`None`: the id this process stands for).
    Leader {
        manager: Option<u16>,
    },
    ApplyPolicy,
    SetPublishKeys {
        channel: String,
    },
    Watch {
        channel: String,
        region: Option<String>,
        feed: ViewerFeed,
    },
}

fn route(head: &RequestHead) -> Result<Route, Response> {
    if let Some(channel) = head.path.strip_prefix("/publish-keys/") {
        return match &head.method {
            Method::Other(m) if m == "POST" => Ok(Route::SetPublishKeys {
                channel: channel.to_string(),
            }),
            _ => Err(Response::text(
                405,
                "use POST /publish-keys/<channel> with the keys (one a line) as the body",
            )
            .header("Allow", "POST")),
        };
    }
    if head.path == "/policy" {
        return match &head.method {
            Method::Other(m) if m == "POST" => Ok(Route::ApplyPolicy),
            _ => Err(
                Response::text(405, "use POST /policy with the policy file as the body")
                    .header("Allow", "POST"),
            ),
        };
    }
    if let Method::Other(method) = &head.method {
        return Err(Response::text(
            405,
            format!(
                "method {} not allowed: use GET or HEAD",
                truncate(method, 16)
            ),
        )
        .header("Allow", "GET, HEAD"));
    }
    match head.path.as_str() {
        "/health" => return Ok(Route::Health),
        "/status" => return Ok(Route::Status),
        "/metrics" => return Ok(Route::Metrics),
        "/leader" => {
            let manager = match head.query_param("manager") {
                None => None,
                Some(m) => Some(m.parse::<u16>().map_err(|_| {
                    Response::text(
                        400,
                        format!(
                            "manager {:?} is not a manager id (0..=65535)",
                            truncate(m, 16)
                        ),
                    )
                })?),
            };
            return Ok(Route::Leader { manager });
        }
        _ => {}
    }
    let Some(rest) = head.path.strip_prefix("/watch/") else {
        return Err(Response::text(
            404,
            format!(
                "no such path {:?}: try /watch/<channel>, /status, /metrics, /leader or /health",
                truncate(&head.path, 64)
            ),
        ));
    };
    let channel = rest.strip_suffix(".ts").unwrap_or(rest);
    if !valid_channel_name(channel) {
        return Err(Response::text(
            400,
            format!(
                "invalid channel name {:?}: use 1-64 characters of A-Z a-z 0-9 _ -",
                truncate(channel, 64)
            ),
        ));
    }
    let region = match head.query_param("region") {
        None | Some("") => None,
        Some(name) if valid_channel_name(name) => Some(name.to_string()),
        Some(name) => {
            return Err(Response::text(
                400,
                format!(
                    "invalid region {:?}: use 1-64 characters of A-Z a-z 0-9 _ -",
                    truncate(name, 64)
                ),
            ))
        }
    };
    let feed = ViewerFeed::from_params(head.query_param("feed"), head.query_param("delay"))
        .map_err(|e| Response::text(400, e.to_string()))?;
    Ok(Route::Watch {
        channel: channel.to_string(),
        region,
        feed,
    })
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, context: Arc<Context>) {
    let stats = &context.stats;
    let head_timeout = Duration::from_millis(HEAD_TIMEOUT_MS);
    // Only `POST /policy` and `POST /publish-keys/<channel>` take a body, and
    // only a few are read at once: an unauthenticated client cannot make the
    // server hold many large bodies.
    let mut upload_permit = None;
    let max_body = |head: &RequestHead| {
        if head.path != "/policy" && !head.path.starts_with("/publish-keys/") {
            return Ok(0);
        }
        match context.policy_uploads.clone().try_acquire_owned() {
            Ok(permit) => {
                upload_permit = Some(permit);
                Ok(MAX_POLICY_BYTES)
            }
            Err(_) => Err(RequestError::Busy(format!(
                "{MAX_POLICY_UPLOADS} policy uploads already in progress; retry shortly"
            ))),
        }
    };
    let request = read_request(&mut stream, MAX_HEAD_BYTES, max_body, head_timeout);
    let (head, body) = match request.await {
        Ok(read) => read,
        Err(e) => {
            debug!(%peer, reason = %e, "api request unreadable");
            if let Some(status) = e.status() {
                stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                let mut response = Response::text(status, e.to_string());
                if status == 503 {
                    response = response.header("Retry-After", BUSY_RETRY_AFTER_S.to_string());
                }
                response.send(stream, false).await;
            }
            return;
        }
    };
    let head_only = head.is_head();
    let response = match route(&head) {
        Ok(Route::Health) => Response::text(200, "ok"),
        Ok(Route::Leader { manager }) => Response::json(&leader_json(
            context.leader.as_ref(),
            manager,
            std::time::Instant::now(),
        )),
        Ok(Route::Status) => {
            stats.status_requests.fetch_add(1, Ordering::Relaxed);
            let (reply, answer) = oneshot::channel();
            match ask(&context, ApiRequest::Status { reply }, answer).await {
                Ok(value) => Response::json(&value),
                Err(response) => response,
            }
        }
        Ok(Route::Metrics) => {
            let (reply, answer) = oneshot::channel();
            match ask(&context, ApiRequest::Metrics { reply }, answer).await {
                Ok(page) => Response::metrics(page),
                Err(response) => response,
            }
        }
        Ok(Route::ApplyPolicy) => {
            let response = apply_policy(&context, &head, body).await;
            drop(upload_permit);
            response
        }
        Ok(Route::SetPublishKeys { channel }) => {
            let response = set_publish_keys(&context, &head, body, channel).await;
            drop(upload_permit);
            response
        }
        Ok(Route::Watch {
            channel,
            region,
            feed,
        }) => {
            stats.watches.fetch_add(1, Ordering::Relaxed);
            let (reply, answer) = oneshot::channel();
            let request = ApiRequest::Watch {
                channel: channel.clone(),
                region: region.clone(),
                feed,
                client: peer,
                reply,
            };
            match ask(&context, request, answer).await {
                Ok(WatchAnswer::Redirect(location)) => {
                    stats.redirects.fetch_add(1, Ordering::Relaxed);
                    debug!(%peer, channel, ?region, location, "watch redirected");
                    Response::redirect(&location)
                }
                Ok(WatchAnswer::NotFound(reason)) => Response::text(404, reason),
                Ok(WatchAnswer::Unavailable {
                    retry_after_s,
                    reason,
                }) => Response::unavailable(retry_after_s, reason),
                Ok(WatchAnswer::Refused { status, reason }) => Response::text(status, reason),
                Err(response) => response,
            }
        }
        Err(response) => {
            stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            response
        }
    };
    if response.status() >= 400 {
        if response.status() == 503 {
            stats.refused.fetch_add(1, Ordering::Relaxed);
        }
        debug!(%peer, path = truncate(&head.path, 64), status = response.status(), reason = response.body_text(), "api request refused");
    }
    response.send(stream, head_only).await;
}

/// An operator request's signature checked: `Err` is the `401` to send.
fn operator_verified(context: &Context, head: &RequestHead, body: &[u8]) -> Result<(), Response> {
    let now_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    operator_auth::verify(
        &context.operator_key,
        head.authorization.as_deref(),
        &head.path,
        now_unix_s,
        body,
    )
    .map_err(|e| {
        context.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        Response::text(401, e.to_string()).header("WWW-Authenticate", operator_auth::AUTH_SCHEME)
    })
}

/// `POST /publish-keys/<channel>`: the signature checked, the keys (a key file's
/// text: `KEY` or `CHANNEL KEY` a line) checked and hashed, their digests handed
/// to the coordinator. An empty body takes the channel's keys away.
async fn set_publish_keys(
    context: &Context,
    head: &RequestHead,
    body: Vec<u8>,
    channel: String,
) -> Response {
    if let Err(refused) = operator_verified(context, head, &body) {
        return refused;
    }
    if !valid_channel_name(&channel) {
        return Response::text(
            400,
            format!(
                "invalid channel name {:?}: use 1-64 characters of A-Z a-z 0-9 _ -",
                truncate(&channel, 64)
            ),
        );
    }
    let Ok(text) = String::from_utf8(body) else {
        return Response::text(400, "the keys are not UTF-8");
    };
    use crate::ingest::publish_key::{key_digest, parse_key_file};
    let keys = match parse_key_file(&text, &channel, "body") {
        Ok(keys) => keys,
        Err(e) => return Response::text(400, e.to_string()),
    };
    let digests = keys.iter().map(|k| key_digest(k)).collect();
    let (reply, answer) = oneshot::channel();
    let request = ApiRequest::SetPublishKeys {
        channel: channel.clone(),
        digests,
        reply,
    };
    match ask(context, request, answer).await {
        Ok(Ok(n)) => Response::text(200, format!("ok: {n} publish keys for channel '{channel}'")),
        Ok(Err(refusal)) => Response::text(400, refusal),
        Err(response) => response,
    }
}

/// `POST /policy`: the signature checked, then the file handed to the coordinator.
async fn apply_policy(context: &Context, head: &RequestHead, body: Vec<u8>) -> Response {
    if let Err(refused) = operator_verified(context, head, &body) {
        return refused;
    }
    let Ok(source) = String::from_utf8(body) else {
        return Response::text(400, "line 1: the policy file is not UTF-8");
    };
    let (reply, answer) = oneshot::channel();
    match ask(context, ApiRequest::ApplyPolicy { source, reply }, answer).await {
        Ok(Ok(rules)) => Response::text(200, format!("ok: {rules} rules")),
        Ok(Err(refusal)) => Response::text(400, refusal),
        Err(response) => response,
    }
}

/// Hands `request` to the coordinator and waits for `answer`; `Err` is the
/// response to send when no answer comes in time.
async fn ask<T>(
    context: &Context,
    request: ApiRequest,
    answer: oneshot::Receiver<T>,
) -> Result<T, Response> {
    let asked = async {
        context.requests.send(request).await.ok()?;
        answer.await.ok()
    };
    match tokio::time::timeout(context.reply_timeout, asked).await {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(Response::unavailable(
            BUSY_RETRY_AFTER_S,
            "coordinator is shutting down",
        )),
        Err(_elapsed) => Err(Response::unavailable(
            BUSY_RETRY_AFTER_S,
            format!(
                "coordinator did not answer within {} ms; retry shortly",
                context.reply_timeout.as_millis()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_head;

    fn route_of(target: &str) -> Result<Route, u16> {
        let head = parse_head(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()).unwrap();
        route(&head).map_err(|r| r.status())
    }

    #[test]
    fn routes_watch_status_health() {
        let watch = |channel: &str, region: Option<&str>| Route::Watch {
            channel: channel.into(),
            region: region.map(String::from),
            feed: ViewerFeed::LIVE,
        };
        assert_eq!(route_of("/watch/a"), Ok(watch("a", None)));
        assert_eq!(
            route_of("/watch/a.ts?region=eu-1"),
            Ok(watch("a", Some("eu-1")))
        );
        assert_eq!(route_of("/watch/a?region="), Ok(watch("a", None)));
        assert_eq!(route_of("/status"), Ok(Route::Status));
        assert_eq!(route_of("/health"), Ok(Route::Health));
        assert_eq!(route_of("/leader"), Ok(Route::Leader { manager: None }));
        assert_eq!(
            route_of("/leader?manager=3"),
            Ok(Route::Leader { manager: Some(3) })
        );
        assert_eq!(route_of("/leader?manager=x"), Err(400));
        assert_eq!(route_of("/leader?manager=70000"), Err(400));
        assert_eq!(route_of("/watch/a.b"), Err(400));
        assert_eq!(route_of("/watch/"), Err(400));
        assert_eq!(route_of("/watch/a?region=e/u"), Err(400));
        assert_eq!(
            route_of("/watch/a?feed=audio&delay=30"),
            Ok(Route::Watch {
                channel: "a".into(),
                region: None,
                feed: ViewerFeed::from_params(Some("audio"), Some("30")).unwrap(),
            })
        );
        assert_eq!(route_of("/watch/a?feed=video"), Err(400));
        assert_eq!(route_of("/watch/a?delay=soon"), Err(400));
        assert_eq!(route_of("/other"), Err(404));
        assert_eq!(route_of("/policy"), Err(405));
        let post = parse_head(b"POST /policy HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(route(&post), Ok(Route::ApplyPolicy));
        let post = parse_head(b"POST /publish-keys/live HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            route(&post),
            Ok(Route::SetPublishKeys {
                channel: "live".into()
            })
        );
        assert_eq!(route_of("/publish-keys/live"), Err(405));
        let post = parse_head(b"POST /status HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(route(&post).map_err(|r| r.status()), Err(405));
    }
}
