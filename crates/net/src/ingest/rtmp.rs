//! RTMP ingest (features X1, X3; issue 17): what OBS sends by default —
//! `rtmp://host:port/live/STREAMKEY`, FLV with H.264 and AAC. The handshake and
//! chunk stream are `rml_rtmp`'s; the FLV tags are remuxed into MPEG-TS by
//! `tiercast_media::FlvToTs` and go through the same cutter and pump as TCP.
//!
//! The stream key is the publish key (anything after a `?` in it is ignored).
//! A missing or wrong key, or a second publisher, gets the publish answered
//! with an `_error` status `NetStream.Publish.BadName` whose description says
//! why (ffmpeg prints it; OBS shows a failed connection), then the connection
//! closes. Counted in the ingest stats and logged.
//!
//! Limits: the handshake within 10 s and 8 KiB; before publishing, at most
//! 64 KiB received without a complete message; while publishing, 8 MiB (one
//! FLV tag); a tag whose NAL lengths run past it is dropped and counted;
//! HEVC (enhanced RTMP) or a codec other than H.264 ends the session with
//! the reason.

use std::net::SocketAddr;
use std::time::Duration;

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tiercast_media::{FlvError, FlvToTs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, info, warn};

use super::pump::{Pump, PumpError};
use super::{
    accept_loop, IngestStats, PublisherGuard, PublisherSlot, SessionConfig, IDLE_TIMEOUT,
    READ_BUFFER_BYTES,
};

/// Time allowed for the whole handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes read during the handshake (C0+C1+C2 are 3073).
pub const MAX_HANDSHAKE_BYTES: usize = 8 * 1024;
/// Bytes received without a complete message, before publishing.
pub const MAX_PENDING_BEFORE_PUBLISH: usize = 64 * 1024;
/// Bytes received without a complete message while publishing (one tag).
pub const MAX_PENDING_PUBLISHING: usize = tiercast_media::ts_mux::MAX_ACCESS_UNIT_BYTES;
/// The status code of every publish refusal.
pub const REFUSAL_CODE: &str = "NetStream.Publish.BadName";
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn serve(listener: TcpListener, cfg: SessionConfig) {
    accept_loop(listener, cfg, session).await;
}

/// Why a session ended early: the reason is logged and counted.
#[derive(Debug)]
enum End {
    /// The client left or finished.
    Done,
    /// Refused (already counted) or broken: close.
    Refused(String),
    Pump(PumpError),
}

/// Fields drop in order: the pump (its health `publishing: false`) before
/// the guard lets a taking-over publisher in.
struct Publishing {
    pump: Pump,
    remux: FlvToTs,
    dropped_tags: u64,
    guard: PublisherGuard,
}

struct Conn {
    peer: SocketAddr,
    cfg: SessionConfig,
    session: ServerSession,
    publishing: Option<Publishing>,
    /// Received since the last complete message.
    pending_bytes: usize,
    ts_buf: Vec<u8>,
    /// Set by a refusal: the session ends once its answer is written.
    closing: Option<End>,
}

async fn session(
    mut stream: TcpStream,
    peer: SocketAddr,
    cfg: SessionConfig,
    _slot: PublisherSlot,
) {
    let remaining = match timeout(HANDSHAKE_TIMEOUT, handshake(&mut stream)).await {
        Ok(Ok(Some(rest))) => rest,
        Ok(Ok(None)) => {
            debug!(%peer, "RTMP ingest: client left during the handshake");
            cfg.stats
                .reject_connection(format!("{peer}: RTMP handshake cut short"));
            return;
        }
        Ok(Err(reason)) => {
            warn!(%peer, %reason, "RTMP ingest: bad handshake, closing");
            cfg.stats
                .reject_connection(format!("{peer}: RTMP handshake: {reason}"));
            return;
        }
        Err(_) => {
            warn!(%peer, "RTMP ingest: handshake not done in time, closing");
            cfg.stats.reject_connection(format!(
                "{peer}: RTMP handshake not done within {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            ));
            return;
        }
    };
    let (session, initial) = match ServerSession::new(ServerSessionConfig::new()) {
        Ok(s) => s,
        Err(e) => {
            warn!(%peer, error = ?e, "RTMP ingest: session setup failed");
            return;
        }
    };
    let stats = cfg.stats.clone();
    let mut conn = Conn {
        peer,
        cfg,
        session,
        publishing: None,
        pending_bytes: 0,
        ts_buf: Vec::new(),
        closing: None,
    };
    let mut end = conn.results(&mut stream, initial).await;
    if end.is_none() && !remaining.is_empty() {
        end = conn.input(&mut stream, &remaining).await;
    }
    let end = match end {
        Some(e) => e,
        None => conn.run(&mut stream).await,
    };
    let publishing = conn.publishing.take();
    let totals = publishing.as_ref().map(|p| p.pump.totals());
    let end = match (end, publishing) {
        (End::Done, Some(mut p)) => match p.pump.finish().await {
            Ok(()) => End::Done,
            Err(e) => End::Pump(e),
        },
        (end, _) => end,
    };
    match end {
        End::Done => match totals {
            Some((bytes, blocks)) => {
                info!(%peer, bytes, blocks, "RTMP ingest: publisher disconnected")
            }
            None => debug!(%peer, "RTMP ingest: client left without publishing"),
        },
        End::Refused(reason) => {
            debug!(%peer, %reason, "RTMP ingest: session closed");
            let _ = timeout(WRITE_TIMEOUT, stream.shutdown()).await;
        }
        End::Pump(PumpError::NotTransportStream(reason)) => {
            warn!(%peer, %reason, "RTMP ingest: remuxed stream refused by the cutter");
            stats.reject_connection(format!("{peer}: remuxed stream not usable: {reason}"));
        }
        End::Pump(PumpError::ReceiverGone) => {}
    }
}

/// Serves the handshake; `Ok(None)`: the client left; `Ok(Some(rest))`: bytes after it.
async fn handshake(stream: &mut TcpStream) -> Result<Option<Vec<u8>>, String> {
    let mut hs = Handshake::new(PeerType::Server);
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => n,
        };
        total += n;
        if total > MAX_HANDSHAKE_BYTES {
            return Err(format!(
                "over {MAX_HANDSHAKE_BYTES} bytes without completing"
            ));
        }
        match hs.process_bytes(&buf[..n]) {
            Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                write(stream, &response_bytes).await?;
            }
            Ok(HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            }) => {
                write(stream, &response_bytes).await?;
                return Ok(Some(remaining_bytes));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), String> {
    match timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err("write timed out".into()),
    }
}

