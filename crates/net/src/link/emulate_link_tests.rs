//! The network emulation over real sockets (issue 13, for `tiercast cluster`):
//! two `Links` on 127.0.0.1 and 127.0.0.2 with 127.0.0.2/32 in region "far",
//! 80 ms one way — a connect + message + reply takes at least two one-way
//! latencies (a bound the emulation guarantees, not a performance figure);
//! with 20 % loss the exchange still completes and losses are counted; the
//! socket alone keeps each destination's order and drops on a full queue.

use super::emulate::NetEmulation;
use super::emulate_socket::EmulatedSocket;
use super::*;
use quinn::udp::Transmit;
use quinn::{AsyncUdpSocket, Runtime};
use std::time::Instant;
use tiercast_proto::ChannelId;
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(60);

fn emulation(region: &str, one_way_ms: u32, loss: f64, jitter_ms: u32) -> Arc<NetEmulation> {
    let text = format!(
        r#"
region = "{region}"
seed = 11
[latency]
regions = ["near", "far"]
matrix_ms = [[0, {one_way_ms}], [{one_way_ms}, 0]]
jitter_ms = {jitter_ms}
[network]
loss_matrix = [[0.0, {loss}], [{loss}, 0.0]]
[[subnets]]
cidr = "127.0.0.0/8"
region = "near"
[[subnets]]
cidr = "127.0.0.2/32"
region = "far"
"#
    );
    Arc::new(NetEmulation::parse(&text).expect("test emulation file"))
}

async fn bind(ip: &str, id: u32, emu: Option<Arc<NetEmulation>>) -> (Links, Receiver<LinkEvent>) {
    let cfg = LinkConfig {
        emulation: emu,
        ..LinkConfig::new(NodeId(id), ClusterKey::dev_default())
    };
    let listen: SocketAddr = format!("{ip}:0").parse().expect("literal address");
    tokio::time::timeout(WAIT, Links::bind(listen, cfg))
        .await
        .expect("bind in time")
        .expect("bind on loopback")
}

fn ping(seq: u64) -> Message {
    Message::Login {
        channel: ChannelId(7),
        from_seq: Some(seq),
        feed: tiercast_proto::Feed::All,
    }
}

/// The next message, skipping `Up`s; a `Down` (a dial given up under loss) is
/// returned as `None` so the caller can send again.
async fn next_message(rx: &mut Receiver<LinkEvent>) -> Option<(NodeId, Message)> {
    loop {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(LinkEvent::Message { from, msg })) => return Some((from, msg)),
            Ok(Some(LinkEvent::Up { .. })) => {}
            Ok(Some(LinkEvent::Down { .. })) => return None,
            Ok(None) => panic!("event stream closed"),
            Err(_) => panic!("no link event within {WAIT:?}"),
        }
    }
}

/// A sends `ping(seq)` to B (dialing it if needed), B answers with the same,
/// A waits for it. Returns the time from A's send to the reply.
async fn round_trip(
    a: &Links,
    a_rx: &mut Receiver<LinkEvent>,
    b: &Links,
    b_rx: &mut Receiver<LinkEvent>,
    seq: u64,
) -> Duration {
    let start = Instant::now();
    loop {
        a.send(NodeId(2), ping(seq)).expect("queue ping");
        match next_message(b_rx).await {
            Some((from, msg)) => {
                assert_eq!((from, &msg), (NodeId(1), &ping(seq)));
                break;
            }
            None => continue,
        }
    }
    b.send(NodeId(1), ping(seq)).expect("queue reply");
    let (from, msg) = next_message(a_rx).await.expect("reply, not a Down");
    assert_eq!((from, msg), (NodeId(2), ping(seq)));
    start.elapsed()
}

