//! Socket-level tests of the HLS routes (X2, LL-HLS; X3): playlist, segments,
//! parts, blocking reload, CORS, refusals and bounds, against a fake hub whose
//! `tv` channel runs ten times faster than real time (a block of 100 ms every 10 ms).

use std::time::{Duration, Instant};

use tiercast_proto::ViewerId;
use tokio::sync::broadcast;

use super::viewer_hub::{standard_hub, start, JoinReply, Server, SMALL};
use super::{block, exchange, get, seqs_in, within, Reply};
use crate::http::hls_hub::HlsLimits;
use crate::http::viewer::{ViewerLimits, ViewerRefusal, ViewerStream};

fn hls_hub(channel: &str, reply: JoinReply) {
    match channel {
        "tv" => {
            let (tx, live) = broadcast::channel(256);
            let backlog = (0..3).map(|s| block(s, s == 0, SMALL)).collect();
            let _ = reply.send(Ok(ViewerStream {
                viewer: ViewerId(21),
                backlog,
                live,
            }));
            tokio::spawn(async move {
                for seq in 3..20_000 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    if tx.send(block(seq, seq % 10 == 0, SMALL)).is_err() {
                        return;
                    }
                }
            });
        }
        "silent" => {
            let (tx, live) = broadcast::channel(4);
            let _ = reply.send(Ok(ViewerStream {
                viewer: ViewerId(22),
                backlog: Vec::new(),
                live,
            }));
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(tx);
            });
        }
        "full" => {
            let to = "http://127.0.0.1:7000/watch/full.ts".to_string();
            let _ = reply.send(Err(ViewerRefusal::Redirect(to)));
        }
        other => standard_hub(other, reply),
    }
}

async fn start_hls(hls: HlsLimits) -> Server {
    let limits = ViewerLimits {
        hls,
        ..ViewerLimits::default()
    };
    start(limits, Duration::from_secs(5), hls_hub).await
}

fn cors(reply: &Reply) -> Option<String> {
    reply.header("access-control-allow-origin")
}

/// The value of `#TAG:` on its first line in `playlist`.
fn tag<'a>(playlist: &'a str, name: &str) -> Option<&'a str> {
    playlist.lines().find_map(|l| l.strip_prefix(name))
}

