//! HTTP ingest over loopback (X1): chunked and Content-Length bodies,
//! refusals with reasons, the head parser.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{assert_same_stream, collect, read_to_end, start, stream, WAIT};
use crate::ingest::http_post::{parse_head, BodyFraming};
use crate::ingest::IngestListen;

/// Chunked encoding with uneven chunk sizes.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let sizes = [1usize, 187, 7, 4096, 188, 3, 10_000, 999];
    let mut rest = body;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        out.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        rest = tail;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn http_chunked_post_split_at_odd_places_delivers_blocks() {
    let (handle, mut rx) = start(IngestListen::Http).await;
    let data = stream();
    let mut request =
        b"POST /ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend(chunked(&data));
    let mut publisher = TcpStream::connect(handle.local_addr).await.unwrap();
    // Writes that cut through the head, size lines and CRLFs.
    let mut at = 0;
    for (i, step) in [5usize, 13, 2, 31, 1, 777].iter().cycle().enumerate() {
        if at >= request.len() {
            break;
        }
        let end = (at + step * (1 + i % 5)).min(request.len());
        publisher.write_all(&request[at..end]).await.unwrap();
        at = end;
    }
    let blocks = collect(&mut rx, data.len()).await;
    assert_same_stream(&blocks, &data);
    let answer = read_to_end(&mut publisher).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains(&format!("ok: {} bytes", data.len())),
        "{answer}"
    );
}

#[tokio::test]
async fn http_put_with_content_length_and_expect_delivers_blocks() {
    let (handle, mut rx) = start(IngestListen::Http).await;
    let data = stream();
    let mut publisher = TcpStream::connect(handle.local_addr).await.unwrap();
    let head = format!(
        "PUT /x HTTP/1.1\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        data.len()
    );
    publisher.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    timeout(WAIT, publisher.read_exact(&mut interim))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    publisher.write_all(&data).await.unwrap();
    assert_same_stream(&collect(&mut rx, data.len()).await, &data);
    assert!(read_to_end(&mut publisher)
        .await
        .starts_with("HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn http_html_body_gets_400_naming_the_reason() {
    let (handle, _rx) = start(IngestListen::Http).await;
    for size in [200usize, 5000] {
        let html = format!(
            "<!DOCTYPE html><html><body>{}</body></html>",
            "x".repeat(size)
        );
        let mut publisher = TcpStream::connect(handle.local_addr).await.unwrap();
        let head = format!(
            "POST /ingest HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            html.len()
        );
        publisher.write_all(head.as_bytes()).await.unwrap();
        publisher.write_all(html.as_bytes()).await.unwrap();
        let answer = read_to_end(&mut publisher).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(answer.contains("not an MPEG-TS stream"), "{answer}");
        assert!(answer.contains("HTML"), "{answer}");
    }
    assert_eq!(handle.stats.rejected_connections.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn http_refuses_bad_requests_with_reasons() {
    let (handle, _rx) = start(IngestListen::Http).await;
    let cases: [(&[u8], &str); 5] = [
        (b"GET /ingest HTTP/1.1\r\n\r\n", "405 Method Not Allowed"),
        (b"POST /ingest HTTP/1.1\r\n\r\n", "411 Length Required"),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "400 Bad Request",
        ),
        (b"BLAH\x01 / HTTP/1.1\r\n\r\n", "400 Bad Request"),
        (
            b"\x47\x40\x00\x10 raw ts on the http port\r\n\r\n",
            "400 Bad Request",
        ),
    ];
    for (request, status) in cases {
        let mut client = TcpStream::connect(handle.local_addr).await.unwrap();
        client.write_all(request).await.unwrap();
        let answer = read_to_end(&mut client).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{answer}"
        );
    }
    assert_eq!(handle.stats.rejected_connections.load(Ordering::Relaxed), 5);
}

#[test]
fn head_parser_decides_framing() {
    let chunked = parse_head(b"POST /a HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\nbody")
        .unwrap()
        .unwrap();
    assert_eq!(chunked.framing, BodyFraming::Chunked);
    assert_eq!(chunked.head_len, 48);
    let length = parse_head(b"PUT /b HTTP/1.0\r\ncontent-length: 12\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        (length.framing, length.path.as_str()),
        (BodyFraming::Length(12), "/b")
    );
    assert_eq!(parse_head(b"POST /a HTTP/1.1\r\nContent-Le").unwrap(), None);
    let status = |head: &[u8]| parse_head(head).unwrap_err().status;
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        400
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        400
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        501
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
        400
    );
    assert_eq!(
        status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: magic\r\n\r\n"),
        417
    );
    let huge = format!("POST / HTTP/1.1\r\nX-A: {}\r\n", "a".repeat(20_000));
    assert_eq!(status(huge.as_bytes()), 431);
    let many = format!("POST / HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(100));
    assert_eq!(status(many.as_bytes()), 431);
}

fn keyed() -> crate::ingest::IngestOptions {
    crate::ingest::IngestOptions {
        keys: crate::ingest::PublishKeys::new("live", &["k3y".to_string()], None).unwrap(),
        ..crate::ingest::IngestOptions::open("live")
    }
}

async fn post(addr: std::net::SocketAddr, path: &str, extra: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await;
    read_to_end(&mut s).await
}

#[tokio::test]
async fn http_publish_keys_in_path_or_bearer() {
    let (handle, mut rx) = super::start_with(IngestListen::Http, keyed()).await;
    let data = stream();
    let a = post(handle.local_addr, "/ingest", "", &data).await;
    assert!(a.starts_with("HTTP/1.1 401"), "{a}");
    assert!(a.contains("publish key missing"), "{a}");
    let a = post(handle.local_addr, "/ingest/nope", "", &data).await;
    assert!(a.starts_with("HTTP/1.1 403"), "{a}");
    let a = post(
        handle.local_addr,
        "/ingest",
        "Authorization: Bearer nope\r\n",
        &data,
    )
    .await;
    assert!(a.starts_with("HTTP/1.1 403"), "{a}");
    assert_eq!(handle.stats.refused_keys.load(Ordering::Relaxed), 3);
    let a = post(handle.local_addr, "/ingest/k3y", "", &data).await;
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    collect(&mut rx, data.len()).await;
    let a = post(
        handle.local_addr,
        "/x",
        "Authorization: Bearer k3y\r\n",
        &data,
    )
    .await;
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
}

#[test]
fn publish_key_from_path_and_header() {
    let head = b"POST /ingest/abc?x=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    let r = parse_head(head).unwrap().unwrap();
    assert_eq!(r.publish_key(), Some("abc"));
    let head = b"PUT /ingest HTTP/1.1\r\nAuthorization: Bearer t0k\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        parse_head(head).unwrap().unwrap().publish_key(),
        Some("t0k")
    );
    let head = b"PUT /ingest/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(parse_head(head).unwrap().unwrap().publish_key(), None);
    let head = b"PUT / HTTP/1.1\r\nAuthorization: Basic eA==\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(parse_head(head).unwrap_err().status, 401);
}
