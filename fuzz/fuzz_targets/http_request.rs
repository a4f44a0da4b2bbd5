//! Fuzz target (V2, X2, X3): HTTP/1.1 request heads on every HTTP port — the
//! viewer/coordinator parser (`crates/net/src/http/request.rs`, also through its
//! async reader within a size limit) and the HTTP ingest's
//! (`crates/net/src/ingest/http_post.rs`).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tiercast_net::http::request::{parse_head, read_request_head, split_target, truncate};
use tiercast_net::ingest::http_post;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = parse_head(data) {
        assert!(head.path.starts_with('/'));
        let _ = head.query_param("region");
        let _ = head.query_param("");
        let _ = head.is_head();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = split_target(text);
        let _ = truncate(text, 7);
    }
    // The reader, with a small limit so the too-large path is reached.
    let limit = 1 + usize::from(data.first().copied().unwrap_or(0)) * 16;
    let mut reader = data;
    let _ = runtime().block_on(read_request_head(
        &mut reader,
        limit,
        Duration::from_secs(5),
    ));

    match http_post::parse_head(data) {
        Ok(Some(req)) => {
            assert!(req.head_len <= data.len());
            let _ = req.publish_key();
        }
        Ok(None) => {}
        Err(refusal) => assert!((400..600).contains(&refusal.status)),
    }
});
