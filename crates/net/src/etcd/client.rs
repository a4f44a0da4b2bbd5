//! A client of etcd's v3 API through its JSON gateway (X7): `POST /v3/...` with a
//! JSON body on the client port every etcd 3.4 serves, so a coordinator needs no
//! gRPC stack and no `protoc` to build. One request per connection
//! (`Connection: close`), a deadline on each, the answer bounded; keys and values
//! are base64 in JSON, 64-bit numbers are strings.
//!
//! Several endpoints (the members of an etcd cluster): a request that cannot
//! reach one, or that it answers with a server error, goes to the next; the
//! client stays on the endpoint that answered last.

use crate::ingest::chunked::ChunkedDecoder;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest answer read (a range of one key, a lease, a txn).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("no etcd endpoint answered (last: {0})")]
    Unreachable(String),
    #[error("etcd {endpoint} answered {status}: {body}")]
    Status {
        endpoint: String,
        status: u16,
        body: String,
    },
    #[error("etcd {0} answered something that is not HTTP JSON: {1}")]
    Garbled(String, String),
}

/// See the module doc.
#[derive(Clone, Debug)]
pub struct EtcdClient {
    endpoints: Vec<String>,
    current: usize,
    timeout: Duration,
}

impl EtcdClient {
    /// `endpoints`: `host:port` (or `http://host:port`) of etcd members; each
    /// request waits at most `timeout` for one endpoint.
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<Self, String> {
        let endpoints: Vec<String> = endpoints
            .iter()
            .map(|e| {
                e.trim()
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_string()
            })
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err("no etcd endpoint given".into());
        }
        if let Some(bad) = endpoints
            .iter()
            .find(|e| e.contains('/') || !e.contains(':'))
        {
            return Err(format!(
                "etcd endpoint '{bad}' must look like http://HOST:PORT"
            ));
        }
        Ok(EtcdClient {
            endpoints,
            current: 0,
            timeout,
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// `POST /v3/<path>` with `body`: the JSON answer of the first endpoint
    /// that gives one.
    pub async fn call(&mut self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let body = body.to_string();
        let mut last = String::new();
        for _ in 0..self.endpoints.len() {
            let endpoint = self.endpoints[self.current].clone();
            match tokio::time::timeout(self.timeout, post(&endpoint, path, &body)).await {
                Ok(Ok((200, answer))) => {
                    return serde_json::from_slice(&answer)
                        .map_err(|e| EtcdError::Garbled(endpoint, e.to_string()));
                }
                Ok(Ok((status, answer))) if status < 500 => {
                    return Err(EtcdError::Status {
                        endpoint,
                        status,
                        body: String::from_utf8_lossy(&answer).chars().take(200).collect(),
                    });
                }
                Ok(Ok((status, _))) => last = format!("{endpoint}: status {status}"),
                Ok(Err(e)) => last = format!("{endpoint}: {e}"),
                Err(_) => {
                    last = format!("{endpoint}: no answer in {} ms", self.timeout.as_millis())
                }
            }
            self.current = (self.current + 1) % self.endpoints.len();
        }
        Err(EtcdError::Unreachable(last))
    }
}

/// One request on its own connection: the status and the body.
async fn post(endpoint: &str, path: &str, body: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(endpoint).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "POST /v3/{path} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        if raw.len() + n > MAX_ANSWER_BYTES {
            return Err(invalid("answer too long"));
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    parse_answer(&raw)
}

/// The status and body of a whole HTTP/1.1 answer (Content-Length, chunked, or
/// up to the end of the connection).
pub(crate) fn parse_answer(raw: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut headers);
    let head_len = match answer.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(invalid("answer cut short")),
        Err(e) => return Err(invalid(&e.to_string())),
    };
    let status = answer.code.unwrap_or(0);
    let header = |name: &str| {
        answer
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    let rest = &raw[head_len..];
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut decoder = ChunkedDecoder::default();
        let mut input = rest;
        let mut body = Vec::new();
        while let Some(piece) = decoder
            .next(&mut input)
            .map_err(|e| invalid(&e.to_string()))?
        {
            body.extend_from_slice(piece);
        }
        return Ok((status, body));
    }
    let len = header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(rest.len());
    Ok((status, rest[..len.min(rest.len())].to_vec()))
}

fn invalid(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string())
}

/// A key or value as the gateway writes it.
pub(crate) fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// A base64 field of an answer, decoded as text.
pub(crate) fn text_of(v: &Value) -> Option<String> {
    let bytes = B64.decode(v.as_str()?).ok()?;
    String::from_utf8(bytes).ok()
}

/// A 64-bit number of an answer (the gateway writes them as strings; absent is 0).
pub(crate) fn num(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_a_length_or_in_chunks_are_read_and_garbage_is_an_error() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        assert_eq!(parse_answer(plain).unwrap(), (200, b"{\"a\":1}".to_vec()));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_answer(chunked).unwrap(), (200, b"{\"a\":1}".to_vec()));
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-").is_err());
        assert!(parse_answer(b"\x00\x01garbage\r\n\r\n").is_err());
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse_answer(bad_chunk).is_err());
    }

    #[test]
    fn numbers_and_texts_of_the_gateway_decode() {
        assert_eq!(num(&Value::String("42".into())), 42);
        assert_eq!(num(&serde_json::json!(7)), 7);
        assert_eq!(num(&Value::Null), 0);
        assert_eq!(
            text_of(&Value::String(b64(b"127.0.0.1:7000"))).as_deref(),
            Some("127.0.0.1:7000")
        );
        assert_eq!(text_of(&Value::String("!!".into())), None);
    }

    #[test]
    fn endpoints_are_checked() {
        let t = Duration::from_millis(100);
        assert!(EtcdClient::new(&[], t).is_err());
        assert!(EtcdClient::new(&["http://127.0.0.1".into()], t).is_err());
        assert!(EtcdClient::new(&["http://h:1/x".into()], t).is_err());
        let c = EtcdClient::new(&["http://127.0.0.1:2379/".into(), "h:2".into()], t).unwrap();
        assert_eq!(c.endpoints(), ["127.0.0.1:2379", "h:2"]);
    }

    #[tokio::test]
    async fn an_endpoint_that_is_down_is_skipped_and_none_up_is_an_error() {
        let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = down.local_addr().unwrap().to_string();
        drop(down);
        let mut c = EtcdClient::new(&[addr.clone(), addr], Duration::from_millis(300)).unwrap();
        let err = c
            .call("kv/range", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, EtcdError::Unreachable(_)), "{err}");
    }
}
