//! SRT caller mode (features X1; issue 17): the origin dials an encoder that
//! listens (`ffmpeg ... -f mpegts "srt://0.0.0.0:9000?mode=listener"`, or an
//! SRT gateway) and ingests what it sends, through the same pump as the
//! listener. No publish key is asked: the origin chose its peer. Dials again
//! after a failure or the end of a stream, backing off from 1 s to 5 s; the
//! stream id (`--srt-stream-id`) and passphrase are sent if set.

use std::net::SocketAddr;
use std::time::Duration;

use srt_tokio::SrtSocket;
use tracing::{debug, info, warn};

use super::pump::{Pump, PumpError};
use super::{IngestStats, SessionConfig};

/// First and longest wait between two dials.
pub const REDIAL_FIRST: Duration = Duration::from_secs(1);
pub const REDIAL_MAX: Duration = Duration::from_secs(5);

pub(crate) async fn serve(remote: SocketAddr, cfg: SessionConfig) {
    let mut wait = REDIAL_FIRST;
    loop {
        let dial = dial(remote, &cfg);
        let socket = tokio::select! {
            _ = cfg.out.closed() => break,
            s = dial => s,
        };
        match socket {
            Ok(socket) => {
                wait = REDIAL_FIRST;
                if let Err(PumpError::ReceiverGone) = run(socket, remote, &cfg).await {
                    break;
                }
            }
            Err(e) => {
                debug!(%remote, error = %e, "SRT caller: dial failed");
                cfg.stats
                    .set_error(format!("SRT caller: cannot reach {remote}: {e}"));
            }
        }
        tokio::select! {
            _ = cfg.out.closed() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(REDIAL_MAX);
    }
    debug!("SRT caller stopped");
}

async fn dial(remote: SocketAddr, cfg: &SessionConfig) -> std::io::Result<SrtSocket> {
    let mut builder =
        SrtSocket::builder().latency(Duration::from_millis(cfg.options.srt_latency_ms));
    if let Some(p) = &cfg.options.srt_passphrase {
        builder = builder.encryption(16, p.clone());
    }
    builder
        .call(remote, cfg.options.srt_stream_id.as_deref())
        .await
}

async fn run(socket: SrtSocket, remote: SocketAddr, cfg: &SessionConfig) -> Result<(), PumpError> {
    let Some(guard) = cfg.take_slot(&format!("SRT caller {remote}")).await else {
        return Ok(());
    };
    IngestStats::count(&cfg.stats.publishers, 1);
    info!(%remote, "SRT caller: connected, ingesting");
    let mut pump = Pump::new(cfg.clone());
    let outcome = super::srt::receive(socket, &mut pump, &guard, remote).await;
    let (bytes, blocks) = pump.totals();
    match outcome {
        Ok(()) => {
            info!(%remote, bytes, blocks, "SRT caller: stream ended, dialing again");
            Ok(())
        }
        Err(PumpError::NotTransportStream(reason)) => {
            warn!(%remote, %reason, "SRT caller: input is not MPEG-TS");
            cfg.stats
                .reject_connection(format!("{remote}: not an MPEG-TS stream: {reason}"));
            Ok(())
        }
        Err(e) => Err(e),
    }
}
