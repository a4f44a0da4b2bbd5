//! SRT ingest (features X1, X3; issue 17): an SRT listener (`srt-tokio`) that
//! an encoder calls — `ffmpeg -f mpegts "srt://host:port?streamid=KEY"`, OBS's
//! `srt://host:port?streamid=KEY`. The MPEG-TS inside goes through the same
//! cutter and pump as TCP.
//!
//! The stream id carries the publish key: a plain `KEY`, or SRT's
//! access-control form `#!::r=CHANNEL,k=KEY`. Refusals are SRT reject codes
//! the caller logs: 2401 (unauthorized: no key), 2403 (forbidden: wrong key),
//! 2404 (not found: another channel), 2409 (conflict: another publisher is
//! live). Latency and encryption (passphrase, any key length the caller
//! asks) are set per listener. Packets that are not SRT are dropped by the
//! crate's parser (counted in its `rx_parse_errors`).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use srt_protocol::settings::KeySettings;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::Passphrase;
use srt_tokio::{ConnectionRequest, SrtIncoming, SrtListener, SrtSocket};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info, warn};

use super::publish_key::{parse_srt_stream_id, KeyRefusal};
use super::pump::{Pump, PumpError};
use super::{IngestOptions, IngestStats, SessionConfig, IDLE_TIMEOUT, MAX_CONNECTIONS};

/// SRT's own default receive latency (ms).
pub const DEFAULT_LATENCY_MS: u64 = 120;
/// Longest stream id logged.
const MAX_LOGGED_STREAM_ID: usize = 96;

/// Binds the listener; returns it with its bound address.
pub(crate) async fn bind(
    addr: SocketAddr,
    options: &IngestOptions,
) -> std::io::Result<(SrtListener, SrtIncoming, SocketAddr)> {
    let socket = UdpSocket::bind(addr).await?;
    let local = socket.local_addr()?;
    let latency = std::time::Duration::from_millis(options.srt_latency_ms);
    let (listener, incoming) = SrtListener::builder()
        .latency(latency)
        .socket(socket)
        .bind(local)
        .await?;
    Ok((listener, incoming, local))
}

/// The SRT reject code for a key refusal.
pub fn reject_code(refusal: &KeyRefusal) -> ServerRejectReason {
    match refusal {
        KeyRefusal::Missing => ServerRejectReason::Unauthorized,
        KeyRefusal::Wrong(_) => ServerRejectReason::Forbidden,
        KeyRefusal::OtherChannel { .. } => ServerRejectReason::Notfound,
        KeyRefusal::NotYet => ServerRejectReason::Down,
    }
}

pub(crate) async fn serve(
    mut listener: SrtListener,
    mut incoming: SrtIncoming,
    cfg: SessionConfig,
) {
    // The listener's task ends when `listener` is dropped (its close channel
    // closes): it lives as long as this server.
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = cfg.out.closed() => break,
            Some(s) = listener.statistics().next() => {
                let before = cfg.stats.garbage_packets.swap(s.rx_parse_errors, Ordering::Relaxed);
                if s.rx_parse_errors > before && before == 0 {
                    warn!(parse_errors = s.rx_parse_errors, "SRT ingest: dropping datagrams that are not SRT");
                }
            }
            Some(_) = sessions.join_next() => {}
            request = incoming.incoming().next() => {
                let Some(request) = request else { break };
                if sessions.len() >= MAX_CONNECTIONS {
                    let peer = request.remote();
                    warn!(%peer, "SRT ingest: too many connections, refusing");
                    cfg.stats.reject_connection(format!("{peer}: over {MAX_CONNECTIONS} connections"));
                    let _ = request.reject(RejectReason::Server(ServerRejectReason::Overload)).await;
                    continue;
                }
                sessions.spawn(session(request, cfg.clone()));
            }
        }
    }
    debug!("SRT ingest stopped");
}

