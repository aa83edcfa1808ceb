//! The client address of a request: the one address every per-client limit counts by (joins,
//! polls, the other buyer requests, sign-in). Use [`client_addr`]; nothing else should read
//! the peer address or the forwarding headers.
//!
//! It is the connection's peer, unless that peer is one of `BOXOFFICE_TRUSTED_PROXIES`. Then
//! it is the right-most address of `X-Forwarded-For` that is not itself a trusted proxy: each
//! proxy appends the address it saw, so everything left of the nearest untrusted hop may have
//! been written by the client. Without that header, the `for=` values of `Forwarded` are read
//! the same way. From any other peer both headers are ignored: a client cannot choose its
//! own address. An entry that is not an address (`unknown`, an obfuscated name) ends the walk
//! at the last trusted hop, so such a client is counted as its proxy.

use std::net::IpAddr;
use std::str::FromStr;

use poem::Request;
use poem::http::HeaderMap;

/// An IP network such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| format!("{s}: not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{s}: the prefix length must be 0..={max}"))?,
            None => max,
        };
        Ok(Cidr {
            net: network(net, len),
            len,
        })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.net.is_ipv4() && network(ip, self.len) == self.net
    }
}

/// `ip` with every bit after the first `len` cleared.
pub fn network(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0);
            IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0);
            IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
    }
}

/// `BOXOFFICE_TRUSTED_PROXIES`: comma-separated networks whose connections may say, in a
/// forwarding header, for whom they speak. Empty (the default): nobody.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client behind a connection from `peer` that carries `headers`.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = if headers.contains_key("x-forwarded-for") {
            list(headers, "x-forwarded-for").collect()
        } else {
            list(headers, "forwarded")
                .filter_map(|element| {
                    element.split(';').find_map(|pair| {
                        let (name, value) = pair.trim().split_once('=')?;
                        name.trim().eq_ignore_ascii_case("for").then_some(value)
                    })
                })
                .collect()
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = hop_address(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// The comma-separated entries of every instance of a header, in order.
fn list<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// An address as forwarding headers write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `"[2001:db8::1]:4711"`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok().map(canonical);
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// An IPv4 client seen through an IPv6 socket is the IPv4 client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address of this request (see the module's doc); `None` when the connection has
/// no IP peer (not over TCP).
pub fn client_addr(req: &Request) -> Option<IpAddr> {
    let peer = req.remote_addr().as_socket_addr()?.ip();
    // The app's state is in every request the app serves; a lone handler in a test has none.
    Some(match req.data::<crate::startup::AppState>() {
        Some(state) => state.settings.trusted_proxies.client_of(peer, req.headers()),
        None => canonical(peer),
    })
}

/// [`client_addr`] as an extractor, counted by its /64 as the per-client limits count it;
/// `None` without a peer address (not over TCP): nobody to count.
#[derive(Clone, Copy, Debug)]
pub struct ClientKey(pub Option<IpAddr>);

impl<'a> poem::FromRequest<'a> for ClientKey {
    async fn from_request(req: &'a Request, _body: &mut poem::RequestBody) -> poem::Result<Self> {
        let key = client_addr(req).map(|ip| crate::web::rate_limit::key_of(ip, crate::web::rate_limit::HOST_PREFIX));
        Ok(ClientKey(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        let net: Cidr = "10.1.2.3/8".parse().unwrap();
        assert!(net.contains(ip("10.200.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(
            "2001:db8::/32"
                .parse::<Cidr>()
                .unwrap()
                .contains(ip("2001:db8:ffff::1"))
        );
        assert!("::1".parse::<Cidr>().unwrap().contains(ip("::1")));
        assert!(!"0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("::1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("proxy.local".parse::<Cidr>().is_err());
        assert_eq!("".parse::<TrustedProxies>().unwrap(), TrustedProxies::default());
        assert!("10.0.0.0/8, ,::1".parse::<TrustedProxies>().is_ok());
    }

    #[test]
    fn an_untrusted_peer_cannot_name_its_address() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(t.client_of(ip("192.0.2.9"), &h), ip("192.0.2.9"));
        assert_eq!(TrustedProxies::default().client_of(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let peer = ip("10.0.0.1");
        // The client forged the first entry; the proxy appended what it saw.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 192.0.2.7, 10.0.0.2")]);
        assert_eq!(t.client_of(peer, &h), ip("192.0.2.7"));
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "192.0.2.7:5")]);
        assert_eq!(t.client_of(peer, &h), ip("192.0.2.7"));
        let h = headers(&[("forwarded", r#"for=6.6.6.6, for="[2001:db8::1]:4711";proto=https"#)]);
        assert_eq!(t.client_of(peer, &h), ip("2001:db8::1"));
        // Not an address: counted as the last trusted hop.
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(t.client_of(peer, &h), peer);
        let h = headers(&[("x-forwarded-for", "1.1.1.1, garbage, 10.0.0.3")]);
        assert_eq!(t.client_of(peer, &h), ip("10.0.0.3"));
        assert_eq!(t.client_of(peer, &HeaderMap::new()), peer);
        assert_eq!(
            t.client_of(
                ip("::ffff:10.0.0.1"),
                &headers(&[("x-forwarded-for", "::ffff:192.0.2.1")])
            ),
            ip("192.0.2.1")
        );
    }
}
