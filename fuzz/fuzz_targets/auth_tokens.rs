//! Fuzz target (X3): the tokens a peer presents — the operator API's
//! `Authorization` header (`crates/net/src/http/operator_auth.rs`) and the link
//! admission hello (`crates/net/src/link/admission.rs`) — and a cluster key in hex.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercast_net::http::operator_auth;
use tiercast_net::link::admission::{Hello, Role, HELLO_LEN};
use tiercast_net::link::ClusterKey;
use tiercast_proto::NodeId;

fuzz_target!(|data: &[u8]| {
    let key = ClusterKey([7; 32]);
    let text = String::from_utf8_lossy(data);
    let _ = operator_auth::verify(&key, Some(&text), "/policy", 1_700_000_000, b"body");
    let _ = ClusterKey::from_hex(&text);
    if let Ok(bytes) = <&[u8; HELLO_LEN]>::try_from(data.get(..HELLO_LEN).unwrap_or_default()) {
        if let Ok(hello) = Hello::decode(bytes) {
            assert_eq!(&hello.encode(), bytes);
            let _ = hello.verify(&key, Role::Client, &[1; 32], NodeId(1));
        }
    }
});
