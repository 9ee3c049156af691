//! Who may reach the carrier endpoints: a source-address allow-list (IPs or CIDR blocks) and a browser
//! `Origin` allow-list, checked before anything else and swappable at run time (SIGHUP).

use crate::config::CarrierConfig;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

/// `10.0.0.1` or `10.0.0.0/8` (v4 or v6).
pub fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The carrier access rules in force.
#[derive(Debug, Clone, Default)]
pub struct CarrierAccess {
    nets: Vec<IpNet>,
    origins: Vec<String>,
}

/// Shared between the HTTP workers and the reload on SIGHUP.
pub type SharedAccess = Arc<RwLock<CarrierAccess>>;

impl CarrierAccess {
    pub fn from_config(c: &CarrierConfig) -> CarrierAccess {
        CarrierAccess {
            nets: c.allowed_ips.iter().filter_map(|s| parse_net(s)).collect(),
            origins: c
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// `None` when allowed, else why not.
    pub fn refuse(&self, peer: Option<IpAddr>, origin: Option<&str>) -> Option<&'static str> {
        if !self.nets.is_empty() && !peer.is_some_and(|ip| self.nets.iter().any(|n| n.contains(&ip))) {
            return Some("address_not_allowed");
        }
        if let Some(origin) = origin {
            let origin = origin.trim_end_matches('/').to_ascii_lowercase();
            if !self.origins.contains(&origin) {
                return Some("origin_not_allowed");
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(ips: &[&str], origins: &[&str]) -> CarrierAccess {
        let c = CarrierConfig {
            allowed_ips: ips.iter().map(|s| s.to_string()).collect(),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..CarrierConfig::default()
        };
        CarrierAccess::from_config(&c)
    }

    #[test]
    fn addresses_and_origins() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let open = access(&[], &[]);
        assert_eq!(open.refuse(ip("198.51.100.7"), None), None);
        assert_eq!(
            open.refuse(ip("198.51.100.7"), Some("https://evil.example")),
            Some("origin_not_allowed")
        );
        let listed = access(&["203.0.113.0/24", "2001:db8::1"], &["https://ops.example/"]);
        assert_eq!(listed.refuse(ip("203.0.113.9"), None), None);
        assert_eq!(listed.refuse(ip("2001:db8::1"), None), None);
        assert_eq!(listed.refuse(ip("203.0.114.9"), None), Some("address_not_allowed"));
        assert_eq!(listed.refuse(None, None), Some("address_not_allowed"));
        assert_eq!(listed.refuse(ip("203.0.113.9"), Some("https://OPS.example")), None);
        assert!(parse_net("not-an-ip").is_none() && parse_net("10.0.0.0/8").is_some());
    }
}
