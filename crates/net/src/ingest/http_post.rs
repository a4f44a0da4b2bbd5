//! HTTP ingest (feature X1): `POST` or `PUT` of an MPEG-TS body to any path,
//! framed by `Content-Length` or `Transfer-Encoding: chunked` — what
//! `ffmpeg -f mpegts -method POST http://host:port/ingest` sends. One
//! publisher at a time (`409` for a second). The answer comes when the body
//! ends: `200` with a summary, or `400` naming why the body is not MPEG-TS
//! (sent as soon as that is known). Other methods get `405`, malformed
//! requests `400`, a missing length `411`. With publish keys on (X3) the key
//! is the path's last segment after `/ingest/` (`/ingest/KEY`) or an
//! `Authorization: Bearer KEY` header: `401` when none is given, `403` when
//! it is wrong. Heads are parsed with `httparse`
//! within 16 KiB and 10 s; nothing here panics on input.

use std::net::SocketAddr;
use std::time::Duration;

use httparse::Status;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};
use tracing::{debug, info, warn};

use super::chunked::{ChunkedDecoder, ChunkedError};
use super::pump::{Pump, PumpError};
use super::{
    accept_loop, IngestStats, KeyRefusal, PublisherGuard, PublisherSlot, SessionConfig,
    IDLE_TIMEOUT, READ_BUFFER_BYTES,
};

/// Largest request head (request line, headers, blank line).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields in a head.
pub const MAX_HEADERS: usize = 64;
/// Time allowed to send the whole head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After an early answer, unread body is discarded for this long / this much
/// so the client sees the answer instead of a reset.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
const DRAIN_MAX_BYTES: usize = 1 << 20;

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    Chunked,
    Length(u64),
}

/// A request head the ingest accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRequest {
    pub method: String,
    pub path: String,
    pub framing: BodyFraming,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
    /// Bytes of the head; the body starts right after.
    pub head_len: usize,
    /// The key of an `Authorization: Bearer KEY` header.
    pub bearer: Option<String>,
}

impl IngestRequest {
    /// The publish key: the bearer token, else the path's `/ingest/KEY`.
    pub fn publish_key(&self) -> Option<&str> {
        if let Some(b) = self.bearer.as_deref() {
            return Some(b);
        }
        let path = self.path.split('?').next().unwrap_or("");
        path.strip_prefix("/ingest/")
            .map(|k| k.trim_end_matches('/'))
            .filter(|k| !k.is_empty())
    }
}

/// An answer that ends the request: status and a reason for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

fn refusal(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

/// Parses a request head from the start of `buf`: `Ok(None)` means more
/// bytes are needed. Only heads within [`MAX_HEAD_BYTES`] are accepted.
pub fn parse_head(buf: &[u8]) -> Result<Option<IngestRequest>, Refusal> {
    let window = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(window) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) if window.len() >= MAX_HEAD_BYTES => {
            return Err(refusal(
                431,
                format!("request head larger than {MAX_HEAD_BYTES} bytes"),
            ))
        }
        Ok(Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refusal(
                431,
                format!("more than {MAX_HEADERS} header fields"),
            ))
        }
        Err(_) if buf.first() == Some(&0x47) => return Err(refusal(
            400,
            "this is the HTTP ingest and the input is raw MPEG-TS: POST it, or use the TCP ingest",
        )),
        Err(e) => return Err(refusal(400, format!("malformed request: {e}"))),
    };
    let method = request.method.unwrap_or_default().to_string();
    if method != "POST" && method != "PUT" {
        return Err(refusal(
            405,
            format!("method {method} not allowed: push an MPEG-TS body with POST or PUT"),
        ));
    }
    let mut chunked = None;
    let mut length: Option<u64> = None;
    let mut expect_continue = false;
    let mut bearer = None;
    for header in request.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| refusal(400, format!("header {} is not UTF-8", header.name)))?
            .trim();
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let is_chunked = value.eq_ignore_ascii_case("chunked");
            if !is_chunked {
                return Err(refusal(
                    501,
                    format!(
                        "transfer coding '{value}' not supported: send chunked or a Content-Length"
                    ),
                ));
            }
            chunked = Some(true);
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let parsed = (!value.is_empty()
                && value.len() <= 19
                && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| refusal(400, format!("bad Content-Length '{value}'")))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(refusal(400, "conflicting Content-Length headers"));
            }
            length = Some(parsed);
        } else if header.name.eq_ignore_ascii_case("expect") {
            if !value.eq_ignore_ascii_case("100-continue") {
                return Err(refusal(417, format!("expectation '{value}' not supported")));
            }
            expect_continue = true;
        } else if header.name.eq_ignore_ascii_case("authorization") {
            let token = value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_string())
                .ok_or_else(|| refusal(401, "Authorization: give 'Bearer KEY'"))?;
            bearer = Some(token);
        }
    }
    let framing = match (chunked, length) {
        (Some(_), Some(_)) => {
            return Err(refusal(
                400,
                "both Transfer-Encoding and Content-Length given",
            ))
        }
        (Some(_), None) => BodyFraming::Chunked,
        (None, Some(n)) => BodyFraming::Length(n),
        (None, None) => {
            return Err(refusal(
                411,
                "a body length is required: Content-Length or Transfer-Encoding: chunked",
            ))
        }
    };
    Ok(Some(IngestRequest {
        method,
        path: request.path.unwrap_or("/").to_string(),
        framing,
        expect_continue,
        head_len,
        bearer,
    }))
}

