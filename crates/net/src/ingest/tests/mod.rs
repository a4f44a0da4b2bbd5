//! Loopback tests of the ingest servers (X1), fed by the built-in test
//! source and by a real ffmpeg (required: the ffmpeg test fails without it):
//! shared helpers and the server-wide tests here, per protocol in `udp_tcp`
//! and `http`.

mod http;
mod rtmp;
mod srt;
mod udp_tcp;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tiercast_media::{CutBlock, CutterConfig, TestSource};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::{start_ingest, IngestHandle, IngestListen};

pub(super) const WAIT: Duration = Duration::from_secs(10);
const FLUSH_MS: u64 = 50;

pub(super) fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("valid address")
}

/// Two seconds of test stream: two keyframes.
pub(super) fn stream() -> Bytes {
    TestSource::new(600, 1000).generate(2_000_000)
}

pub(super) async fn start(
    listen: fn(SocketAddr) -> IngestListen,
) -> (IngestHandle, mpsc::Receiver<CutBlock>) {
    let (tx, rx) = mpsc::channel(64);
    let handle = timeout(
        WAIT,
        start_ingest(listen(loopback()), CutterConfig::default(), tx, FLUSH_MS),
    )
    .await
    .expect("bind in time")
    .expect("bind");
    (handle, rx)
}

/// Receives blocks until their bytes add up to `total`.
pub(super) async fn collect(rx: &mut mpsc::Receiver<CutBlock>, total: usize) -> Vec<CutBlock> {
    let mut blocks = Vec::new();
    let mut bytes = 0;
    while bytes < total {
        let block = timeout(WAIT, rx.recv())
            .await
            .expect("block in time")
            .expect("ingest alive");
        bytes += block.payload.len();
        blocks.push(block);
    }
    blocks
}

pub(super) fn assert_same_stream(blocks: &[CutBlock], sent: &[u8]) {
    let joined: Vec<u8> = blocks
        .iter()
        .flat_map(|b| b.payload.iter().copied())
        .collect();
    assert_eq!(joined.len(), sent.len());
    assert!(joined == sent, "blocks reproduce the stream");
    assert_eq!(blocks.iter().filter(|b| b.keyframe).count(), 2);
    assert!(blocks[0].keyframe);
}

pub(super) async fn read_to_end(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn ingest_stops_when_the_receiver_is_gone() {
    let (handle, rx) = start(IngestListen::Tcp).await;
    drop(rx);
    timeout(WAIT, async {
        while !handle.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("server stops");
}

/// Panics unless ffmpeg runs: a test that needs it never passes without it.
fn require_ffmpeg() {
    let ran = std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    assert!(
        ran.as_ref().is_ok_and(|s| s.success()),
        "ffmpeg is required by this test and could not be run ({ran:?}): install ffmpeg \
         (scripts/test.sh installs it with apt)"
    );
}

#[tokio::test]
async fn ffmpeg_pushes_over_http_post() {
    require_ffmpeg();
    let (handle, mut rx) = start(IngestListen::Http).await;
    let url = format!("http://{}/ingest", handle.local_addr);
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-nostdin",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
        ])
        .args([
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-f", "mpegts", "-method", "POST", &url])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start ffmpeg");
    let pid = ffmpeg.id().expect("ffmpeg has a pid");
    let mut keyframes = 0;
    let received = timeout(Duration::from_secs(30), async {
        while keyframes < 2 {
            match rx.recv().await {
                Some(block) => keyframes += usize::from(block.keyframe),
                None => break,
            }
        }
    })
    .await;
    let status = timeout(Duration::from_secs(30), ffmpeg.wait()).await;
    if !matches!(status, Ok(Ok(_))) {
        // Still running: stop this one process, by its id.
        eprintln!("stopping ffmpeg pid {pid}");
        let _ = ffmpeg.start_kill();
        let _ = ffmpeg.wait().await;
    }
    received.expect("keyframe blocks in time");
    assert_eq!(keyframes, 2);
    assert!(
        status.expect("ffmpeg exits").expect("wait").success(),
        "ffmpeg got a 200"
    );
    assert_eq!(handle.stats.rejected_connections.load(Ordering::Relaxed), 0);
}

/// [`start`] with publish keys, allow-list, takeover or SRT settings.
pub(super) async fn start_with(
    listen: fn(SocketAddr) -> IngestListen,
    options: super::IngestOptions,
) -> (IngestHandle, mpsc::Receiver<CutBlock>) {
    let (tx, rx) = mpsc::channel(64);
    let handle = timeout(
        WAIT,
        super::start_ingest_with(
            listen(loopback()),
            options,
            CutterConfig::default(),
            tx,
            FLUSH_MS,
        ),
    )
    .await
    .expect("bind in time")
    .expect("bind");
    (handle, rx)
}
