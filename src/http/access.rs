//! Who may reach the carrier endpoints: a source-address allow-list (IPs or CIDR blocks) and a browser
//! `Origin` allow-list, checked before anything else and swappable at run time (SIGHUP). Behind a trusted
//! proxy the source is the address the proxy forwarded (`X-Forwarded-For`), not the proxy's own.

use crate::config::Config;
use crate::supervise::{self, Part};
pub use crate::values::parse_net;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

/// The carrier access rules in force.
#[derive(Debug, Clone, Default)]
pub struct CarrierAccess {
    nets: Vec<IpNet>,
    origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed.
    proxies: Vec<IpNet>,
}

/// Shared between the HTTP workers and the reload on SIGHUP.
pub type SharedAccess = Arc<RwLock<CarrierAccess>>;

/// The verdict on a request from `peer`: the client's address as believed, and why it is refused (`None`:
/// allowed). It fails closed: rules whose lock a panic poisoned refuse the request that finds them so.
/// The rules themselves are whole (a reload swaps them in one assignment), so the lock is cleared and the
/// next request is judged by them.
pub fn judge<'a>(
    shared: &SharedAccess,
    peer: Option<IpAddr>,
    forwarded: impl Iterator<Item = &'a str>,
    origin: Option<&str>,
) -> (Option<IpAddr>, Option<&'static str>) {
    let rules = match shared.read() {
        Ok(rules) => rules,
        Err(_) => {
            shared.clear_poison();
            supervise::count(Part::Access, "a panic held the access rules");
            log::error!("carrier: a panic held the access rules; this request is refused");
            return (peer, Some("access_rules_unavailable"));
        }
    };
    let client = rules.client_ip(peer, forwarded);
    (client, rules.refuse(client, origin))
}

/// Swaps in new rules (SIGHUP), whether or not a panic poisoned the lock.
pub fn replace(shared: &SharedAccess, rules: CarrierAccess) {
    match shared.write() {
        Ok(mut current) => *current = rules,
        Err(poisoned) => {
            *poisoned.into_inner() = rules;
            shared.clear_poison();
        }
    }
}

impl CarrierAccess {
    pub fn from_config(config: &Config) -> CarrierAccess {
        let c = &config.carrier;
        CarrierAccess {
            nets: c.allowed_ips.iter().filter_map(|s| parse_net(s)).collect(),
            origins: c
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            proxies: config
                .server
                .trusted_proxies
                .iter()
                .filter_map(|s| parse_net(s))
                .collect(),
        }
    }

    fn trusted(&self, ip: &IpAddr) -> bool {
        self.proxies.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the nearest address in
    /// `X-Forwarded-For` (read from the right, skipping our own proxies) that is not one. A header from any
    /// other peer is ignored, since anyone can write one.
    pub fn client_ip<'a>(&self, peer: Option<IpAddr>, forwarded_for: impl Iterator<Item = &'a str>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusted(&peer) {
            return Some(peer);
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|h| h.split(',')).map(str::trim).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusted(&ip) {
                        break;
                    }
                }
                // An unreadable hop: nothing to its left can be trusted; the last address read stands.
                Err(_) => break,
            }
        }
        Some(client)
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
        let mut c = Config::default();
        c.carrier.allowed_ips = ips.iter().map(|s| s.to_string()).collect();
        c.carrier.allowed_origins = origins.iter().map(|s| s.to_string()).collect();
        c.server.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
        CarrierAccess::from_config(&c)
    }

    #[test]
    fn forwarded_addresses_are_believed_from_trusted_proxies_only() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let a = access(&[], &[]);
        let xff = |peer: &str, h: &[&str]| a.client_ip(ip(peer), h.iter().copied());
        assert_eq!(xff("127.0.0.1", &["203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(
            xff("127.0.0.1", &["198.51.100.1, 203.0.113.7, 10.1.1.1"]),
            ip("203.0.113.7"),
            "our proxies skipped, the client's own claims ignored"
        );
        assert_eq!(
            xff("127.0.0.1", &["198.51.100.1", "203.0.113.7"]),
            ip("203.0.113.7"),
            "several headers read as one list"
        );
        assert_eq!(
            xff("198.51.100.9", &["203.0.113.7"]),
            ip("198.51.100.9"),
            "not a proxy of ours: ignored"
        );
        assert_eq!(xff("127.0.0.1", &[]), ip("127.0.0.1"));
        assert_eq!(xff("127.0.0.1", &["garbage"]), ip("127.0.0.1"));
        assert_eq!(xff("127.0.0.1", &["garbage, 10.2.2.2"]), ip("10.2.2.2"));
    }

    #[test]
    fn rules_a_panic_poisoned_refuse_and_never_allow() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let open: SharedAccess = Arc::new(RwLock::new(access(&[], &[])));
        assert_eq!(judge(&open, ip("198.51.100.7"), std::iter::empty(), None).1, None);
        let poisoner = open.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.write().expect("not yet poisoned");
            panic!("a reload panics while it holds the rules");
        })
        .join();
        assert!(open.is_poisoned());
        let (_, verdict) = judge(&open, ip("198.51.100.7"), std::iter::empty(), None);
        assert_eq!(verdict, Some("access_rules_unavailable"), "poisoned rules refuse");
        assert_eq!(
            judge(&open, ip("198.51.100.7"), std::iter::empty(), None).1,
            None,
            "then judge again"
        );

        let listed: SharedAccess = Arc::new(RwLock::new(access(&["203.0.113.0/24"], &[])));
        let poisoner = listed.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.write().expect("not yet poisoned");
            panic!("poisoned");
        })
        .join();
        for _ in 0..2 {
            let (_, verdict) = judge(&listed, ip("198.51.100.7"), std::iter::empty(), None);
            assert!(verdict.is_some(), "an address off the list is never let in");
        }
        replace(&listed, access(&[], &[]));
        assert!(!listed.is_poisoned());
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
