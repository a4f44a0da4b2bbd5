//! The accept loop shared by the viewer server and the coordinator API: a hard
//! cap on concurrent connections (answered with `503` + `Retry-After` beyond
//! it), connection counters, and survival of accept errors such as `EMFILE`.
//!
//! Features: X3 (bounded resources, clear errors).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::response::Response;

/// `Retry-After` sent with the connection-limit refusal.
pub(crate) const BUSY_RETRY_AFTER_S: u32 = 2;
/// Refusals written concurrently at most; beyond, the refusal is attempted
/// with one non-blocking write and the socket is dropped.
const MAX_REFUSALS_IN_FLIGHT: usize = 256;
/// Pause after a failed `accept` (usually out of file descriptors).
const ACCEPT_ERROR_BACKOFF_MS: u64 = 50;

/// The counters every server keeps about its connections.
pub(crate) trait ConnectionCounters: Send + Sync + 'static {
    /// Connections accepted, in total.
    fn connections(&self) -> &AtomicU64;
    /// Connections being served now.
    fn active(&self) -> &AtomicU64;
    /// Requests refused (here: over the connection limit).
    fn refused(&self) -> &AtomicU64;
}

/// Decrements `active` when the connection task ends, however it ends.
struct ActiveGuard<S: ConnectionCounters>(Arc<S>);

impl<S: ConnectionCounters> Drop for ActiveGuard<S> {
    fn drop(&mut self) {
        self.0.active().fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections until `until` completes, running `handler` in its own
/// task for each one while fewer than `max_connections` are being served.
pub(crate) async fn accept_loop<S, H, Fut>(
    server: &'static str,
    listener: TcpListener,
    max_connections: usize,
    stats: Arc<S>,
    until: impl Future<Output = ()>,
    handler: H,
) where
    S: ConnectionCounters,
    H: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS)));
    let refusal_slots = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    tokio::pin!(until);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut until => {
                debug!(server, "accept loop stops: its request handler is gone");
                return;
            }
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    warn!(server, error = %e, "accept failed; backing off");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)).await;
                    continue;
                }
            },
        };
        stats.connections().fetch_add(1, Ordering::Relaxed);
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                stats.active().fetch_add(1, Ordering::Relaxed);
                let guard = ActiveGuard(stats.clone());
                let serve = handler(stream, peer);
                tokio::spawn(async move {
                    serve.await;
                    drop(permit);
                    drop(guard);
                });
            }
            Err(_) => {
                stats.refused().fetch_add(1, Ordering::Relaxed);
                let reason =
                    format!("server at its limit of {max_connections} connections; retry shortly");
                debug!(server, %peer, %reason, "refused");
                let response = Response::unavailable(BUSY_RETRY_AFTER_S, reason);
                match refusal_slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tokio::spawn(async move {
                            response.send(stream, false).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        let _ = stream.try_write(&response.encode(false));
                    }
                }
            }
        }
    }
}