impl Conn {
    async fn run(&mut self, stream: &mut TcpStream) -> End {
        let mut buf = vec![0u8; READ_BUFFER_BYTES];
        let mut idle_deadline = Instant::now() + IDLE_TIMEOUT;
        let far = || Instant::now() + Duration::from_secs(86_400);
        loop {
            let flush_at = self
                .publishing
                .as_ref()
                .map_or_else(far, |p| p.pump.flush_deadline());
            let taken_over = async {
                match &self.publishing {
                    Some(p) => p.guard.taken_over().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return End::Done,
                    Ok(n) => {
                        idle_deadline = Instant::now() + IDLE_TIMEOUT;
                        if let Some(end) = self.input(stream, &buf[..n]).await {
                            return end;
                        }
                    }
                },
                _ = sleep_until(flush_at) => {
                    if let Some(p) = &mut self.publishing {
                        if let Err(e) = p.pump.flush().await {
                            return End::Pump(e);
                        }
                    }
                }
                _ = sleep_until(idle_deadline) => {
                    warn!(peer = %self.peer, idle_s = IDLE_TIMEOUT.as_secs(), "RTMP ingest: client silent, closing");
                    return End::Done;
                }
                _ = taken_over => {
                    info!(peer = %self.peer, "RTMP ingest: another publisher took over, closing");
                    return End::Done;
                }
            }
        }
    }

