//! Asking a coordinator process who leads (D7, X7): `GET /leader` on its HTTP
//! API (same port number as its QUIC endpoint, over TCP), answered from its
//! view of the election without touching its managers — a few hundred bytes,
//! whether it leads or stands by. The node's driver asks its other coordinator
//! addresses while its own link is silent ([`super::silence`] decides when, and
//! what an answer means); here too the driver's part: looking at the link,
//! sending the probes, moving the link when one names a new leader.

use super::Driver;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tiercast_proto::COORDINATOR_ID;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info};

/// How long one probe may take, connect included.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// Longest answer read (the real one is well under 100 bytes).
const MAX_ANSWER_BYTES: u64 = 1024;

/// Probe answers waiting for the driver at most (one per address per round;
/// one more is dropped, and its address asked again next round).
pub(crate) const ANSWER_QUEUE: usize = 64;

/// (the address asked, the leader it named — `None`: none, or no answer).
pub(crate) type ProbeAnswer = (SocketAddr, Option<SocketAddr>);

impl Driver {
    /// Every [`super::silence::CHECK_EVERY`]: how the coordinator link is, and
    /// the probes a silence calls for (none with a single address).
    pub(super) fn check_coordinator(&mut self) {
        let addrs = self.coordinator_link.addrs();
        if addrs.len() < 2 {
            return;
        }
        let now = Instant::now();
        let (received, rtt) = match self.links.received(COORDINATOR_ID) {
            Some((datagrams, rtt)) => (Some(datagrams), rtt),
            None => (None, Duration::ZERO),
        };
        self.silence.observe(now, received, rtt);
        let current = self.coordinator_link.addr();
        let probing = self.silence.probing();
        if let Some(addr) = self.silence.probe_due(now, addrs, current) {
            if !probing {
                info!(
                    "coordinator {current} silent for {:.1} s: asking the others who leads",
                    self.silence.quiet(now).as_secs_f64()
                );
            }
            let answers = self.probe_tx.clone();
            let manager = self.node.config().manager_id;
            tokio::spawn(async move {
                let leader = ask_leader(addr, manager, PROBE_TIMEOUT)
                    .await
                    .unwrap_or_else(|e| {
                        debug!(coordinator = %addr, error = %e, "leader probe told nothing");
                        None
                    });
                if answers.try_send((addr, leader)).is_err() {
                    debug!(coordinator = %addr, "leader probe answer dropped");
                }
            });
        }
    }

    /// A probe answered: when it names a new leader, the link moves there and
    /// a Register follows at once (parents, children, blocks stay).
    pub(super) fn on_probe_answer(&mut self, (probed, leader): ProbeAnswer) {
        let current = self.coordinator_link.addr();
        let Some(leader) = self
            .silence
            .answered(Instant::now(), probed, current, leader)
        else {
            return;
        };
        let to = self.coordinator_link.named_by_probe(probed, leader);
        self.move_coordinator(to);
        let now = self.clock.now();
        if self.node.is_registered() {
            self.node.coordinator_lost(now);
        } else {
            self.node.coordinator_moved();
        }
    }
}

/// Why a probe told nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("answer is not a leader view: {0}")]
    Malformed(String),
}

/// Who holds manager id `manager`, as the coordinator at `addr` knows it
/// (`None`: nobody now).
pub(crate) async fn ask_leader(
    addr: SocketAddr,
    manager: u16,
    timeout: Duration,
) -> Result<Option<SocketAddr>, ProbeError> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET /leader?manager={manager} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut answer)
            .await?;
        parse_answer(&answer)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ProbeError::Timeout(timeout))?
}

/// `200` with `{"leader": "host:port" | null}`.
fn parse_answer(bytes: &[u8]) -> Result<Option<SocketAddr>, ProbeError> {
    let bad = |why: &str| ProbeError::Malformed(why.to_string());
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no HTTP head"))?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| bad("head not UTF-8"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(ProbeError::Malformed(format!("status {status:.3}")));
    }
    let body: serde_json::Value =
        serde_json::from_slice(&bytes[end + 4..]).map_err(|e| bad(&e.to_string()))?;
    match &body["leader"] {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(l) => l
            .parse()
            .map(Some)
            .map_err(|_| ProbeError::Malformed(format!("leader {l:.64} is not host:port"))),
        _ => Err(bad("no leader field")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn answers_are_parsed_and_garbage_is_an_error_not_a_panic() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 29\r\n\r\n{\"leader\":\"127.0.0.1:7002\"}";
        assert_eq!(
            parse_answer(ok).unwrap(),
            Some("127.0.0.1:7002".parse().unwrap())
        );
        let none = b"HTTP/1.1 200 OK\r\n\r\n{\"leader\":null}";
        assert_eq!(parse_answer(none).unwrap(), None);
        for bad in [
            &b""[..],
            b"HTTP/1.1 404 Not Found\r\n\r\nno such path",
            b"HTTP/1.1 200 OK\r\n\r\n{\"leader\":\"somewhere\"}",
            b"HTTP/1.1 200 OK\r\n\r\n{\"leader\":7}",
            b"HTTP/1.1 200 OK\r\n\r\n{\"lead",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(parse_answer(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_coordinator_is_asked_over_http_and_a_silent_one_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET /leader?manager=0 HTTP/1.1\r\n"));
            let body = "{\"leader\":\"127.0.0.1:9\"}";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(answer.as_bytes()).await.unwrap();
        });
        let leader = ask_leader(addr, 0, PROBE_TIMEOUT).await.unwrap();
        assert_eq!(leader, Some("127.0.0.1:9".parse().unwrap()));

        // Accepts and never answers: the probe gives up on time.
        let mute = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mute_addr = mute.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let conn = mute.accept().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(conn);
        });
        let err = ask_leader(mute_addr, 0, Duration::from_millis(50)).await;
        assert!(matches!(err, Err(ProbeError::Timeout(_))), "{err:?}");
    }
}
