//! TCP ingest (feature X1): a publisher connects and writes a raw transport
//! stream (`ffmpeg -f mpegts tcp://host:port`). TCP carries no key: with
//! publish keys on, only sources in the `--ingest-allow` list may publish
//! (feature X3). One publisher at a time — a second connection while one is
//! live is closed with a warning, or takes over — and a fresh
//! cutter per connection. Input that is not MPEG-TS closes the connection
//! with a warning naming the reason; it is counted in `rejected_connections`.

use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

use super::pump::{Pump, PumpError};
use super::{
    accept_loop, IngestStats, PublisherSlot, SessionConfig, IDLE_TIMEOUT, READ_BUFFER_BYTES,
};

pub(crate) async fn serve(listener: TcpListener, cfg: SessionConfig) {
    accept_loop(listener, cfg, session).await;
}

async fn session(
    mut stream: TcpStream,
    peer: SocketAddr,
    cfg: SessionConfig,
    _slot: PublisherSlot,
) {
    if let Err(reason) = cfg
        .options
        .allow
        .check(peer.ip(), cfg.options.keys.required())
    {
        warn!(%peer, %reason, "TCP ingest: refusing publisher");
        cfg.stats.refuse_key(reason);
        return;
    }
    let Some(guard) = cfg.take_slot(&format!("TCP {peer}")).await else {
        return;
    };
    IngestStats::count(&cfg.stats.publishers, 1);
    info!(%peer, "TCP ingest: publisher connected");
    let stats = cfg.stats.clone();
    let mut pump = Pump::new(cfg);
    let mut buf = vec![0u8; READ_BUFFER_BYTES];
    let mut idle_deadline = Instant::now() + IDLE_TIMEOUT;
    let outcome = loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => break pump.finish().await,
                Ok(n) => {
                    idle_deadline = Instant::now() + IDLE_TIMEOUT;
                    if let Err(e) = pump.feed(&buf[..n]).await {
                        break Err(e);
                    }
                }
                Err(e) => {
                    warn!(%peer, error = %e, "TCP ingest: read failed");
                    break pump.finish().await;
                }
            },
            _ = sleep_until(pump.flush_deadline()) => {
                if let Err(e) = pump.flush().await {
                    break Err(e);
                }
            }
            _ = sleep_until(idle_deadline) => {
                warn!(%peer, idle_s = IDLE_TIMEOUT.as_secs(), "TCP ingest: publisher silent, closing");
                break pump.finish().await;
            }
            _ = guard.taken_over() => {
                info!(%peer, "TCP ingest: another publisher took over, closing");
                break pump.finish().await;
            }
        }
    };
    let (bytes, blocks) = pump.totals();
    match outcome {
        Ok(()) => info!(%peer, bytes, blocks, "TCP ingest: publisher disconnected"),
        Err(PumpError::NotTransportStream(reason)) => {
            warn!(%peer, %reason, "TCP ingest: input is not MPEG-TS, closing");
            stats.reject_connection(format!("{peer}: not an MPEG-TS stream: {reason}"));
        }
        Err(PumpError::ReceiverGone) => {}
    }
}
