//! The per-source allow-list of the UDP and TCP ingests (features X1, X3;
//! issue 17): those carry no key, so with publish keys on they take only
//! senders whose address is in one of the `--ingest-allow` CIDR blocks.

use std::net::IpAddr;
use std::str::FromStr;

/// Most blocks in an allow-list.
pub const MAX_ALLOW_BLOCKS: usize = 256;

/// One CIDR block, e.g. `127.0.0.1/32`, `10.0.0.0/8`, `::1/128` (a bare
/// address is its own /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| format!("'{s}': not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': prefix length must be 0-{max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Which sources may publish over UDP/TCP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(pub Vec<Cidr>);

impl AllowList {
    /// `Ok` if `ip` may publish; `keys_required`: with publish keys on and no
    /// list, nobody may (those transports cannot carry a key).
    pub fn check(&self, ip: IpAddr, keys_required: bool) -> Result<(), String> {
        if self.0.is_empty() {
            return match keys_required {
                false => Ok(()),
                true => Err(format!(
                    "{ip}: publish keys are on and this transport carries none; \
                     allow the source with --ingest-allow or publish over SRT, RTMP or HTTP with a key"
                )),
            };
        }
        match self.0.iter().any(|c| c.contains(ip)) {
            true => Ok(()),
            false => Err(format!("{ip}: source not in the ingest allow-list")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        assert!("1.2.3.4/33".parse::<Cidr>().is_err());
        assert!("x/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn lists() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(AllowList::default().check(lo, false).is_ok());
        assert!(AllowList::default().check(lo, true).is_err());
        let l = AllowList(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(l.check(lo, true).is_ok());
        assert!(l.check("192.0.2.1".parse().unwrap(), false).is_err());
    }
}
