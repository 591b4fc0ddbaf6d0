//! Where a request comes from: the client address behind trusted reverse
//! proxies, and the rough location of an address for people to read.
//!
//! - **Client address.** A provider in production sits behind a load
//!   balancer or reverse proxy, so the socket peer is the proxy. Rate
//!   limits keyed by that address would put every citizen in one bucket (one
//!   attacker locks out everyone), and the scan app would show the proxy as
//!   "the browser". With `trusted_proxies` set, a request whose peer is one
//!   of them is attributed to the right-most `X-Forwarded-For` entry that is
//!   not itself a trusted proxy; entries to the left of it were written by
//!   the client and are never believed. A peer that is not trusted keeps its
//!   own address whatever headers it sends.
//! - **Rough location.** The scan app shows where the waiting browser is, so
//!   a person scanning a phishing page's QR sees "广东省深圳市" when they are
//!   in Beijing. Names come from an operator-provided table
//!   (`ip_regions_file`: `CIDR,region` per line, e.g. exported from the
//!   operator's GeoIP database); without a match the app sees the network
//!   (IPv4 /16, IPv6 /32), never the full address of someone else.
use ipnet::IpNet;
use std::net::IpAddr;
use std::path::Path;

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses or CIDR blocks (`10.0.0.0/8`, `127.0.0.1`, `::1`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| parse_net(e).ok_or_else(|| format!("`{e}` is not an address or CIDR block like 10.0.0.0/8")))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted
    /// proxy, else the right-most forwarded address that is not a trusted
    /// proxy. A malformed entry stops the walk at the last address known
    /// good (a proxy would not write one, so the client did).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for entry in forwarded_for.iter().rev().flat_map(|h| h.rsplit(',')) {
            match parse_forwarded(entry.trim()) {
                Some(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// One `X-Forwarded-For` entry: an address, IPv4 with a port, or a
/// bracketed IPv6 address with or without a port.
fn parse_forwarded(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = s.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).and_then(|r| r.parse().ok())
}

/// What the scan app is told about where an address is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Loopback, private or link-local: the provider's own network.
    Local,
    /// A region from the operator's table.
    Region(String),
    /// Not in the table: the network the address is in.
    Network(String),
    Unknown,
}

impl Location {
    pub fn kind(&self) -> &'static str {
        match self {
            Location::Local => "local",
            Location::Region(_) => "region",
            Location::Network(_) => "network",
            Location::Unknown => "unknown",
        }
    }
}

/// The operator's address-range → region table, most specific block first.
#[derive(Debug, Clone, Default)]
pub struct RegionTable(Vec<(IpNet, String)>);

impl RegionTable {
    /// Reads `CIDR,region` lines; `#` starts a comment. Errors name the line.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rows = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (net, region) = line.split_once(',').ok_or(format!("line {}: expected `CIDR,region`", n + 1))?;
            let net = parse_net(net).ok_or(format!("line {}: `{}` is not a CIDR block", n + 1, net.trim()))?;
            let region = region.trim();
            if region.is_empty() {
                return Err(format!("line {}: the region is empty", n + 1));
            }
            rows.push((net.trunc(), region.to_string()));
        }
        // Longest prefix first, so a city block inside a province block wins.
        rows.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        Ok(RegionTable(rows))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn locate(&self, ip: &str) -> Location {
        let Ok(ip) = ip.parse::<IpAddr>() else { return Location::Unknown };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if is_local(ip) {
            return Location::Local;
        }
        if let Some((_, region)) = self.0.iter().find(|(net, _)| net.contains(&ip)) {
            return Location::Region(region.clone());
        }
        Location::Network(match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                format!("{}.{}.0.0/16", o[0], o[1])
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}::/32", s[0], s[1])
            }
        })
    }
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("127.0.0.1"), &["203.0.113.7"]), ip("127.0.0.1"));
        let lb = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(lb.client(ip("127.0.0.1"), &["203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(lb.client(ip("198.51.100.1"), &["203.0.113.7"]), ip("198.51.100.1"), "untrusted peer");
        // Two proxies in a row; what the client wrote on the left is ignored.
        assert_eq!(lb.client(ip("127.0.0.1"), &["1.1.1.1, 203.0.113.7, 10.0.0.5"]), ip("203.0.113.7"));
        assert_eq!(lb.client(ip("127.0.0.1"), &["1.1.1.1", "203.0.113.7"]), ip("203.0.113.7"), "repeated header");
        assert_eq!(lb.client(ip("127.0.0.1"), &["junk, 203.0.113.7:5555"]), ip("203.0.113.7"), "port");
        assert_eq!(lb.client(ip("127.0.0.1"), &["[2001:db8::1]:443"]), ip("2001:db8::1"));
        assert_eq!(lb.client(ip("127.0.0.1"), &["203.0.113.7, junk"]), ip("127.0.0.1"), "malformed last hop");
        assert_eq!(lb.client(ip("127.0.0.1"), &[]), ip("127.0.0.1"), "no header");
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
    }

    #[test]
    fn regions_most_specific_block_wins() {
        let t = RegionTable::parse(
            "# operator table\n203.0.0.0/8,亚太\n203.0.113.0/24, 广东省深圳市 # city\n2001:db8::/32,测试网\n",
        )
        .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.locate("203.0.113.9"), Location::Region("广东省深圳市".into()));
        assert_eq!(t.locate("203.1.2.3"), Location::Region("亚太".into()));
        assert_eq!(t.locate("::ffff:203.0.113.9"), Location::Region("广东省深圳市".into()), "mapped v4");
        assert_eq!(t.locate("2001:db8::1"), Location::Region("测试网".into()));
        assert_eq!(t.locate("198.51.100.1"), Location::Network("198.51.0.0/16".into()));
        assert_eq!(t.locate("2400:cb00::1"), Location::Network("2400:cb00::/32".into()));
        for local in ["127.0.0.1", "192.168.3.4", "10.1.2.3", "::1", "fd00::1", "fe80::1"] {
            assert_eq!(t.locate(local), Location::Local, "{local}");
        }
        assert_eq!(t.locate("nonsense"), Location::Unknown);
        assert!(RegionTable::parse("203.0.113.0/24\n").unwrap_err().contains("line 1"));
        assert!(RegionTable::parse("\nx/24,a\n").unwrap_err().contains("line 2"));
        assert!(RegionTable::parse("1.2.3.0/24, \n").unwrap_err().contains("empty"));
    }
}

tokio::task_local! {
    /// The id of the request being served (`X-Request-Id`), set by the
    /// entry around each request.
    pub static REQUEST_ID: String;
}

/// The header outgoing calls carry the served request's id in, so a
/// vendor's or relying party's logs join ours.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The served request's id, when there is one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Outgoing calls (SMS vendors, verifiers, sign-in providers, relying
/// parties) name the request they serve.
pub trait Traced {
    fn traced(self) -> Self;
}

impl Traced for reqwest::RequestBuilder {
    fn traced(self) -> Self {
        match current_request_id() {
            Some(id) => self.header(REQUEST_ID_HEADER, id),
            None => self,
        }
    }
}
