//! Writes small, complete HTTP/1.1 responses (status, a short text or JSON body,
//! headers such as `Location`, `Retry-After`, `Allow`) and the open-ended head
//! of a streamed body; closes connections without losing the answer.
//!
//! Features: X2 (viewer HTTP), V2 (302 redirects of the coordinator API), X3
//! (clear errors: every refusal carries a human-readable reason; bounded time).

use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Deadline for writing one small response.
pub const RESPONSE_WRITE_TIMEOUT_MS: u64 = 10_000;
/// How long a closing connection keeps reading (and discarding) what the
/// client still sends, so that the kernel does not answer it with a reset
/// that would destroy the response before the client reads it.
const LINGER_MS: u64 = 2_000;
/// Most bytes discarded while lingering.
const LINGER_MAX_BYTES: usize = 256 * 1024;
/// Bodies up to this size are copied behind the head and written at once.
const SMALL_BODY_BYTES: usize = 4 * 1024;

/// A complete response with a small body; always `Connection: close`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    content_type: &'static str,
    cache_control: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Response {
    /// A `text/plain` response; a trailing newline is added to the body.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        let mut body = body.into();
        body.push('\n');
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            cache_control: "no-cache",
            headers: Vec::new(),
            body: Bytes::from(body),
        }
    }

    /// A `200 OK` with a JSON body.
    pub fn json(value: &serde_json::Value) -> Self {
        let mut body = value.to_string();
        body.push('\n');
        Response {
            status: 200,
            content_type: "application/json",
            cache_control: "no-cache",
            headers: Vec::new(),
            body: Bytes::from(body),
        }
    }

    /// A `200 OK` with a Prometheus text page (`crate::metrics`, X4).
    pub fn metrics(page: String) -> Self {
        Response {
            status: 200,
            content_type: crate::metrics::CONTENT_TYPE,
            cache_control: "no-cache",
            headers: Vec::new(),
            body: Bytes::from(page),
        }
    }

    /// A response whose body is `body` as is (media, playlists): not copied
    /// when written.
    pub fn bytes(status: u16, content_type: &'static str, body: Bytes) -> Self {
        Response {
            status,
            content_type,
            cache_control: "no-cache",
            headers: Vec::new(),
            body,
        }
    }

    /// A response with an empty body (a CORS preflight's answer).
    pub fn empty(status: u16) -> Self {
        Response::bytes(status, "text/plain; charset=utf-8", Bytes::new())
    }

    /// Replaces the default `Cache-Control: no-cache`.
    pub fn cache_control(mut self, value: &'static str) -> Self {
        self.cache_control = value;
        self
    }

    /// A `302 Found` pointing at `location`.
    pub fn redirect(location: &str) -> Self {
        Response::text(302, format!("redirecting to {location}")).header("Location", location)
    }

    /// A `503 Service Unavailable` that asks the client to retry later.
    pub fn unavailable(retry_after_s: u32, reason: impl Into<String>) -> Self {
        Response::text(503, reason).header("Retry-After", retry_after_s.to_string())
    }

    /// Adds a header; CR, LF and other control characters are removed from the
    /// value so that no value can inject a header of its own.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        let mut value = value.into();
        value.retain(|c| !c.is_control());
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body, for logging.
    pub fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("").trim_end()
    }

    /// The value of header `name` (case-insensitive), if set.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The response as bytes on the wire; `head_only` leaves out the body
    /// (but keeps its `Content-Length`, as `HEAD` requires).
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = self.encode_head();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }

    /// The status line and headers, with the blank line that ends them.
    fn encode_head(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
                 Cache-Control: {}\r\nConnection: close\r\n",
                self.status,
                reason_phrase(self.status),
                self.content_type,
                self.body.len(),
                self.cache_control
            )
            .as_bytes(),
        );
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Writes the whole response within `timeout`.
    pub async fn write_to<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
        head_only: bool,
        timeout: Duration,
    ) -> io::Result<()> {
        if head_only || self.body.len() <= SMALL_BODY_BYTES {
            return write_with_timeout(writer, &self.encode(head_only), timeout).await;
        }
        // A large body (a segment) goes out from its own buffer, not copied.
        let write_all = async {
            writer.write_all(&self.encode_head()).await?;
            writer.write_all(&self.body).await
        };
        match tokio::time::timeout(timeout, write_all).await {
            Ok(result) => result,
            Err(_elapsed) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client did not accept the response in time",
            )),
        }
    }

    /// Writes the response and closes the connection gracefully.
    pub async fn send(&self, mut stream: TcpStream, head_only: bool) {
        let timeout = Duration::from_millis(RESPONSE_WRITE_TIMEOUT_MS);
        if self.write_to(&mut stream, head_only, timeout).await.is_ok() {
            close_gracefully(stream).await;
        }
    }
}

/// Writes all of `bytes` within `timeout`.
pub async fn write_with_timeout<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    match tokio::time::timeout(timeout, writer.write_all(bytes)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client did not accept the response in time",
        )),
    }
}

/// The head of a `200 OK` whose body runs until the connection closes: no
/// `Content-Length`, no chunked encoding (as VLC and udpxy serve MPEG-TS); open to
/// every origin (CORS), so a browser player (mpegts.js) may read it.
pub fn stream_head(content_type: &str) -> Bytes {
    Bytes::from(format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n\
         Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n"
    ))
}

/// Sends FIN, then reads and discards whatever the client still sends until it
/// closes too (bounded in time and bytes), so that unread request bytes do not
/// turn the close into a reset that would discard the response in flight.
pub async fn close_gracefully(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut discarded = 0usize;
        while discarded < LINGER_MAX_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(LINGER_MS), drain).await;
}

/// The standard reason phrase of the statuses these servers send.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_text_with_headers() {
        let text = String::from_utf8(
            Response::unavailable(7, "busy")
                .header("X-Test", "a\r\nInjected: yes")
                .encode(false),
        )
        .unwrap();
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(text.contains("\r\nRetry-After: 7\r\n"));
        assert!(text.contains("\r\nContent-Length: 5\r\n"));
        assert!(text.contains("\r\nX-Test: aInjected: yes\r\n"));
        assert!(!text.contains("\r\nInjected"));
        assert!(text.ends_with("\r\n\r\nbusy\n"));
    }

    #[test]
    fn head_only_keeps_length_but_drops_body() {
        let text = String::from_utf8(Response::text(404, "nope").encode(true)).unwrap();
        assert!(text.contains("Content-Length: 5\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn redirect_sets_location() {
        let r = Response::redirect("http://relay:8080/live/a.ts");
        assert_eq!(r.status(), 302);
        assert_eq!(
            r.header_value("location"),
            Some("http://relay:8080/live/a.ts")
        );
        assert!(String::from_utf8(r.encode(false))
            .unwrap()
            .starts_with("HTTP/1.1 302 Found\r\n"));
    }
}
