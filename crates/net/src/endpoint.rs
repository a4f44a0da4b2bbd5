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

/// The coordinator's base URL, normalised (`http://host:port`), and its socket
/// address; with several coordinator processes (X7, D7), every one of them
/// (`http://a:7000,http://b:7000`: the first is asked first).
#[derive(Clone, Debug)]
pub struct CoordinatorUrl {
    pub base: String,
    pub addr: SocketAddr,
    /// Every coordinator address given, the first one included.
    pub all: Vec<SocketAddr>,
}

impl CoordinatorUrl {
    /// One URL, or several separated by commas.
    pub async fn parse(urls: &str) -> Result<Self, EndpointError> {
        let mut parsed = Vec::new();
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            parsed.push(Self::parse_one(url).await?);
        }
        let mut all: Vec<SocketAddr> = Vec::new();
        for p in &parsed {
            if !all.contains(&p.addr) {
                all.push(p.addr);
            }
        }
        let mut first = parsed
            .into_iter()
            .next()
            .ok_or_else(|| EndpointError::BadUrl(urls.to_string()))?;
        first.all = all;
        Ok(first)
    }

    async fn parse_one(url: &str) -> Result<Self, EndpointError> {
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
            all: vec![addr],
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
        assert!(CoordinatorUrl::parse(" , ").await.is_err());
        assert!(CoordinatorUrl::parse("http://127.0.0.1:7,nonsense")
            .await
            .is_err());
        let several =
            CoordinatorUrl::parse("http://127.0.0.1:7001, 127.0.0.1:7002,http://127.0.0.1:7001")
                .await
                .unwrap();
        assert_eq!(several.addr, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(several.all.len(), 2, "duplicates given once");
    }
}
