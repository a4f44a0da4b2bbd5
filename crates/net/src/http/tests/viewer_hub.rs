//! The fake hub of the viewer tests: a task answering `ViewerRequest`s the
//! way a relay's node driver would, reporting every `Leave` back to the test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tiercast_proto::ViewerId;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{block, within};
use crate::http::viewer::{
    serve_viewers_with, ViewerLimits, ViewerRefusal, ViewerRequest, ViewerServerStats, ViewerStream,
};

pub(super) type JoinReply = oneshot::Sender<Result<ViewerStream, ViewerRefusal>>;

/// A `Leave` as the hub received it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Left {
    pub channel: String,
    pub viewer: ViewerId,
    pub delivered: u64,
    pub skipped: u64,
}

pub(super) struct Server {
    pub addr: SocketAddr,
    pub stats: Arc<ViewerServerStats>,
    pub leaves: mpsc::UnboundedReceiver<Left>,
}

/// Payload size of the small blocks: one TS packet.
pub(super) const SMALL: usize = 188;

/// Starts a viewer server whose hub answers `Join` with `on_join`.
pub(super) async fn start(
    limits: ViewerLimits,
    join_timeout: Duration,
    mut on_join: impl FnMut(&str, JoinReply) + Send + 'static,
) -> Server {
    let listener = within(TcpListener::bind("127.0.0.1:0")).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(ViewerServerStats::default());
    let (requests, mut hub) = mpsc::channel(64);
    let (left_tx, leaves) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(request) = hub.recv().await {
            match request {
                ViewerRequest::Join { channel, reply, .. } => on_join(&channel, reply),
                ViewerRequest::Leave {
                    channel,
                    viewer,
                    delivered_blocks,
                    skipped_blocks,
                } => {
                    let _ = left_tx.send(Left {
                        channel,
                        viewer,
                        delivered: delivered_blocks,
                        skipped: skipped_blocks,
                    });
                }
                ViewerRequest::Status { reply } => {
                    let _ = reply.send(serde_json::json!({ "test": true }));
                }
                ViewerRequest::Metrics { reply } => {
                    let _ = reply.send("tiercast_test 1\n".into());
                }
            }
        }
    });
    tokio::spawn(serve_viewers_with(
        listener,
        requests,
        limits,
        stats.clone(),
        join_timeout,
    ));
    Server {
        addr,
        stats,
        leaves,
    }
}

/// The hub of most tests: `news` streams backlog 0..4 then live 2..10 (2 and
/// 3 repeat the backlog) and closes; `endless` streams until nobody listens;
/// `moved`, `busy` and everything else are refused.
pub(super) fn standard_hub(channel: &str, reply: JoinReply) {
    match channel {
        "news" => {
            let (tx, live) = broadcast::channel(64);
            let backlog = (0..4).map(|s| block(s, s == 0, SMALL)).collect();
            let _ = reply.send(Ok(ViewerStream {
                viewer: ViewerId(7),
                backlog,
                live,
            }));
            for seq in 2..10 {
                let _ = tx.send(block(seq, seq % 5 == 0, SMALL));
            }
        }
        "endless" => {
            let (tx, live) = broadcast::channel(64);
            let backlog = vec![block(0, true, SMALL), block(1, false, SMALL)];
            let _ = reply.send(Ok(ViewerStream {
                viewer: ViewerId(8),
                backlog,
                live,
            }));
            tokio::spawn(async move {
                for seq in 2..2_000 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if tx.send(block(seq, seq % 5 == 0, SMALL)).is_err() {
                        return;
                    }
                }
            });
        }
        "moved" => {
            let to = "http://10.0.0.2:8080/live/moved.ts".to_string();
            let _ = reply.send(Err(ViewerRefusal::Redirect(to)));
        }
        "busy" => {
            let _ = reply.send(Err(ViewerRefusal::Unavailable {
                retry_after_s: 9,
                reason: "relay full".into(),
            }));
        }
        other => {
            let reason = format!("channel {other} is not carried here");
            let _ = reply.send(Err(ViewerRefusal::NotFound(reason)));
        }
    }
}

pub(super) async fn start_standard() -> Server {
    start(
        ViewerLimits::default(),
        Duration::from_secs(5),
        standard_hub,
    )
    .await
}
