//! Whom an instance of a fleet may send the admin token to: the peers the operator listed (`fleet.peers`),
//! each `https://`, or `http://` to a private or loopback address when `fleet.plain_http_peers` allows it.
//! The fleet's table says where each instance's admin API is; these rules decide whether to believe it.

use super::sections::FleetConfig;

impl FleetConfig {
    /// Whether this instance may send the admin token to a peer whose admin API is at `url` (as its row in
    /// the fleet's table says): it must be one of `peers`, and pass `peer_url_problem`.
    pub fn allows_peer(&self, url: &str) -> bool {
        let url = url.trim_end_matches('/');
        self.peers.iter().any(|p| p.trim_end_matches('/') == url) && self.peer_url_problem(url).is_none()
    }

    /// Why `url` cannot be a peer's admin URL, if it cannot: not `https://`, or `http://` without
    /// `plain_http_peers` or to an address that is not private (a host name cannot be judged).
    pub fn peer_url_problem(&self, url: &str) -> Option<String> {
        if url.starts_with("https://") {
            return None;
        }
        let Some(rest) = url.strip_prefix("http://") else {
            return Some("must start with https:// (or http:// with fleet.plain_http_peers)".into());
        };
        if !self.plain_http_peers {
            return Some(
                "plain http:// sends the admin token in clear: use https://, or set \
                         fleet.plain_http_peers = true for peers on a private network"
                    .into(),
            );
        }
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) if is_private(ip) => None,
            Ok(ip) => Some(format!(
                "plain http:// to {ip}, which is not a private or loopback address"
            )),
            Err(_) => Some(format!(
                "plain http:// to '{host}': only an IP address can be judged private; name the address, or use https://"
            )),
        }
    }
}

/// Loopback, RFC 1918 and IPv6 unique-local addresses: what an operator's own network uses.
fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_loopback(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_peers_must_be_https_or_plain_http_on_a_private_address_when_allowed() {
        let fleet = |plain: bool| FleetConfig {
            plain_http_peers: plain,
            peers: vec!["https://gw2.example.com:7901/".into(), "http://10.0.0.12:7901".into()],
            ..Default::default()
        };
        let (strict, plain) = (fleet(false), fleet(true));
        assert!(strict.peer_url_problem("https://gw2.example.com:7901").is_none());
        assert!(
            strict.peer_url_problem("http://10.0.0.12:7901").is_some(),
            "plain http not allowed"
        );
        assert!(plain.peer_url_problem("http://10.0.0.12:7901").is_none());
        assert!(plain.peer_url_problem("http://[fd00::12]:7901").is_none());
        assert!(plain.peer_url_problem("http://127.0.0.1:7901").is_none());
        assert!(
            plain.peer_url_problem("http://203.0.113.9:7901").is_some(),
            "a public address"
        );
        assert!(
            plain.peer_url_problem("http://gw3.internal:7901").is_some(),
            "a name cannot be judged"
        );
        assert!(plain.peer_url_problem("ftp://10.0.0.12").is_some());
        assert!(
            plain.allows_peer("https://gw2.example.com:7901"),
            "a trailing slash aside"
        );
        assert!(plain.allows_peer("http://10.0.0.12:7901/"));
        assert!(!plain.allows_peer("https://gw9.example.com:7901"), "not listed");
        assert!(
            !strict.allows_peer("http://10.0.0.12:7901"),
            "listed, but plain http is not allowed"
        );
    }
}