    /// Bytes from the client: through the session, answers and events handled.
    async fn input(&mut self, stream: &mut TcpStream, data: &[u8]) -> Option<End> {
        let results = match session_input(&mut self.session, data) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("malformed RTMP: {e}");
                warn!(peer = %self.peer, %reason, "RTMP ingest: closing");
                self.cfg
                    .stats
                    .reject_connection(format!("{}: {reason}", self.peer));
                return Some(End::Refused(reason));
            }
        };
        if results.is_empty() {
            self.pending_bytes += data.len();
            let limit = match self.publishing {
                Some(_) => MAX_PENDING_PUBLISHING,
                None => MAX_PENDING_BEFORE_PUBLISH,
            };
            if self.pending_bytes > limit {
                let reason = format!("an RTMP message over {limit} bytes");
                warn!(peer = %self.peer, %reason, "RTMP ingest: closing");
                self.cfg
                    .stats
                    .reject_connection(format!("{}: {reason}", self.peer));
                return Some(End::Refused(reason));
            }
        } else {
            self.pending_bytes = 0;
        }
        self.results(stream, results).await
    }

    async fn results(
        &mut self,
        stream: &mut TcpStream,
        results: Vec<ServerSessionResult>,
    ) -> Option<End> {
        let mut queue = std::collections::VecDeque::from(results);
        while let Some(result) = queue.pop_front() {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    if let Err(reason) = write(stream, &packet.bytes).await {
                        return Some(End::Refused(reason));
                    }
                }
                ServerSessionResult::RaisedEvent(event) => match self.event(event).await {
                    Ok(more) => queue.extend(more),
                    Err(end) => return Some(end),
                },
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        self.closing.take()
    }

    async fn event(&mut self, event: ServerSessionEvent) -> Result<Vec<ServerSessionResult>, End> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                debug!(peer = %self.peer, %app_name, "RTMP ingest: connect");
                self.accept(request_id)
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                ..
            } => self.publish(request_id, &app_name, &stream_key).await,
            ServerSessionEvent::PublishStreamFinished { .. } => Err(End::Done),
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => {
                self.media(true, u64::from(timestamp.value), &data).await?;
                Ok(Vec::new())
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                self.media(false, u64::from(timestamp.value), &data).await?;
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    fn accept(&mut self, request_id: u32) -> Result<Vec<ServerSessionResult>, End> {
        self.session
            .accept_request(request_id)
            .map_err(|e| End::Refused(format!("RTMP accept failed: {e}")))
    }

    /// Refuses the publish with `reason` (counted by the caller) and ends.
    fn refuse(&mut self, request_id: u32, reason: &str) -> Result<Vec<ServerSessionResult>, End> {
        match self
            .session
            .reject_request(request_id, REFUSAL_CODE, reason)
        {
            Ok(r) => Ok(r),
            Err(_) => Err(End::Refused(reason.to_string())),
        }
    }

    async fn publish(
        &mut self,
        request_id: u32,
        app: &str,
        stream_key: &str,
    ) -> Result<Vec<ServerSessionResult>, End> {
        let peer = self.peer;
        if self.publishing.is_some() {
            return self.refuse(request_id, "already publishing on this connection");
        }
        let key = stream_key.split('?').next().unwrap_or("");
        if let Err(refusal) = self.cfg.options.keys.check(None, Some(key)) {
            let reason = refusal.to_string();
            warn!(%peer, %app, %reason, "RTMP ingest: refusing publisher");
            self.cfg
                .stats
                .refuse_key(format!("{peer}: RTMP {REFUSAL_CODE}: {reason}"));
            let out = self.refuse(request_id, &reason)?;
            return self.refused_after(out, reason);
        }
        let Some(guard) = self.cfg.take_slot(&format!("RTMP {peer}")).await else {
            let reason = "another publisher is live on this channel".to_string();
            let out = self.refuse(request_id, &reason)?;
            return self.refused_after(out, reason);
        };
        let out = self.accept(request_id)?;
        IngestStats::count(&self.cfg.stats.publishers, 1);
        info!(%peer, %app, "RTMP ingest: publisher connected");
        self.publishing = Some(Publishing {
            pump: Pump::new(self.cfg.clone()),
            remux: FlvToTs::new(),
            dropped_tags: 0,
            guard,
        });
        Ok(out)
    }

    /// The refusal's answer goes out first, then the session ends.
    fn refused_after(
        &mut self,
        out: Vec<ServerSessionResult>,
        reason: String,
    ) -> Result<Vec<ServerSessionResult>, End> {
        self.closing = Some(End::Refused(reason));
        Ok(out)
    }

    async fn media(&mut self, video: bool, ts_ms: u64, data: &[u8]) -> Result<(), End> {
        let peer = self.peer;
        let Some(p) = &mut self.publishing else {
            return Ok(()); // media before publish: ignored
        };
        self.ts_buf.clear();
        let remuxed = match video {
            true => p.remux.video(ts_ms, data, &mut self.ts_buf),
            false => p.remux.audio(ts_ms, data, &mut self.ts_buf),
        };
        match remuxed {
            Ok(()) => {}
            Err(e @ (FlvError::UnsupportedVideo(_) | FlvError::NoAvcConfig)) => {
                let reason = e.to_string();
                warn!(%peer, %reason, "RTMP ingest: cannot remux this stream, closing");
                self.cfg
                    .stats
                    .reject_connection(format!("{peer}: RTMP: {reason}"));
                return Err(End::Refused(reason));
            }
            Err(e) => {
                p.dropped_tags += 1;
                if p.dropped_tags.is_power_of_two() {
                    warn!(%peer, error = %e, dropped = p.dropped_tags, "RTMP ingest: dropping a tag");
                }
                self.cfg
                    .stats
                    .set_error(format!("{peer}: RTMP tag dropped: {e}"));
                IngestStats::count(&self.cfg.stats.dropped_tags, 1);
                return Ok(());
            }
        }
        if !self.ts_buf.is_empty() {
            p.pump.feed(&self.ts_buf).await.map_err(End::Pump)?;
        }
        Ok(())
    }
}

/// Bytes from the publisher through `rml_rtmp`'s session. rml_rtmp 0.8 panics on
/// some malformed messages (an AMF command message with fewer than three values
/// slices past its end: found by the `rtmp_session` fuzz target, X3); the panic
/// is caught here and the input is refused as malformed, like any decode error.
/// `pub` for that fuzz target.
#[doc(hidden)]
pub fn session_input(
    session: &mut ServerSession,
    data: &[u8],
) -> Result<Vec<ServerSessionResult>, String> {
    let decoded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.handle_input(data)));
    match decoded {
        Ok(Ok(results)) => Ok(results),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("a message the RTMP decoder cannot read (it panicked)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/fuzz_targets/rtmp_session.rs`: a type 17 (AMF3 command)
    /// message whose body holds too few values made rml_rtmp 0.8 panic
    /// (`range end index 3 out of range for slice of length 0`).
    #[test]
    fn short_amf_command_is_refused_not_a_panic() {
        let input = [
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x40, 0x01, 0x7e, 0x00, 0x01,
            0xff, 0x4a,
        ];
        let (mut session, _) = ServerSession::new(ServerSessionConfig::new()).unwrap();
        let answer = session_input(&mut session, &input);
        assert!(answer.is_err(), "{answer:?}");
    }
}