/// (connect + message + reply, message + reply on the open link)
async fn exchange(
    emu: Option<(Arc<NetEmulation>, Arc<NetEmulation>)>,
) -> (Duration, Duration, Links, Links) {
    let (ea, eb) = match emu {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    };
    let (a, mut a_rx) = bind("127.0.0.1", 1, ea).await;
    let (b, mut b_rx) = bind("127.0.0.2", 2, eb).await;
    a.set_address(NodeId(2), b.local_addr());
    b.set_address(NodeId(1), a.local_addr());
    let first = round_trip(&a, &mut a_rx, &b, &mut b_rx, 1).await;
    let second = round_trip(&a, &mut a_rx, &b, &mut b_rx, 2).await;
    (first, second, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_trip_across_the_emulated_link_takes_at_least_two_one_way_latencies() {
    let (plain_first, plain_second, a, b) = exchange(None).await;
    assert_eq!(a.emulation_stats(), None);
    a.close().await;
    b.close().await;

    let emu = (emulation("near", 80, 0.0, 0), emulation("far", 80, 0.0, 0));
    let (first, second, a, b) = exchange(Some(emu)).await;
    println!(
        "round trip 127.0.0.1 <-> 127.0.0.2: connect + message + reply {:.1} ms, \
         message + reply {:.1} ms without emulation; {:.1} ms and {:.1} ms with 80 ms one way",
        plain_first.as_secs_f64() * 1e3,
        plain_second.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        second.as_secs_f64() * 1e3,
    );
    // Lower bounds the emulation guarantees: a reply cannot come back before
    // the message went one way and the reply the other.
    assert!(first >= Duration::from_millis(160), "{first:?}");
    assert!(second >= Duration::from_millis(160), "{second:?}");
    // The dial needs the handshake's round trip before the message's.
    assert!(first >= Duration::from_millis(320), "{first:?}");
    let (sa, sb) = (a.emulation_stats().unwrap(), b.emulation_stats().unwrap());
    println!("emulation counters: A {sa:?}, B {sb:?}");
    assert!(sa.delayed > 0 && sb.delayed > 0);
    assert_eq!(
        sa.delayed, sa.datagrams,
        "every datagram of A goes to the far region"
    );
    assert_eq!((sa.lost, sa.unknown_destination, sa.queue_full), (0, 0, 0));
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_loss_the_exchange_completes_and_the_losses_are_counted() {
    let emu = (emulation("near", 80, 0.2, 5), emulation("far", 80, 0.2, 5));
    let (first, second, a, b) = exchange(Some(emu)).await;
    let (sa, sb) = (a.emulation_stats().unwrap(), b.emulation_stats().unwrap());
    println!(
        "with 20 % loss each way: connect + message + reply {:.1} ms, message + reply {:.1} ms; \
         A {sa:?}, B {sb:?}",
        first.as_secs_f64() * 1e3,
        second.as_secs_f64() * 1e3,
    );
    assert!(sa.lost + sb.lost > 0, "no datagram lost: A {sa:?} B {sb:?}");
    assert!(second >= Duration::from_millis(160), "{second:?}");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_keeps_each_destinations_order_and_drops_on_a_full_queue() {
    let receiver = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let dst = receiver.local_addr().unwrap();
    let inner = quinn::TokioRuntime
        .wrap_udp_socket(std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .unwrap();
    let capacity = 50;
    let (socket, shared) = EmulatedSocket::new(inner, &emulation("near", 30, 0.0, 10), capacity);
    let n = 200u32;
    let start = Instant::now();
    for i in 0..n {
        let bytes = i.to_be_bytes();
        socket
            .try_send(&Transmit {
                destination: dst,
                ecn: None,
                contents: &bytes,
                segment_size: None,
                src_ip: None,
            })
            .unwrap();
    }
    let stats = shared.stats();
    assert_eq!(stats.datagrams, n as u64);
    assert!(stats.queue_full > 0, "{stats:?}");
    let expected = n as u64 - stats.queue_full;
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    while (got.len() as u64) < expected {
        let (len, _) = tokio::time::timeout(WAIT, receiver.recv_from(&mut buf))
            .await
            .expect("queued datagrams arrive")
            .unwrap();
        if got.is_empty() {
            // Nothing leaves before its one-way latency.
            assert!(start.elapsed() >= Duration::from_millis(30));
        }
        got.push(u32::from_be_bytes(buf[..len].try_into().unwrap()));
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "reordered: {got:?}");
    assert_eq!(got[0], 0);
    let after = shared.stats();
    assert_eq!(after.queued, 0);
    assert_eq!(after.delayed, expected);
    drop(socket);
}
