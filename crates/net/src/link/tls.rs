//! QUIC and TLS configuration of the link endpoint (X3, V9): a throwaway
//! self-signed certificate, a client that accepts any server certificate (links
//! are authenticated by the admission proof, see [`super::admission`]) but still
//! checks the handshake signature, ALPN `tiercast/1`, and transport limits sized
//! for a live stream (large windows, a big initial congestion window).
//!
//! Only the `ring` crypto provider is used, and always explicitly: the process
//! default provider is never consulted.

use super::{LinkConfig, LinkError};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{IdleTimeout, TransportConfig, VarInt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;

pub const ALPN: &[u8] = b"tiercast/1";
/// The name the dialer puts in its ClientHello; certificates are not checked against it.
pub const SERVER_NAME: &str = "tiercast";
/// Largest UDP payload MTU discovery tries (a 9000-byte jumbo frame minus headers).
const MTU_UPPER_BOUND_BYTES: u16 = 8952;

/// Receive window of the one frame stream, and of the whole connection.
const RECEIVE_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// The endpoint's configurations: server, client, and client for the link to the
/// coordinator.
pub(crate) struct EndpointConfigs {
    pub server: quinn::ServerConfig,
    pub client: quinn::ClientConfig,
    pub coordinator_client: quinn::ClientConfig,
}

/// Idle timeout of a node's link to the coordinator: short, so a coordinator
/// killed and started again is redialled within it even when the old
/// connection's probes have backed off (a restart of 2 s left the next probe
/// 1.4 s after the new coordinator was up; D7). Never under 4 keep-alives.
pub const COORDINATOR_IDLE_TIMEOUT_MS: u64 = 2_000;

/// Initial RTT estimate of a dial to the coordinator: its first retransmissions
/// (at about 3×) come while a restarting coordinator is being waited for.
const COORDINATOR_INITIAL_RTT: Duration = Duration::from_millis(100);

/// The endpoint's server and client configurations.
pub(crate) fn endpoint_configs(cfg: &LinkConfig) -> Result<EndpointConfigs, LinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = |e: rustls::Error| LinkError::Tls(e.to_string());

    let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])
        .map_err(|e| LinkError::Tls(format!("cannot generate certificate: {e}")))?;
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));

    let mut server_tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(tls)?;
    server_tls.alpn_protocols = vec![ALPN.to_vec()];
    let server_quic =
        QuicServerConfig::try_from(server_tls).map_err(|e| LinkError::Tls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_quic));
    // The dialer opens exactly one bidirectional stream.
    server.transport_config(Arc::new(transport(cfg, 1)?));

    let verifier = AdmissionOnlyVerifier {
        algorithms: provider.signature_verification_algorithms,
    };
    let mut client_tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    client_tls.alpn_protocols = vec![ALPN.to_vec()];
    let client_quic =
        QuicClientConfig::try_from(client_tls).map_err(|e| LinkError::Tls(e.to_string()))?;
    let client_quic = Arc::new(client_quic);
    let mut client = quinn::ClientConfig::new(client_quic.clone());
    // The listener never opens streams.
    client.transport_config(Arc::new(transport(cfg, 0)?));
    let mut coordinator_client = quinn::ClientConfig::new(client_quic);
    let idle = cfg
        .idle_timeout_ms
        .min(COORDINATOR_IDLE_TIMEOUT_MS.max(4 * cfg.keep_alive_ms));
    let coordinator_cfg = LinkConfig {
        idle_timeout_ms: idle,
        ..cfg.clone()
    };
    let mut t = transport(&coordinator_cfg, 0)?;
    t.initial_rtt(COORDINATOR_INITIAL_RTT);
    coordinator_client.transport_config(Arc::new(t));
    Ok(EndpointConfigs {
        server,
        client,
        coordinator_client,
    })
}

fn transport(cfg: &LinkConfig, peer_bidi_streams: u32) -> Result<TransportConfig, LinkError> {
    let idle = VarInt::from_u64(cfg.idle_timeout_ms)
        .map(IdleTimeout::from)
        .map_err(|_| {
            LinkError::Config(format!(
                "idle_timeout_ms {} is too large",
                cfg.idle_timeout_ms
            ))
        })?;
    let mut congestion = quinn::congestion::CubicConfig::default();
    congestion.initial_window(cfg.initial_window_bytes);
    // Path MTU discovery may climb to jumbo-frame size where the path allows it
    // (loopback, LANs); probes that get lost leave it at the usual ~1.45 KB.
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MTU_UPPER_BOUND_BYTES);
    let mut t = TransportConfig::default();
    t.mtu_discovery_config(Some(mtu));
    t.max_concurrent_bidi_streams(VarInt::from_u32(peer_bidi_streams))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .keep_alive_interval(Some(Duration::from_millis(cfg.keep_alive_ms)))
        .max_idle_timeout(Some(idle))
        .stream_receive_window(VarInt::from_u32(RECEIVE_WINDOW_BYTES))
        .receive_window(VarInt::from_u32(RECEIVE_WINDOW_BYTES))
        .send_window(u64::from(RECEIVE_WINDOW_BYTES))
        // Links carry streams only; unread datagrams would just sit in a buffer.
        .datagram_receive_buffer_size(None)
        .congestion_controller_factory(Arc::new(congestion));
    Ok(t)
}

/// Accepts any server certificate: who the peer is gets established by the
/// admission proof, which is bound to this TLS session. The handshake signature
/// is still verified, so the session really is with the certificate's key holder.
#[derive(Debug)]
struct AdmissionOnlyVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AdmissionOnlyVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