pub(crate) async fn serve(listener: TcpListener, cfg: SessionConfig) {
    accept_loop(listener, cfg, session).await;
}

async fn session(
    mut stream: TcpStream,
    peer: SocketAddr,
    cfg: SessionConfig,
    _slot: PublisherSlot,
) {
    let stats = cfg.stats.clone();
    let (request, early_body) = match read_head(&mut stream).await {
        Ok(Some(head)) => head,
        Ok(None) => return,
        Err(r) => return refuse(stream, peer, &stats, r).await,
    };
    if let Err(k) = cfg.options.keys.check(None, request.publish_key()) {
        let status = match k {
            KeyRefusal::Missing => 401,
            KeyRefusal::Wrong(_) => 403,
            KeyRefusal::OtherChannel { .. } => 404,
            KeyRefusal::NotYet => 503,
        };
        IngestStats::count(&stats.refused_keys, 1);
        return refuse(stream, peer, &stats, refusal(status, k.to_string())).await;
    }
    let Some(guard) = cfg.take_slot(&format!("HTTP {peer}")).await else {
        let r = refusal(409, "another publisher is live on this channel");
        return respond_refused(stream, peer, r).await;
    };
    if request.expect_continue && !write(&mut stream, b"HTTP/1.1 100 Continue\r\n\r\n").await {
        return;
    }
    IngestStats::count(&stats.publishers, 1);
    info!(%peer, method = %request.method, path = %request.path, framing = ?request.framing, "HTTP ingest: publisher started");
    let mut pump = Pump::new(cfg);
    let mut body = Body::new(request.framing);
    let outcome = read_body(&mut stream, &mut pump, &mut body, &early_body, &guard).await;
    let outcome = match outcome {
        BodyEnd::Complete => pump.finish().await.map_err(BodyEnd::Pump),
        BodyEnd::ClientGone | BodyEnd::Idle => {
            // Keep what arrived; the client is not listening for an answer.
            let finished = pump.finish().await;
            warn!(%peer, idle = matches!(outcome, BodyEnd::Idle), ?finished, "HTTP ingest: body ended early");
            return;
        }
        other => Err(other),
    };
    let (bytes, blocks) = pump.totals();
    match outcome {
        Ok(()) => {
            info!(%peer, bytes, blocks, "HTTP ingest: publisher finished");
            let text = format!("ok: {bytes} bytes, {blocks} blocks");
            respond(&mut stream, 200, &text, "").await;
            close_gracefully(stream).await;
        }
        Err(BodyEnd::Pump(PumpError::NotTransportStream(reason))) => {
            let r = refusal(400, format!("not an MPEG-TS stream: {reason}"));
            refuse(stream, peer, &stats, r).await;
        }
        Err(BodyEnd::Malformed(e)) => {
            refuse(
                stream,
                peer,
                &stats,
                refusal(400, format!("malformed chunked body: {e}")),
            )
            .await;
        }
        Err(_) => {
            respond(&mut stream, 503, "ingest is shutting down", "").await;
        }
    }
}

