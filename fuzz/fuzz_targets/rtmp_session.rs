//! Fuzz target (X1, X3): what an RTMP publisher sends to the RTMP ingest
//! (`crates/net/src/ingest/rtmp.rs`): the handshake, then the chunk stream
//! through `rml_rtmp`'s server session — connect and publish requests accepted
//! as the ingest accepts them, video and audio messages remuxed by `FlvToTs`.
//! The session is driven through the ingest's own `session_input`, which
//! refuses what makes rml_rtmp 0.8 panic. The handshake and the chunk stream are fuzzed apart (a random C2 never
//! completes a handshake); the first byte says where the handshake part ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rml_rtmp::handshake::{Handshake, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use std::collections::VecDeque;
use tiercast_media::{FlvToTs, PACKET_SIZE};
use tiercast_net::ingest::rtmp::session_input;

fuzz_target!(
    init: {
        // libfuzzer-sys's panic hook aborts even on a panic that is caught, and
        // `session_input` catches rml_rtmp's own. A quiet hook instead: a panic
        // anywhere else still unwinds out of this closure, and libfuzzer-sys
        // aborts on that, so it is still a crash (reproduce it for the message).
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let cut = (usize::from(cut) * 16).min(rest.len());
    let (handshake, chunks) = rest.split_at(cut);
    let mut hs = Handshake::new(PeerType::Server);
    for piece in handshake.chunks(512) {
        if hs.process_bytes(piece).is_err() {
            break;
        }
    }

    let Ok((mut session, first)) = ServerSession::new(ServerSessionConfig::new()) else {
        return;
    };
    let mut flv = FlvToTs::new();
    let mut out = Vec::new();
    let mut queue: VecDeque<ServerSessionResult> = first.into();
    for piece in chunks.chunks(1024) {
        match session_input(&mut session, piece) {
            Ok(results) => queue.extend(results),
            Err(_) => return,
        }
        while let Some(result) = queue.pop_front() {
            let ServerSessionResult::RaisedEvent(event) = result else {
                continue;
            };
            match event {
                ServerSessionEvent::ConnectionRequested { request_id, .. }
                | ServerSessionEvent::PublishStreamRequested { request_id, .. } => {
                    match session.accept_request(request_id) {
                        Ok(more) => queue.extend(more),
                        Err(_) => return,
                    }
                }
                ServerSessionEvent::VideoDataReceived {
                    data, timestamp, ..
                } => {
                    let _ = flv.video(u64::from(timestamp.value), &data, &mut out);
                }
                ServerSessionEvent::AudioDataReceived {
                    data, timestamp, ..
                } => {
                    let _ = flv.audio(u64::from(timestamp.value), &data, &mut out);
                }
                _ => {}
            }
        }
    }
    assert_eq!(out.len() % PACKET_SIZE, 0, "TS output of partial packets");
}
);
