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
use tiercast_proto::{Block, ChannelId, Timestamp};
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(60);
/// The bulk phase: 100 blocks of 60 KiB (~6 MiB), about a tier's burst.
const BULK_BLOCKS: u64 = 100;
const BULK_BYTES: usize = 60 * 1024;

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

struct Pair {
    a: Links,
    a_rx: Receiver<LinkEvent>,
    b: Links,
    b_rx: Receiver<LinkEvent>,
}

impl Pair {
    /// A on 127.0.0.1 (id 1) and B on 127.0.0.2 (id 2), each knowing the other.
    async fn new(ea: Option<Arc<NetEmulation>>, eb: Option<Arc<NetEmulation>>) -> Pair {
        let (a, a_rx) = bind("127.0.0.1", 1, ea).await;
        let (b, b_rx) = bind("127.0.0.2", 2, eb).await;
        a.set_address(NodeId(2), b.local_addr());
        b.set_address(NodeId(1), a.local_addr());
        Pair { a, a_rx, b, b_rx }
    }

    async fn round_trip(&mut self, seq: u64) -> Duration {
        round_trip(&self.a, &mut self.a_rx, &self.b, &mut self.b_rx, seq).await
    }

    /// A pushes `n` blocks of `len` bytes to B on the open link; B gets them
    /// all, in order. Returns the time from the first send to the last arrival.
    async fn push_blocks(&mut self, n: u64, len: usize) -> Duration {
        let payload = bytes::Bytes::from(vec![0x5a; len]);
        let start = Instant::now();
        for seq in 0..n {
            let b = Block::new(ChannelId(7), seq, Timestamp(seq), seq == 0, payload.clone());
            self.a
                .send(NodeId(2), Message::Block(b))
                .expect("queue block");
        }
        for seq in 0..n {
            match next_message(&mut self.b_rx).await {
                Some((_, Message::Block(b))) => assert_eq!(b.seq, seq),
                other => panic!("expected block {seq}, got {other:?}"),
            }
        }
        start.elapsed()
    }

    async fn close(self) {
        self.a.close().await;
        self.b.close().await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_trip_across_the_emulated_link_takes_at_least_two_one_way_latencies() {
    let mut plain = Pair::new(None, None).await;
    let plain_first = plain.round_trip(1).await;
    let plain_second = plain.round_trip(2).await;
    let plain_bulk = plain.push_blocks(BULK_BLOCKS, BULK_BYTES).await;
    assert_eq!(plain.a.emulation_stats(), None);
    plain.close().await;

    let mut p = Pair::new(
        Some(emulation("near", 80, 0.0, 0)),
        Some(emulation("far", 80, 0.0, 0)),
    )
    .await;
    let first = p.round_trip(1).await;
    let second = p.round_trip(2).await;
    let bulk = p.push_blocks(BULK_BLOCKS, BULK_BYTES).await;
    println!(
        "{BULK_BLOCKS} blocks of {BULK_BYTES} bytes on an open link: {:.1} ms without emulation, \
         {:.1} ms with 80 ms one way",
        ms(plain_bulk),
        ms(bulk)
    );
    println!(
        "round trip 127.0.0.1 <-> 127.0.0.2: connect + message + reply {:.1} ms, \
         message + reply {:.1} ms without emulation; {:.1} ms and {:.1} ms with 80 ms one way",
        ms(plain_first),
        ms(plain_second),
        ms(first),
        ms(second),
    );
    // Lower bounds the emulation guarantees: a reply cannot come back before
    // the message went one way and the reply the other — less the timer's
    // lead, by which a datagram may leave before its due time, per flight.
    let lead = Duration::from_micros(super::emulate_socket::TIMER_LEAD_US);
    assert!(
        second >= Duration::from_millis(160) - 2 * lead,
        "{second:?}"
    );
    // The dial needs the handshake's round trip before the message's.
    assert!(first >= Duration::from_millis(320) - 4 * lead, "{first:?}");
    let (sa, sb) = (
        p.a.emulation_stats().unwrap(),
        p.b.emulation_stats().unwrap(),
    );
    println!("emulation counters: A {sa:?}, B {sb:?}");
    assert!(sa.delayed > 0 && sb.delayed > 0);
    // No block arrives before one one-way latency.
    assert!(bulk >= Duration::from_millis(80) - lead, "{bulk:?}");
    assert_eq!(
        sa.delayed, sa.datagrams,
        "every datagram of A goes to the far region"
    );
    // The bulk burst fits the delay queue: nothing dropped as queue-full.
    assert_eq!((sa.lost, sa.unknown_destination, sa.queue_full), (0, 0, 0));
    p.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_loss_the_exchange_completes_and_the_losses_are_counted() {
    let mut p = Pair::new(
        Some(emulation("near", 80, 0.2, 5)),
        Some(emulation("far", 80, 0.2, 5)),
    )
    .await;
    let first = p.round_trip(1).await;
    let mut rest: Vec<Duration> = Vec::new();
    for seq in 2..=21 {
        rest.push(p.round_trip(seq).await);
    }
    let (sa, sb) = (
        p.a.emulation_stats().unwrap(),
        p.b.emulation_stats().unwrap(),
    );
    rest.sort();
    println!(
        "with 20 % loss each way, 80 ms one way: connect + message + reply {:.1} ms; \
         20 message + reply: median {:.1} ms, worst {:.1} ms; A {sa:?}, B {sb:?}",
        ms(first),
        ms(rest[rest.len() / 2]),
        ms(rest[rest.len() - 1]),
    );
    assert!(sa.lost + sb.lost > 0, "no datagram lost: A {sa:?} B {sb:?}");
    assert!(rest[0] >= Duration::from_millis(160), "{:?}", rest[0]);
    p.close().await;
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