/// Reads until a complete head; `Ok(None)` when the client left first.
async fn read_head(stream: &mut TcpStream) -> Result<Option<(IngestRequest, Vec<u8>)>, Refusal> {
    let deadline = Instant::now() + HEAD_TIMEOUT;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => {
                let secs = HEAD_TIMEOUT.as_secs();
                return Err(refusal(
                    408,
                    format!("request head not complete within {secs} s"),
                ));
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                debug!(
                    bytes = buf.len(),
                    "HTTP ingest: client left before a complete head"
                );
                return Ok(None);
            }
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(request) = parse_head(&buf)? {
            let body = buf.split_off(request.head_len);
            return Ok(Some((request, body)));
        }
    }
}

enum Body {
    Chunked(ChunkedDecoder),
    Length { remaining: u64 },
}

enum BodyEnd {
    Complete,
    ClientGone,
    Idle,
    Malformed(ChunkedError),
    Pump(PumpError),
}

impl Body {
    fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::Chunked => Body::Chunked(ChunkedDecoder::default()),
            BodyFraming::Length(remaining) => Body::Length { remaining },
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Body::Chunked(decoder) => decoder.is_done(),
            Body::Length { remaining } => *remaining == 0,
        }
    }

    /// Decodes `data` into the pump; bytes after the body are ignored.
    async fn feed(&mut self, mut data: &[u8], pump: &mut Pump) -> Result<(), BodyEnd> {
        match self {
            Body::Chunked(decoder) => {
                while let Some(piece) = decoder.next(&mut data).map_err(BodyEnd::Malformed)? {
                    pump.feed(piece).await.map_err(BodyEnd::Pump)?;
                }
            }
            Body::Length { remaining } => {
                let take = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                *remaining -= take as u64;
                pump.feed(&data[..take]).await.map_err(BodyEnd::Pump)?;
            }
        }
        Ok(())
    }
}

async fn read_body(
    stream: &mut TcpStream,
    pump: &mut Pump,
    body: &mut Body,
    early: &[u8],
    guard: &PublisherGuard,
) -> BodyEnd {
    if let Err(end) = body.feed(early, pump).await {
        return end;
    }
    let mut buf = vec![0u8; READ_BUFFER_BYTES];
    let mut idle_deadline = Instant::now() + IDLE_TIMEOUT;
    while !body.is_done() {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return BodyEnd::ClientGone,
                Ok(n) => {
                    idle_deadline = Instant::now() + IDLE_TIMEOUT;
                    if let Err(end) = body.feed(&buf[..n], pump).await {
                        return end;
                    }
                }
            },
            _ = sleep_until(pump.flush_deadline()) => {
                if let Err(e) = pump.flush().await {
                    return BodyEnd::Pump(e);
                }
            }
            _ = sleep_until(idle_deadline) => return BodyEnd::Idle,
            _ = guard.taken_over() => {
                info!("HTTP ingest: another publisher took over, closing");
                return BodyEnd::ClientGone;
            }
        }
    }
    BodyEnd::Complete
}

/// Answers with an error, logs it, counts it, and closes.
async fn refuse(stream: TcpStream, peer: SocketAddr, stats: &IngestStats, r: Refusal) {
    warn!(%peer, status = r.status, reason = %r.reason, "HTTP ingest: request refused");
    stats.reject_connection(format!("{peer}: {} {}", r.status, r.reason));
    respond_refused(stream, peer, r).await;
}

/// Answers with an error (already counted and logged) and closes.
async fn respond_refused(mut stream: TcpStream, _peer: SocketAddr, r: Refusal) {
    let extra = match r.status {
        405 => "Allow: POST, PUT\r\n",
        401 => "WWW-Authenticate: Bearer\r\n",
        _ => "",
    };
    respond(&mut stream, r.status, &r.reason, extra).await;
    close_gracefully(stream).await;
}

async fn respond(stream: &mut TcpStream, status: u16, text: &str, extra_headers: &str) {
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{text}\n",
        reason_phrase(status),
        text.len() + 1,
    );
    write(stream, response.as_bytes()).await;
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    matches!(
        timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// Half-closes, then discards what the client still sends (bounded), so the
/// answer is not lost to a reset.
async fn close_gracefully(mut stream: TcpStream) {
    let _ = timeout(WRITE_TIMEOUT, stream.shutdown()).await;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut drained = 0;
    let mut buf = [0u8; 4096];
    while drained < DRAIN_MAX_BYTES {
        match timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
