//! UDP ingest (feature X1): every datagram from any sender is one push into a
//! single cutter (`ffmpeg -f mpegts udp://host:port`). Senders need not align
//! datagrams to packets (ffmpeg's default 1472-byte datagrams split packets).
//!
//! A datagram is taken if it continues the packet alignment of the stream
//! (also a fragment inside one packet) or looks like TS by itself (the first
//! one, a new sender, after a lost datagram); anything else is dropped and
//! counted, as is input the cutter refuses (it then starts over). A warning
//! naming the sender and the reason goes out at most once per 10 s.
//!
//! UDP carries no key: with publish keys on (X3), only senders in the
//! `--ingest-allow` list are taken; others are dropped and counted the same way.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tiercast_media::probe::{datagram_looks_like_ts, describe};
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, Instant};
use tracing::{debug, warn};

use super::pump::{Pump, PumpError};
use super::{IngestStats, SessionConfig};

/// Largest UDP payload.
const MAX_DATAGRAM_BYTES: usize = 65_536;
/// At most one warning about refused datagrams per this period.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Rate-limits the warning about refused datagrams.
struct RefusalLog {
    last_warn: Option<Instant>,
    suppressed: u64,
}

impl RefusalLog {
    fn refuse(&mut self, stats: &IngestStats, from: SocketAddr, reason: String) {
        stats.rejected_datagrams.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let due = match self.last_warn {
            Some(at) => now >= at + WARN_EVERY,
            None => true,
        };
        if due {
            warn!(
                %from,
                %reason,
                suppressed = self.suppressed,
                "UDP ingest: dropping datagrams that are not MPEG-TS"
            );
            self.last_warn = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        stats.set_error(format!("datagram from {from}: {reason}"));
    }
}

pub(crate) async fn serve(socket: UdpSocket, cfg: SessionConfig) {
    let closed = cfg.out.clone();
    let stats = cfg.stats.clone();
    let allow = cfg.options.allow.clone();
    let keys = cfg.options.keys.clone();
    let mut pump = Pump::new(cfg);
    let mut log = RefusalLog {
        last_warn: None,
        suppressed: 0,
    };
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    loop {
        tokio::select! {
            _ = closed.closed() => break,
            received = socket.recv_from(&mut buf) => {
                let (len, from) = match received {
                    Ok(r) => r,
                    Err(e) => {
                        // E.g. an ICMP port-unreachable surfacing on Linux; keep going.
                        debug!(error = %e, "UDP ingest: receive failed");
                        continue;
                    }
                };
                let datagram = &buf[..len];
                if let Err(reason) = allow.check(from.ip(), keys.required()) {
                    log.refuse(&stats, from, reason);
                    continue;
                }
                if !pump.continues_stream(datagram) && !datagram_looks_like_ts(datagram) {
                    let reason = format!("not an MPEG-TS datagram ({len} bytes): {}", describe(datagram));
                    log.refuse(&stats, from, reason);
                    continue;
                }
                match pump.feed(datagram).await {
                    Ok(()) => {}
                    Err(PumpError::NotTransportStream(reason)) => {
                        log.refuse(&stats, from, reason);
                        pump.reset();
                    }
                    Err(PumpError::ReceiverGone) => break,
                }
            }
            _ = sleep_until(pump.flush_deadline()) => {
                if let Err(PumpError::ReceiverGone) = pump.flush().await {
                    break;
                }
            }
        }
    }
    debug!("UDP ingest stopped: block receiver gone");
}
