//! HLS routes of the viewer server (X2, LL-HLS; X3: bounded waits, clear
//! errors): `/hls/<channel>/index.m3u8` (with `_HLS_msn` / `_HLS_part`:
//! blocking reload), `/hls/<channel>/<msn>.ts` and `/hls/<channel>/<msn>.<part>.ts`.
//! CORS on every answer (`Access-Control-Allow-Origin: *`) and `OPTIONS`
//! preflights; the sans-IO `tiercast_media::hls` decides, this file parks.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tiercast_media::hls::{
    lookup_media, playlist_readiness, render_playlist, MediaAnswer, Readiness, Segmenter,
};
use tiercast_proto::ids::valid_channel_name;

use super::hls_hub::HlsChannel;
use super::request::{truncate, Method, RequestHead};
use super::response::Response;
use super::viewer::Context;
use super::viewer_access::may_serve;

pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
pub const SEGMENT_TYPE: &str = "video/mp2t";
/// Segments and parts never change under their URI while in the window.
const MEDIA_CACHE: &str = "public, max-age=30";

/// What an `/hls/` request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HlsRoute {
    Preflight,
    Playlist {
        channel: String,
        msn: Option<u64>,
        part: Option<u64>,
    },
    Media {
        channel: String,
        msn: u64,
        part: Option<u64>,
    },
}

impl HlsRoute {
    fn channel(&self) -> Option<&str> {
        match self {
            HlsRoute::Preflight => None,
            HlsRoute::Playlist { channel, .. } | HlsRoute::Media { channel, .. } => Some(channel),
        }
    }
}

/// `None` when the path is not under `/hls/`; else the route or the refusal.
pub fn parse(head: &RequestHead) -> Option<Result<HlsRoute, Response>> {
    let rest = head.path.strip_prefix("/hls/")?;
    Some(parse_rest(head, rest).map_err(cors))
}

fn parse_rest(head: &RequestHead, rest: &str) -> Result<HlsRoute, Response> {
    match &head.method {
        Method::Get | Method::Head => {}
        Method::Other(m) if m == "OPTIONS" => return Ok(HlsRoute::Preflight),
        Method::Other(m) => {
            return Err(Response::text(
                405,
                format!(
                    "method {} not allowed: use GET, HEAD or OPTIONS",
                    truncate(m, 16)
                ),
            )
            .header("Allow", "GET, HEAD, OPTIONS"))
        }
    }
    let Some((channel, file)) = rest.split_once('/') else {
        return Err(not_found(&head.path));
    };
    if !valid_channel_name(channel) {
        return Err(Response::text(
            400,
            format!(
                "invalid channel name {:?}: use 1-64 characters of A-Z a-z 0-9 _ -",
                truncate(channel, 64)
            ),
        ));
    }
    let channel = channel.to_string();
    if file == "index.m3u8" {
        let msn = number_param(head, "_HLS_msn")?;
        let part = number_param(head, "_HLS_part")?;
        return Ok(HlsRoute::Playlist { channel, msn, part });
    }
    let Some(name) = file.strip_suffix(".ts") else {
        return Err(not_found(&head.path));
    };
    let (msn, part) = match name.split_once('.') {
        Some((msn, part)) => (msn, Some(part)),
        None => (name, None),
    };
    let bad = || {
        Response::text(
            400,
            format!(
                "bad segment name {:?}: use <msn>.ts or <msn>.<part>.ts",
                truncate(file, 64)
            ),
        )
    };
    let msn = number(msn).ok_or_else(bad)?;
    let part = match part {
        Some(p) => Some(number(p).ok_or_else(bad)?),
        None => None,
    };
    Ok(HlsRoute::Media { channel, msn, part })
}

fn not_found(path: &str) -> Response {
    Response::text(
        404,
        format!(
            "no such path {:?}: HLS is /hls/<channel>/index.m3u8",
            truncate(path, 64)
        ),
    )
}

/// Decimal digits only (no sign, no spaces), at most 18 of them.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn number_param(head: &RequestHead, name: &str) -> Result<Option<u64>, Response> {
    match head.query_param(name) {
        None => Ok(None),
        Some(v) => number(v).map(Some).ok_or_else(|| {
            Response::text(
                400,
                format!("{name} must be a number, got {:?}", truncate(v, 24)),
            )
        }),
    }
}

