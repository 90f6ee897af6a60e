//! Calls careid makes to relying parties (back-channel logout, `jwks_uri`) go to public
//! addresses only, unless the operator names a private network they may reach
//! (`outbound.allowed_private_networks`). Otherwise a relying party could register a URI that
//! makes careid call into the trust's own network (SSRF): loopback, RFC 1918, link-local (cloud
//! metadata at 169.254.169.254), unique-local, shared (CGNAT) and reserved ranges.
//!
//! Both doors are checked: a literal IP in the URI before the request, and every address a
//! host name resolves to (a resolver that drops forbidden addresses, so DNS cannot point a
//! public-looking name inside). Redirects are never followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// Where outbound calls may go.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed_private: Vec<IpNet>,
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// documentation, multicast or otherwise reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

impl OutboundPolicy {
    pub fn new(allowed_private: Vec<IpNet>) -> OutboundPolicy {
        OutboundPolicy { allowed_private }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allowed_private.iter().any(|n| n.contains(&ip))
    }

    /// Refuses a URI whose host is a literal address careid may not call.
    pub fn check_uri(&self, uri: &str) -> Result<(), String> {
        let url = url::Url::parse(uri).map_err(|e| format!("{uri}: {e}"))?;
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(format!(
                "{ip} is a private or reserved address (allow its network in outbound.allowed_private_networks)"
            ))
        }
    }

    /// The HTTP client for outbound calls: this policy's resolver, no redirects, `timeout`.
    pub fn client(self, timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver(self)))
            .build()
            .unwrap_or_default()
    }
}

/// Resolves with the system resolver and keeps only the addresses the policy permits.
struct GuardedResolver(OutboundPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if usable.is_empty() {
                return Err(format!(
                    "{host} resolves only to private or reserved addresses (allow its network in outbound.allowed_private_networks)"
                )
                .into());
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_refused_unless_allowed() {
        let policy = OutboundPolicy::default();
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!policy.permits(bad.parse().unwrap()), "{bad}");
        }
        for good in ["8.8.8.8", "20.1.2.3", "2a00:1450::1"] {
            assert!(policy.permits(good.parse().unwrap()), "{good}");
        }
        let lab = OutboundPolicy::new(vec!["10.20.0.0/16".parse().unwrap()]);
        assert!(lab.permits("10.20.3.4".parse().unwrap()));
        assert!(!lab.permits("10.21.3.4".parse().unwrap()));
        assert!(policy.check_uri("https://169.254.169.254/latest").is_err());
        assert!(policy.check_uri("https://[::1]:8443/jwks").is_err());
        assert!(policy.check_uri("https://rp.example.org/jwks").is_ok());
    }
}