#[tokio::test]
async fn playlist_segments_and_parts_with_cors() {
    let server = start_hls(HlsLimits::default()).await;
    let reply = get(server.addr, "/hls/tv/index.m3u8").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(cors(&reply).as_deref(), Some("*"));
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-cache"));
    let text = reply.body_text();
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    let first: u64 = tag(&text, "#EXT-X-MEDIA-SEQUENCE:")
        .unwrap()
        .parse()
        .unwrap();
    let segment = get(server.addr, &format!("/hls/tv/{first}.ts")).await;
    assert_eq!(segment.status, 200, "{segment:?}");
    assert_eq!(
        segment.header("content-type").as_deref(),
        Some("video/mp2t")
    );
    assert_eq!(cors(&segment).as_deref(), Some("*"));
    let seqs = seqs_in(&segment.body, SMALL);
    assert_eq!(seqs[0] % 10, 0, "a segment starts with a keyframe block");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(seqs.len(), 20, "2 s of 100 ms blocks");
    let part = get(server.addr, &format!("/hls/tv/{first}.1.ts")).await;
    assert_eq!(part.status, 200, "{part:?}");
    assert_eq!(seqs_in(&part.body, SMALL), seqs[5..10].to_vec());
    // HEAD: the length, no body.
    let head = exchange(
        server.addr,
        format!("HEAD /hls/tv/{first}.ts HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some((20 * SMALL).to_string())
    );
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn blocking_reload_returns_when_the_part_appears() {
    let server = start_hls(HlsLimits::default()).await;
    let text = get(server.addr, "/hls/tv/index.m3u8").await.body_text();
    let hint = tag(&text, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"").unwrap();
    let (msn, part) = hint.trim_end_matches(".ts\"").split_once('.').unwrap();
    let asked = Instant::now();
    let target = format!("/hls/tv/index.m3u8?_HLS_msn={msn}&_HLS_part={part}");
    let reply = get(server.addr, &target).await;
    let waited = asked.elapsed();
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply
            .body_text()
            .contains(&format!("URI=\"{msn}.{part}.ts\"")),
        "{}",
        reply.body_text()
    );
    eprintln!("blocking reload answered after {waited:?}");
    // The hinted part itself, asked for before it exists, comes when it is made.
    let text = reply.body_text();
    let hint = tag(&text, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"").unwrap();
    let uri = hint.trim_end_matches('"');
    let part = get(server.addr, &format!("/hls/tv/{uri}")).await;
    assert_eq!(part.status, 200, "{part:?}");
    assert!(!part.body.is_empty());
}

#[tokio::test]
async fn refusals_are_clear_and_carry_cors() {
    let server = start_hls(HlsLimits::default()).await;
    let unknown = get(server.addr, "/hls/nowhere/index.m3u8").await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(cors(&unknown).as_deref(), Some("*"));
    for bad in [
        "/hls/tv/x1.ts",
        "/hls/tv/1.-2.ts",
        "/hls/tv/+1.ts",
        "/hls/b@d/index.m3u8",
    ] {
        assert_eq!(get(server.addr, bad).await.status, 400, "{bad}");
    }
    let bad_query = get(server.addr, "/hls/tv/index.m3u8?_HLS_msn=abc").await;
    assert_eq!(bad_query.status, 400);
    let part_alone = get(server.addr, "/hls/tv/index.m3u8?_HLS_part=1").await;
    assert_eq!(part_alone.status, 400, "{part_alone:?}");
    let far = get(server.addr, "/hls/tv/index.m3u8?_HLS_msn=900000").await;
    assert_eq!(far.status, 400, "{far:?}");
    assert_eq!(get(server.addr, "/hls/tv/other.txt").await.status, 404);
    assert_eq!(get(server.addr, "/hls/tv/0.999.ts").await.status, 404);
    let moved = get(server.addr, "/hls/moved/index.m3u8").await;
    assert_eq!(moved.status, 302);
    assert_eq!(
        moved.header("location").as_deref(),
        Some("http://10.0.0.2:8080/hls/moved/index.m3u8")
    );
    let full = get(server.addr, "/hls/full/index.m3u8").await;
    assert_eq!(full.status, 503, "{full:?}");
    assert!(full.body_text().contains("/watch/full"), "{full:?}");
    let post = exchange(server.addr, b"POST /hls/tv/index.m3u8 HTTP/1.1\r\n\r\n").await;
    assert_eq!(post.status, 405);
}

#[tokio::test]
async fn preflight_is_answered() {
    let server = start_hls(HlsLimits::default()).await;
    let reply = exchange(
        server.addr,
        b"OPTIONS /hls/tv/index.m3u8 HTTP/1.1\r\nHost: t\r\nOrigin: http://a.example\r\n\
          Access-Control-Request-Method: GET\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(cors(&reply).as_deref(), Some("*"));
    assert!(reply
        .header("access-control-allow-methods")
        .unwrap()
        .contains("GET"));
}

#[tokio::test]
async fn parked_requests_are_bounded_and_time_out() {
    let no_parking = HlsLimits {
        max_parked: 0,
        ..HlsLimits::default()
    };
    let server = start_hls(no_parking).await;
    let reply = get(server.addr, "/hls/silent/index.m3u8").await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.body_text().contains("too many"), "{reply:?}");

    let server = start_hls(HlsLimits::default()).await;
    let reply = get(server.addr, "/hls/silent/index.m3u8").await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.header("retry-after").is_some());
    assert!(
        reply.body_text().contains("after 6000 ms"),
        "waited 3 target durations: {reply:?}"
    );
}

#[tokio::test]
async fn an_idle_feed_leaves_the_channel() {
    let quick = HlsLimits {
        idle_ms: 200,
        ..HlsLimits::default()
    };
    let mut server = start_hls(quick).await;
    assert_eq!(get(server.addr, "/hls/tv/index.m3u8").await.status, 200);
    let left = within(server.leaves.recv()).await.expect("a leave");
    assert_eq!(left.channel, "tv");
    assert_eq!(left.viewer, ViewerId(21));
    assert!(left.delivered > 20);
    // Asked again, it joins again; the media sequence went on.
    let text = get(server.addr, "/hls/tv/index.m3u8").await.body_text();
    assert!(text.contains("#EXT-X-DISCONTINUITY"), "{text}");
}

#[tokio::test]
async fn channels_are_bounded_per_node() {
    let one = HlsLimits {
        max_channels: 1,
        ..HlsLimits::default()
    };
    let server = start_hls(one).await;
    assert_eq!(get(server.addr, "/hls/tv/index.m3u8").await.status, 200);
    let second = get(server.addr, "/hls/endless/index.m3u8").await;
    assert_eq!(second.status, 503, "{second:?}");
    assert!(second.body_text().contains("1 channels"), "{second:?}");
    // An unknown name is refused without taking the place of a live one.
    assert_eq!(get(server.addr, "/hls/nowhere/0.ts").await.status, 503);
    assert_eq!(get(server.addr, "/hls/tv/index.m3u8").await.status, 200);
}
