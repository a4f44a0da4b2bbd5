//! Reads one HTTP/1.1 request head from a socket with `httparse`, within a size
//! limit (16 KiB) and a deadline (10 s), and splits the target into path and
//! query. Bodies are read only by [`read_request`], for the one operator route
//! that takes one (`POST /policy`), within their own size limit.
//!
//! Features: X2 (viewer HTTP), V2 (coordinator redirect API), X3 (bounded
//! resources, clear errors: every failure is a typed [`RequestError`] that knows
//! which status, if any, to answer with).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head accepted, in bytes (request line + headers + blank line).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header fields accepted in one request head.
pub const MAX_HEADERS: usize = 64;
/// Default deadline for a complete request head.
pub const HEAD_TIMEOUT_MS: u64 = 10_000;

/// Bytes read from the socket per `read` call while waiting for the head.
const READ_CHUNK_BYTES: usize = 2048;

/// The request method, as far as these servers care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Any other method, kept for the log line of the 405 answer.
    Other(String),
}

/// A parsed request head: method, path and raw query (without the `?`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    /// Always starts with `/`; never contains `%`.
    pub path: String,
    /// The part after `?`, if any; never contains `%`.
    pub query: Option<String>,
    /// `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub version_minor: u8,
    /// `Content-Length`, when present and a number.
    pub content_length: Option<u64>,
    /// `Authorization`, when present and UTF-8.
    pub authorization: Option<String>,
}

impl RequestHead {
    /// `true` for `HEAD`: answer with the head of the response only.
    pub fn is_head(&self) -> bool {
        self.method == Method::Head
    }

    /// The value of the first `name=value` pair of the query (`""` for a bare `name`).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .as_deref()?
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }
}

/// Why no usable request head could be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("connection closed before a request arrived")]
    Closed,
    #[error("connection closed in the middle of the request head")]
    Truncated,
    #[error("request head not complete within {0} ms")]
    Timeout(u64),
    #[error("request head larger than {0} bytes")]
    TooLarge(usize),
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("reading the request failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("body of {0} bytes is larger than {1}")]
    BodyTooLarge(u64, usize),
    #[error("{0}")]
    Busy(String),
}

impl RequestError {
    /// The status to answer with, or `None` when the peer is gone or silent
    /// and an answer would go nowhere.
    pub fn status(&self) -> Option<u16> {
        match self {
            RequestError::Closed | RequestError::Truncated | RequestError::Io(_) => None,
            RequestError::Timeout(_) => Some(408),
            RequestError::TooLarge(_) | RequestError::TooManyHeaders(_) => Some(431),
            RequestError::Malformed(_) => Some(400),
            RequestError::BodyTooLarge(..) => Some(413),
            RequestError::Busy(_) => Some(503),
        }
    }
}

/// Reads and parses one request head of at most `max_bytes`, all within `timeout`.
/// Bytes after the head (a body, a pipelined request) are read but ignored.
pub async fn read_request_head<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
    timeout: Duration,
) -> Result<RequestHead, RequestError> {
    match tokio::time::timeout(timeout, read_head_unbounded_in_time(reader, max_bytes)).await {
        Ok(result) => result.map(|(head, _)| head),
        Err(_elapsed) => Err(RequestError::Timeout(timeout.as_millis() as u64)),
    }
}

/// Reads one request head and its body (`Content-Length` bytes, at most what
/// `max_body` allows for that head — 0 for a route that takes none; it may also
/// refuse the request, e.g. when too many bodies are being read), all within
/// `timeout`. A request without `Content-Length` has an empty body.
pub async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_head: usize,
    max_body: impl FnOnce(&RequestHead) -> Result<usize, RequestError>,
    timeout: Duration,
) -> Result<(RequestHead, Vec<u8>), RequestError> {
    let read = async {
        let (head, mut body) = read_head_unbounded_in_time(reader, max_head).await?;
        let max_body = max_body(&head)?;
        // No Content-Length: no body (RFC 9112 §6.3; chunked bodies are not taken).
        let len = head.content_length.unwrap_or(0);
        if len > max_body as u64 {
            return Err(RequestError::BodyTooLarge(len, max_body));
        }
        let len = len as usize;
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        while body.len() < len {
            let n = reader.read(&mut chunk).await?;
            if n == 0 {
                return Err(RequestError::Truncated);
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
        Ok((head, body))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_elapsed) => Err(RequestError::Timeout(timeout.as_millis() as u64)),
    }
}

/// The head and the bytes read past it (the start of a body).
async fn read_head_unbounded_in_time<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> Result<(RequestHead, Vec<u8>), RequestError> {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK_BYTES.min(max_bytes));
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(if buf.is_empty() {
                RequestError::Closed
            } else {
                RequestError::Truncated
            });
        }
        let searched_up_to = buf.len().saturating_sub(3);
        let room = max_bytes.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..n.min(room)]);
        // Parsing only once the blank line is there keeps a byte-at-a-time
        // sender from costing one full parse per byte.
        if contains_head_end(&buf[searched_up_to..]) {
            let (head, len) = parse_head_len(&buf)?;
            let rest = buf.get(len..).unwrap_or_default().to_vec();
            return Ok((head, rest));
        }
        if buf.len() >= max_bytes {
            return Err(RequestError::TooLarge(max_bytes));
        }
    }
}

fn contains_head_end(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(4).any(|w| w == b"\r\n\r\n")
}

/// Parses a complete request head (the bytes must hold the blank line).
pub fn parse_head(bytes: &[u8]) -> Result<RequestHead, RequestError> {
    parse_head_len(bytes).map(|(head, _)| head)
}