async fn session(request: ConnectionRequest, cfg: SessionConfig) {
    let peer = request.remote();
    let stream_id: String = request
        .stream_id()
        .map(|s| s.as_str().chars().take(MAX_LOGGED_STREAM_ID * 2).collect())
        .unwrap_or_default();
    let (channel, key) = parse_srt_stream_id(&stream_id);
    let shown: String = redact(&stream_id);
    if let Err(refusal) = cfg.options.keys.check(channel.as_deref(), key.as_deref()) {
        let code = reject_code(&refusal);
        warn!(%peer, stream_id = %shown, reason = %refusal, code = code as i32, "SRT ingest: refusing publisher");
        cfg.stats
            .refuse_key(format!("{peer}: SRT reject {}: {refusal}", code as i32));
        let _ = request.reject(RejectReason::Server(code)).await;
        return;
    }
    let Some(guard) = cfg.take_slot(&format!("SRT {peer}")).await else {
        let _ = request
            .reject(RejectReason::Server(ServerRejectReason::Conflict))
            .await;
        return;
    };
    let key_settings = match &cfg.options.srt_passphrase {
        Some(p) => match Passphrase::try_from(p.clone()) {
            Ok(passphrase) => Some(KeySettings {
                key_size: request.key_size(),
                passphrase,
            }),
            Err(_) => None,
        },
        None => None,
    };
    let socket = match request.accept(key_settings).await {
        Ok(s) => s,
        Err(e) => {
            let reason = match cfg.options.srt_passphrase {
                Some(_) => format!("SRT handshake failed (wrong or missing passphrase?): {e}"),
                None => format!("SRT handshake failed (the caller asked for encryption?): {e}"),
            };
            warn!(%peer, %reason, "SRT ingest: refusing publisher");
            cfg.stats.reject_connection(format!("{peer}: {reason}"));
            return;
        }
    };
    IngestStats::count(&cfg.stats.publishers, 1);
    info!(%peer, stream_id = %shown, "SRT ingest: publisher connected");
    let stats = cfg.stats.clone();
    let mut pump = Pump::new(cfg);
    let outcome = receive(socket, &mut pump, &guard, peer).await;
    let (bytes, blocks) = pump.totals();
    match outcome {
        Ok(()) => info!(%peer, bytes, blocks, "SRT ingest: publisher disconnected"),
        Err(PumpError::NotTransportStream(reason)) => {
            warn!(%peer, %reason, "SRT ingest: input is not MPEG-TS, closing");
            stats.reject_connection(format!("{peer}: not an MPEG-TS stream: {reason}"));
        }
        Err(PumpError::ReceiverGone) => {}
    }
}

pub(crate) async fn receive(
    mut socket: SrtSocket,
    pump: &mut Pump,
    guard: &super::PublisherGuard,
    peer: SocketAddr,
) -> Result<(), PumpError> {
    let mut idle_deadline = Instant::now() + IDLE_TIMEOUT;
    loop {
        tokio::select! {
            message = socket.next() => match message {
                None => return pump.finish().await,
                Some(Ok((_sent_at, data))) => {
                    idle_deadline = Instant::now() + IDLE_TIMEOUT;
                    pump.feed(&data).await?;
                }
                Some(Err(e)) => {
                    warn!(%peer, error = %e, "SRT ingest: receive failed");
                    return pump.finish().await;
                }
            },
            _ = sleep_until(pump.flush_deadline()) => pump.flush().await?,
            _ = sleep_until(idle_deadline) => {
                warn!(%peer, idle_s = IDLE_TIMEOUT.as_secs(), "SRT ingest: publisher silent, closing");
                return pump.finish().await;
            }
            _ = guard.taken_over() => {
                info!(%peer, "SRT ingest: another publisher took over, closing");
                return pump.finish().await;
            }
        }
    }
}

/// The stream id with its key replaced, for logs.
fn redact(stream_id: &str) -> String {
    let shown: String = match stream_id.strip_prefix("#!::") {
        Some(fields) => {
            let fields: Vec<String> = fields
                .split(',')
                .map(|f| match f.split_once('=') {
                    Some(("k", _)) => "k=***".to_string(),
                    _ => f.to_string(),
                })
                .collect();
            format!("#!::{}", fields.join(","))
        }
        None if stream_id.is_empty() => String::new(),
        None => "***".to_string(),
    };
    shown.chars().take(MAX_LOGGED_STREAM_ID).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_not_logged() {
        assert_eq!(redact("#!::r=live,k=abc"), "#!::r=live,k=***");
        assert_eq!(redact("abc"), "***");
        assert_eq!(redact(""), "");
    }

    #[test]
    fn codes() {
        assert_eq!(reject_code(&KeyRefusal::Missing) as i32, 2401);
        assert_eq!(reject_code(&KeyRefusal::Wrong("x".into())) as i32, 2403);
    }
}