/// Adds the CORS header every `/hls/` answer carries.
pub fn cors(response: Response) -> Response {
    response.header("Access-Control-Allow-Origin", "*")
}

fn preflight() -> Response {
    cors(Response::empty(200))
        .header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        .header("Access-Control-Allow-Headers", "*")
        .header("Access-Control-Max-Age", "86400")
}

/// Answers an `/hls/` request on `stream` and counts refusals.
pub(super) async fn serve(
    stream: tokio::net::TcpStream,
    route: HlsRoute,
    head: &RequestHead,
    context: &Arc<Context>,
) {
    let response = answer(route, head, context).await;
    let stats = &context.stats;
    match response.status() {
        400..=499 => stats.bad_requests.fetch_add(1, Ordering::Relaxed),
        500.. => stats.refused.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
    response.send(stream, head.is_head()).await
}

/// Answers an `/hls/` request (parks it while the answer is coming).
pub(super) async fn answer(
    route: HlsRoute,
    head: &RequestHead,
    context: &Arc<Context>,
) -> Response {
    cors(answer_inner(route, head, context).await)
}

async fn answer_inner(route: HlsRoute, head: &RequestHead, context: &Arc<Context>) -> Response {
    if let Some(channel) = route.channel() {
        if let Err(refusal) = may_serve(channel, head) {
            return refusal;
        }
    }
    let hub = &context.hls;
    let state = match route.channel() {
        None => return preflight(),
        Some(name) => match hub.channel(name, context).await {
            Ok(state) => state,
            Err(refusal) => return refusal,
        },
    };
    match route {
        HlsRoute::Preflight => preflight(),
        HlsRoute::Playlist { msn, part, .. } => {
            let decide = |seg: &Segmenter| match playlist_readiness(seg, msn, part) {
                Readiness::Ready => Some(Ok(render_playlist(seg))),
                Readiness::Wait => None,
                Readiness::Refuse(reason) => Some(Err(reason)),
            };
            match wait_for(context, &state, decide).await {
                Waited::Done(Ok(text)) => Response::bytes(200, PLAYLIST_TYPE, text.into()),
                Waited::Done(Err(reason)) => Response::text(400, reason),
                Waited::TimedOut(after) => Response::unavailable(
                    1,
                    format!(
                        "the playlist asked for is not ready after {} ms",
                        after.as_millis()
                    ),
                ),
                Waited::TooMany => Response::unavailable(1, "too many requests waiting here"),
            }
        }
        HlsRoute::Media { msn, part, .. } => {
            let decide = |seg: &Segmenter| match lookup_media(seg, msn, part) {
                MediaAnswer::Found(bytes) => Some(Ok(bytes)),
                MediaAnswer::Wait => None,
                MediaAnswer::NotHere(reason) => Some(Err(reason)),
            };
            match wait_for(context, &state, decide).await {
                Waited::Done(Ok(bytes)) => {
                    Response::bytes(200, SEGMENT_TYPE, bytes).cache_control(MEDIA_CACHE)
                }
                Waited::Done(Err(reason)) => Response::text(404, reason),
                Waited::TimedOut(after) => Response::unavailable(
                    1,
                    format!(
                        "the part asked for is not ready after {} ms",
                        after.as_millis()
                    ),
                ),
                Waited::TooMany => Response::unavailable(1, "too many requests waiting here"),
            }
        }
    }
}

enum Waited<T> {
    Done(T),
    TimedOut(Duration),
    TooMany,
}

/// Asks `decide` now and after every change of the segmenter, for at most
/// the hub's bounded wait.
async fn wait_for<T>(
    context: &Context,
    state: &HlsChannel,
    mut decide: impl FnMut(&Segmenter) -> Option<T>,
) -> Waited<T> {
    let mut changes = state.subscribe();
    if let Some(done) = decide(&state.segmenter()) {
        return Waited::Done(done);
    }
    let Some(_slot) = context.hls.park() else {
        return Waited::TooMany;
    };
    let _waiting = state.waiting();
    let max_wait = context.hls.max_wait(state);
    let deadline = tokio::time::Instant::now() + max_wait;
    loop {
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => {
                if let Some(done) = decide(&state.segmenter()) {
                    return Waited::Done(done);
                }
            }
            Ok(Err(_)) | Err(_) => return Waited::TimedOut(max_wait),
        }
    }
}
