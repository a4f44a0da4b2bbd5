//! Reading a process's `GET /status` from the cluster's runner (issue 13): one
//! HTTP/1.0 request over a plain TCP socket with a bounded answer and timeouts;
//! `Value::Null` when the process does not answer (it may just have crashed).

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Answers larger than this are not read (a status is a few hundred KB at most).
const MAX_ANSWER: u64 = 16 << 20;

pub fn fetch(addr: SocketAddr) -> Value {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return Value::Null;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /status HTTP/1.0\r\nHost: cluster\r\n\r\n")
        .is_err()
    {
        return Value::Null;
    }
    let mut body = Vec::new();
    if s.take(MAX_ANSWER).read_to_end(&mut body).is_err() {
        return Value::Null;
    }
    let Some(at) = body.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Value::Null;
    };
    serde_json::from_slice(&body[at + 4..]).unwrap_or(Value::Null)
}
