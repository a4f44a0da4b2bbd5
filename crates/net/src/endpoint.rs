//! Parsing the addresses operators type: `--coordinator http://host:port` (its HTTP
//! API on TCP and its QUIC link endpoint on the same UDP port) and listen addresses.

use std::net::SocketAddr;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EndpointError {
    #[error("coordinator URL '{0}' must look like http://HOST:PORT")]
    BadUrl(String),
    #[error("cannot resolve '{0}': {1}")]
    Resolve(String, String),
}

/// The coordinator's base URL, normalised (`http://host:port`), and its socket address.
#[derive(Clone, Debug)]
pub struct CoordinatorUrl {
    pub base: String,
    pub addr: SocketAddr,
}

impl CoordinatorUrl {
    pub async fn parse(url: &str) -> Result<Self, EndpointError> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let hostport = rest.trim_end_matches('/');
        if hostport.is_empty() || hostport.contains('/') || !hostport.contains(':') {
            return Err(EndpointError::BadUrl(url.to_string()));
        }
        let addr = tokio::net::lookup_host(hostport)
            .await
            .map_err(|e| EndpointError::Resolve(hostport.to_string(), e.to_string()))?
            .next()
            .ok_or_else(|| EndpointError::Resolve(hostport.to_string(), "no address".into()))?;
        Ok(CoordinatorUrl {
            base: format!("http://{hostport}"),
            addr,
        })
    }

    /// Where a viewer is sent to be placed again.
    pub fn watch_url(&self, channel: &str) -> String {
        format!("{}/watch/{channel}.ts", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls() {
        let u = CoordinatorUrl::parse("http://127.0.0.1:7000/")
            .await
            .unwrap();
        assert_eq!(u.base, "http://127.0.0.1:7000");
        assert_eq!(u.addr, "127.0.0.1:7000".parse().unwrap());
        assert!(CoordinatorUrl::parse("http://127.0.0.1").await.is_err());
        assert!(CoordinatorUrl::parse("http://127.0.0.1:7/x").await.is_err());
    }
}
