//! Why the coordinator does not take us, said on the node's own stderr within
//! a few seconds of start (X4, X3; issue 16 Must show 7): one line per cause,
//! at WARN, repeated at most every [`REPEAT_EVERY`] while it lasts (with the
//! attempts since), and at once when the cause or the address changes:
//!
//! - `coordinator 127.0.0.1:7000 refused us: cluster key mismatch (...)` — the
//!   link's admission was refused (its `Down` reason);
//! - `coordinator 127.0.0.1:7000 unreachable: connection refused (...)` /
//!   `timed out` — a Register got no answer and a TCP connect to the
//!   coordinator's HTTP port (the same port number) says why ([`tcp_cause`]);
//! - `... unreachable: no answer on UDP although its HTTP port answers` — a
//!   firewall in the way of the QUIC links, or another program on the port.
//!
//! The decision is sans-IO (time passed in); only [`tcp_cause`] touches a socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The same cause is said again at most this often.
pub(crate) const REPEAT_EVERY: Duration = Duration::from_secs(30);
/// How long the TCP probe waits for a connection.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the coordinator at an address does not take us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// It refused our link: a different cluster key.
    KeyMismatch,
    /// Nothing listens there (TCP connection refused).
    ConnectionRefused,
    /// No answer at all (TCP connect timed out).
    TimedOut,
    /// Its HTTP port accepts, but no answer to registrations over UDP.
    NoAnswerOnUdp,
    /// Another error of the TCP probe, in its own words.
    Other(String),
}

impl Cause {
    fn describe(&self) -> String {
        match self {
            Cause::KeyMismatch => {
                "refused us: cluster key mismatch (give every process the same --cluster-key / TIERCAST_CLUSTER_KEY)".into()
            }
            Cause::ConnectionRefused => "unreachable: connection refused (is it running, on this port?)".into(),
            Cause::TimedOut => "unreachable: timed out (a firewall, or a wrong host?)".into(),
            Cause::NoAnswerOnUdp => {
                "unreachable: no answer to registrations on UDP although its HTTP port answers (UDP blocked?)".into()
            }
            Cause::Other(e) => format!("unreachable: {e}"),
        }
    }
}

/// What was said last, for the rate limit.
#[derive(Debug, Default)]
pub(crate) struct CauseLog {
    last: Option<(SocketAddr, Cause, Instant)>,
    /// Attempts with the same cause since it was last said.
    since: u64,
}

impl CauseLog {
    /// `cause` was seen at `addr`, the next attempt `retry_in_ms` away: the
    /// line to log now, or `None` (said a moment ago; counted).
    pub(crate) fn seen(
        &mut self,
        addr: SocketAddr,
        cause: Cause,
        retry_in_ms: Option<u64>,
        now: Instant,
    ) -> Option<String> {
        if let Some((a, c, at)) = &self.last {
            if *a == addr && *c == cause && now.duration_since(*at) < REPEAT_EVERY {
                self.since += 1;
                return None;
            }
        }
        let again = match &self.last {
            Some((a, c, _)) if *a == addr && *c == cause && self.since > 0 => {
                format!("; {} attempts since last said", self.since)
            }
            _ => String::new(),
        };
        self.last = Some((addr, cause.clone(), now));
        self.since = 0;
        let retry = retry_in_ms.map_or_else(
            || "retrying".to_string(),
            |ms| format!("retrying every ~{:.0} s", (ms as f64 / 1000.0).max(1.0)),
        );
        Some(format!(
            "coordinator {addr} {} ({retry}{again})",
            cause.describe()
        ))
    }

    /// The cause last said for `addr`, if said within [`REPEAT_EVERY`].
    pub(crate) fn known(&self, addr: SocketAddr, now: Instant) -> Option<&Cause> {
        match &self.last {
            Some((a, c, at)) if *a == addr && now.duration_since(*at) < REPEAT_EVERY => Some(c),
            _ => None,
        }
    }

    /// The cause last said for `addr`, however long ago.
    pub(crate) fn latest(&self, addr: SocketAddr) -> Option<&Cause> {
        match &self.last {
            Some((a, c, _)) if *a == addr => Some(c),
            _ => None,
        }
    }

    /// The coordinator took us: the next trouble is said at once.
    pub(crate) fn clear(&mut self) {
        self.last = None;
        self.since = 0;
    }
}

/// Why a TCP connect to `addr` (the coordinator's HTTP port) fails, or
/// [`Cause::NoAnswerOnUdp`] when it connects.
pub(crate) async fn tcp_cause(addr: SocketAddr) -> Cause {
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Cause::NoAnswerOnUdp,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Cause::ConnectionRefused,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => Cause::TimedOut,
        Ok(Err(e)) => Cause::Other(e.to_string()),
        Err(_elapsed) => Cause::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn one_line_per_cause_repeated_after_a_while_and_at_once_on_change() {
        let mut log = CauseLog::default();
        let t0 = Instant::now();
        let first = log
            .seen(a(7000), Cause::KeyMismatch, Some(2000), t0)
            .unwrap();
        assert_eq!(
            first,
            "coordinator 127.0.0.1:7000 refused us: cluster key mismatch (give every process the same --cluster-key / TIERCAST_CLUSTER_KEY) (retrying every ~2 s)"
        );
        for i in 1..10 {
            let at = t0 + Duration::from_secs(i);
            assert_eq!(log.seen(a(7000), Cause::KeyMismatch, Some(2000), at), None);
        }
        assert_eq!(log.known(a(7000), t0), Some(&Cause::KeyMismatch));
        assert_eq!(log.known(a(7001), t0), None);
        let again = log
            .seen(a(7000), Cause::KeyMismatch, Some(4000), t0 + REPEAT_EVERY)
            .unwrap();
        assert!(
            again.ends_with("(retrying every ~4 s; 9 attempts since last said)"),
            "{again}"
        );
        let changed = log
            .seen(a(7000), Cause::ConnectionRefused, None, t0 + REPEAT_EVERY)
            .unwrap();
        assert!(
            changed.contains("unreachable: connection refused"),
            "{changed}"
        );
        assert!(
            log.seen(a(7001), Cause::ConnectionRefused, None, t0 + REPEAT_EVERY)
                .is_some(),
            "another address"
        );
        log.clear();
        assert!(log
            .seen(a(7001), Cause::ConnectionRefused, None, t0 + REPEAT_EVERY)
            .is_some());
    }

    #[tokio::test]
    async fn a_closed_port_is_connection_refused_an_open_one_no_answer_on_udp() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open_addr = open.local_addr().unwrap();
        assert_eq!(tcp_cause(open_addr).await, Cause::NoAnswerOnUdp);
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert_eq!(tcp_cause(closed).await, Cause::ConnectionRefused);
    }
}
