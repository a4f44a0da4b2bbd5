//! The operator's side of the coordinator API (C3): one `POST` with a body,
//! signed with the cluster key ([`super::operator_auth`]), and the answer's
//! status and text. Used by `tiercast policy apply`.

use super::operator_auth;
use crate::endpoint::CoordinatorUrl;
use crate::link::ClusterKey;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the coordinator at {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("the coordinator did not answer within {0} ms")]
    Timeout(u64),
    #[error("talking to the coordinator failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the coordinator's answer is not HTTP")]
    NotHttp,
}

/// `POST path` with `body` to the coordinator, signed with `key`: the status
/// and the body of the answer.
pub async fn post_signed(
    coordinator: &CoordinatorUrl,
    path: &str,
    body: &[u8],
    key: &ClusterKey,
    timeout: Duration,
) -> Result<(u16, String), ClientError> {
    let unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let auth = operator_auth::sign(key, path, unix_s, body);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(coordinator.addr)
            .await
            .map_err(|e| ClientError::Connect(coordinator.base.clone(), e))?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            coordinator.addr,
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER_BYTES as u64)
            .read_to_end(&mut answer)
            .await?;
        parse_answer(&answer).ok_or(ClientError::NotHttp)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ClientError::Timeout(timeout.as_millis() as u64))?
}

fn parse_answer(bytes: &[u8]) -> Option<(u16, String)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = String::from_utf8_lossy(&bytes[end + 4..])
        .trim_end()
        .to_string();
    Some((status, body))
}