/// Parses a complete request head; also returns its length in bytes.
fn parse_head_len(bytes: &[u8]) -> Result<(RequestHead, usize), RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(RequestError::Malformed("incomplete request head".into()))
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::TooManyHeaders(MAX_HEADERS))
        }
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(|v| v.trim().to_string())
    };
    let content_length = match header("content-length") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            RequestError::Malformed(format!(
                "Content-Length {:?} is not a number",
                truncate(&v, 32)
            ))
        })?),
    };
    let authorization = header("authorization");
    let method = match request.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some(other) => Method::Other(other.to_string()),
        None => return Err(RequestError::Malformed("no method".into())),
    };
    let target = request
        .path
        .ok_or_else(|| RequestError::Malformed("no request target".into()))?;
    let (path, query) = split_target(target)?;
    let version_minor = request
        .version
        .ok_or_else(|| RequestError::Malformed("no HTTP version".into()))?;
    Ok((
        RequestHead {
            method,
            path,
            query,
            version_minor,
            content_length,
            authorization,
        },
        head_len,
    ))
}

/// Splits an origin-form target (`/path?query`) into its parts. Percent-encoding
/// is refused rather than decoded: no valid channel or region name needs it.
pub fn split_target(target: &str) -> Result<(String, Option<String>), RequestError> {
    if !target.starts_with('/') {
        return Err(RequestError::Malformed(format!(
            "request target must start with '/' (got {:?})",
            truncate(target, 64)
        )));
    }
    if target.contains('%') {
        return Err(RequestError::Malformed(
            "percent-encoded request targets are not supported".into(),
        ));
    }
    Ok(match target.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (target.to_string(), None),
    })
}

/// At most `max_chars` characters of `text`, for echoing outside input in logs
/// and error bodies.
pub fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RequestHead, RequestError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn parses_get_with_query() {
        let head = parse("GET /watch/a.ts?region=eu&x HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.path, "/watch/a.ts");
        assert_eq!(head.query_param("region"), Some("eu"));
        assert_eq!(head.query_param("x"), Some(""));
        assert_eq!(head.query_param("y"), None);
        assert_eq!(head.version_minor, 1);
    }

    #[test]
    fn parses_head_and_other_methods() {
        assert!(parse("HEAD / HTTP/1.0\r\n\r\n").unwrap().is_head());
        let post = parse("POST /x HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(post.method, Method::Other("POST".into()));
    }

    #[test]
    fn rejects_bad_targets_and_lines() {
        assert_eq!(
            parse("GET /a%2Fb HTTP/1.1\r\n\r\n").unwrap_err().status(),
            Some(400)
        );
        assert_eq!(
            parse("GET * HTTP/1.1\r\n\r\n").unwrap_err().status(),
            Some(400)
        );
        assert_eq!(parse("garbage\r\n\r\n").unwrap_err().status(), Some(400));
        assert_eq!(
            parse("GET / HTTP/2.0\r\n\r\n").unwrap_err().status(),
            Some(400)
        );
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut text = String::from("GET / HTTP/1.1\r\n");
        for i in 0..(MAX_HEADERS + 1) {
            text.push_str(&format!("X-{i}: v\r\n"));
        }
        text.push_str("\r\n");
        assert_eq!(parse(&text).unwrap_err().status(), Some(431));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé");
        assert_eq!(truncate("hi", 10), "hi");
    }

    #[tokio::test]
    async fn reads_head_split_over_many_reads() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for byte in b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" {
                client.write_all(&[*byte]).await.unwrap();
            }
            client
        });
        let head = read_request_head(&mut server, MAX_HEAD_BYTES, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(head.path, "/health");
        drop(tokio::time::timeout(Duration::from_secs(5), writer).await);
    }

    #[tokio::test]
    async fn reads_a_body_of_content_length_and_refuses_what_does_not_fit() {
        use tokio::io::AsyncWriteExt;
        let read = |text: &'static [u8]| async move {
            let (mut client, mut server) = tokio::io::duplex(64 * 1024);
            client.write_all(text).await.unwrap();
            drop(client);
            let max = |h: &RequestHead| Ok(if h.path == "/nobody" { 0 } else { 16 });
            read_request(&mut server, MAX_HEAD_BYTES, max, Duration::from_secs(5)).await
        };
        let (head, body) =
            read(b"POST /policy HTTP/1.1\r\nContent-Length: 5\r\nAuthorization: x y\r\n\r\nhello")
                .await
                .unwrap();
        assert_eq!(body, b"hello");
        assert_eq!(head.authorization.as_deref(), Some("x y"));
        let (_, body) = read(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(body.is_empty());
        let status = |r: Result<_, RequestError>| r.unwrap_err().status();
        let (_, body) = read(b"POST / HTTP/1.1\r\n\r\nabc").await.unwrap();
        assert!(body.is_empty(), "no Content-Length, no body");
        assert_eq!(
            status(read(b"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n").await),
            Some(413)
        );
        assert_eq!(
            status(read(b"GET /nobody HTTP/1.1\r\nContent-Length: 1\r\n\r\nx").await),
            Some(413)
        );
        assert_eq!(
            status(read(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").await),
            Some(400)
        );
        assert!(matches!(
            read(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc").await,
            Err(RequestError::Truncated)
        ));
    }

    #[tokio::test]
    async fn oversized_and_truncated_heads_are_refused() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        use tokio::io::AsyncWriteExt;
        let big = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        client.write_all(big.as_bytes()).await.unwrap();
        let err = read_request_head(&mut server, MAX_HEAD_BYTES, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::TooLarge(_)), "{err}");

        let (mut client, mut server) = tokio::io::duplex(1024);
        client.write_all(b"GET / HT").await.unwrap();
        drop(client);
        let err = read_request_head(&mut server, MAX_HEAD_BYTES, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Truncated), "{err}");
    }
}
