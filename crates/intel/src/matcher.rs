//! Fast indicator lookups.
//!
//! - IP: exact addresses in hash maps (`u32` / `u128` keys, ahash), networks
//!   flattened into a sorted table of disjoint ranges (longest prefix wins)
//!   searched by binary search. Per-prefix-length hash maps would cost one
//!   probe per distinct prefix length (FireHOL alone has 20+); the flattened
//!   table costs log2(ranges) comparisons in one cache-friendly array.
//! - Domain: exact, then each parent up to the registrable domain (PSL), in
//!   one hash map of `Box<str>`; lookups borrow the query (lower-cased into a
//!   stack buffer when needed), so a lookup does not allocate.
//! - URL: normalised key (see [`crate::indicator::normalize_url`]) exact, then
//!   the URL's host by the IP or domain rules.
//! - host:port and user agents: exact.
//!
//! An allow list (domains and networks) wins over every feed, and private and
//! reserved ranges are excluded by default (FireHOL level 1 includes the
//! bogons: matching those would label a whole internal network malicious).

use crate::feeds::FeedSet;
use crate::indicator::{
    canonical_net, host_port_key, normalize_domain, normalize_url_parts, Kind, UrlHost,
};
use ahash::{AHashMap, AHashSet};
use ipnet::IpNet;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// No indicator.
const NONE: u32 = u32::MAX;

/// How a value matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    IpExact,
    Cidr,
    DomainExact,
    DomainParent,
    UrlExact,
    /// The URL's host matched an IP indicator (exact or network).
    UrlHostIp,
    /// The URL's host matched a domain indicator (exact or parent).
    UrlHostDomain,
    HostPort,
    UserAgent,
    /// An analyst verdict decided the label.
    Verdict,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::IpExact => "ip_exact",
            MatchKind::Cidr => "cidr",
            MatchKind::DomainExact => "domain_exact",
            MatchKind::DomainParent => "domain_parent",
            MatchKind::UrlExact => "url_exact",
            MatchKind::UrlHostIp => "url_host_ip",
            MatchKind::UrlHostDomain => "url_host_domain",
            MatchKind::HostPort => "host_port",
            MatchKind::UserAgent => "user_agent",
            MatchKind::Verdict => "verdict",
        }
    }
}

/// A match: the indicator (index into [`FeedSet::indicators`]) and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub id: u32,
    pub kind: MatchKind,
}

/// Disjoint address ranges, each mapped to the indicator of the longest prefix covering it.
#[derive(Debug, Clone, Default)]
pub struct RangeTable {
    /// From `starts[i]` up to `starts[i+1]-1`, `ids[i]` (or [`NONE`]).
    starts: Vec<u128>,
    ids: Vec<u32>,
}

impl RangeTable {
    /// Build from (first, last, id) networks. Networks either nest or are
    /// disjoint, so a sweep with a stack of open networks yields the
    /// longest-prefix owner of every range. Equal networks: the last wins
    /// (callers de-duplicate them first, see `chain_equal_nets`).
    pub fn build(mut nets: Vec<(u128, u128, u32)>) -> RangeTable {
        // Start ascending; on equal start the wider network first (it encloses);
        // on equal network the earlier id first.
        nets.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut t = RangeTable {
            starts: vec![0],
            ids: vec![NONE],
        };
        let mut stack: Vec<(u128, u32)> = Vec::new();
        for (s, e, id) in nets {
            while let Some(&(end, _)) = stack.last() {
                if end >= s {
                    break;
                }
                stack.pop();
                let owner = stack.last().map(|x| x.1).unwrap_or(NONE);
                t.set(end + 1, owner);
            }
            t.set(s, id);
            stack.push((e, id));
        }
        while let Some((end, _)) = stack.pop() {
            let owner = stack.last().map(|x| x.1).unwrap_or(NONE);
            if end < u128::MAX {
                t.set(end + 1, owner);
            }
        }
        t
    }

    fn set(&mut self, start: u128, id: u32) {
        if self.starts.last() == Some(&start) {
            if let Some(last) = self.ids.last_mut() {
                *last = id;
            }
        } else {
            self.starts.push(start);
            self.ids.push(id);
        }
    }

    #[inline]
    pub fn get(&self, x: u128) -> Option<u32> {
        let i = self.starts.partition_point(|&s| s <= x);
        let id = *self.ids.get(i.checked_sub(1)?)?;
        (id != NONE).then_some(id)
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.len() <= 1
    }
}

/// Domains and networks that are never labelled malicious.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    pub domains: Vec<String>,
    pub cidrs: Vec<IpNet>,
}

/// Private, loopback, link-local, documentation, multicast and other special-purpose
/// ranges (IANA special-purpose registries, RFC 6890).
pub const RESERVED_RANGES: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// How to build a matcher.
#[derive(Debug, Clone, Default)]
pub struct MatchOptions {
    pub allow: AllowList,
    /// Keep private and reserved ranges (off by default).
    pub include_reserved: bool,
    /// Reference time for expiry (microseconds); `None`: now.
    pub as_of_us: Option<i64>,
}

/// What building the matcher left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildReport {
    pub indexed: usize,
    /// Indicators in or covering a private/reserved range.
    pub excluded_reserved: usize,
    /// Indicators covered by the allow list.
    pub excluded_allowed: usize,
    pub expired: usize,
}

fn v4_key(a: Ipv4Addr) -> u128 {
    u32::from(a) as u128
}

fn net_bounds(n: &IpNet) -> (bool, u128, u128) {
    match n {
        IpNet::V4(v) => (true, v4_key(v.network()), v4_key(v.broadcast())),
        IpNet::V6(v) => (false, u128::from(v.network()), u128::from(v.broadcast())),
    }
}

/// A string → indicator map keyed by a 64-bit hash of the string, each entry
/// carrying a second, independent 32-bit hash as a check instead of the string.
///
/// Why not `HashMap<Box<str>, u32>`: a hit there reads the table slot, the key's
/// heap string and compares it: measured ~400 ns per exact hit on 1M domains,
/// dominated by cache misses. Here a probe reads one slot. A false match needs
/// a query to agree with a stored key on 96 hash bits (~n/2^96 per lookup,
/// ~1e-23 for 1M keys); two stored keys that share the 64-bit hash but differ
/// in the check go to an exact side map, so the index itself never confuses
/// feed entries.
#[derive(Debug, Clone)]
struct StrIndex {
    state: ahash::RandomState,
    check: ahash::RandomState,
    /// hash → (indicator id, check hash)
    by_hash: std::collections::HashMap<u64, (u32, u32), std::hash::BuildHasherDefault<IdHasher>>,
    /// Keys whose 64-bit hash collides with another key's (practically never).
    collide: AHashMap<Box<str>, u32>,
}

impl Default for StrIndex {
    fn default() -> Self {
        StrIndex {
            state: ahash::RandomState::with_seeds(
                0x243f_6a88_85a3_08d3,
                0x1319_8a2e_0370_7344,
                0xa409_3822_299f_31d0,
                0x082e_fa98_ec4e_6c89,
            ),
            check: ahash::RandomState::with_seeds(
                0x4528_21e6_38d0_1377,
                0xbe54_66cf_34e9_0c6c,
                0xc0ac_29b7_c97c_50dd,
                0x3f84_d5b5_b547_0917,
            ),
            by_hash: Default::default(),
            collide: AHashMap::new(),
        }
    }
}

impl StrIndex {
    /// Insert `key` → `id` unless present; returns the id that owns the key.
    fn insert(&mut self, key: &str, id: u32) -> u32 {
        let h = self.state.hash_one(key);
        let c = self.check.hash_one(key) as u32;
        match self.by_hash.get(&h) {
            Some(&(owner, check)) if check == c => owner,
            Some(_) => *self.collide.entry(key.into()).or_insert(id),
            None => {
                self.by_hash.insert(h, (id, c));
                id
            }
        }
    }

    #[inline]
    fn get(&self, key: &str) -> Option<u32> {
        if let Some(&(id, check)) = self.by_hash.get(&self.state.hash_one(key)) {
            if check == self.check.hash_one(key) as u32 {
                return Some(id);
            }
        }
        if self.collide.is_empty() {
            None
        } else {
            self.collide.get(key).copied()
        }
    }

    fn len(&self) -> usize {
        self.by_hash.len() + self.collide.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The keys of [`StrIndex`] are already hashes: pass them through.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; fold anything else in for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The index of one feed set.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    v4: AHashMap<u32, u32>,
    v6: AHashMap<u128, u32>,
    nets4: RangeTable,
    nets6: RangeTable,
    domains: StrIndex,
    urls: StrIndex,
    host_ports: StrIndex,
    user_agents: StrIndex,
    /// Indicators with the same key in other feeds: `next[id]` is the next one, or NONE.
    next: Vec<u32>,
    allow4: RangeTable,
    allow6: RangeTable,
    allow_domains: AHashSet<Box<str>>,
    pub report: BuildReport,
}

impl Matcher {
    pub fn build(set: &FeedSet, opts: &MatchOptions) -> Matcher {
        let mut m = Matcher {
            next: vec![NONE; set.indicators.len()],
            ..Default::default()
        };
        let as_of = opts
            .as_of_us
            .unwrap_or_else(|| chrono::Utc::now().timestamp_micros());

        // Allow list and reserved ranges.
        let reserved: Vec<IpNet> = if opts.include_reserved {
            Vec::new()
        } else {
            RESERVED_RANGES
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect()
        };
        let (mut a4, mut a6) = (Vec::new(), Vec::new());
        for n in opts.allow.cidrs.iter().chain(&reserved) {
            let (v4, s, e) = net_bounds(&canonical_net(n.trunc()));
            if v4 {
                a4.push((s, e, 0))
            } else {
                a6.push((s, e, 0))
            }
        }
        m.allow4 = RangeTable::build(a4);
        m.allow6 = RangeTable::build(a6);
        for d in &opts.allow.domains {
            if let Some(d) = normalize_domain(d) {
                m.allow_domains.insert(d.into_boxed_str());
            }
        }
        let reserved_bounds: Vec<(bool, u128, u128)> = reserved.iter().map(net_bounds).collect();
        let overlaps_reserved = |v4: bool, s: u128, e: u128| {
            reserved_bounds
                .iter()
                .any(|&(rv4, rs, re)| rv4 == v4 && s <= re && rs <= e)
        };

        let (mut n4, mut n6) = (Vec::new(), Vec::new());
        for (id, ind) in set.indicators.iter().enumerate() {
            let id = id as u32;
            if set.is_expired(ind, as_of) {
                m.report.expired += 1;
                continue;
            }
            match ind.kind {
                Kind::Ipv4 | Kind::Ipv6 | Kind::Cidr => {
                    let net = match ind.kind {
                        Kind::Cidr => ind.value.parse::<IpNet>().ok(),
                        _ => ind.value.parse::<IpAddr>().ok().map(IpNet::from),
                    };
                    let Some(net) = net else { continue };
                    let (v4, s, e) = net_bounds(&net);
                    if overlaps_reserved(v4, s, e) {
                        m.report.excluded_reserved += 1;
                        continue;
                    }
                    let allowed = if v4 {
                        m.allow4.get(s).is_some() && m.allow4.get(e).is_some()
                    } else {
                        m.allow6.get(s).is_some() && m.allow6.get(e).is_some()
                    };
                    if allowed {
                        m.report.excluded_allowed += 1;
                        continue;
                    }
                    if s == e {
                        if v4 {
                            chain(&mut m.next, m.v4.entry(s as u32).or_insert(id), id);
                        } else {
                            chain(&mut m.next, m.v6.entry(s).or_insert(id), id);
                        }
                    } else if v4 {
                        n4.push((s, e, id));
                    } else {
                        n6.push((s, e, id));
                    }
                }
                Kind::Domain => {
                    if m.domain_allowed(&ind.value) {
                        m.report.excluded_allowed += 1;
                        continue;
                    }
                    let head = m.domains.insert(&ind.value, id);
                    chain(&mut m.next, &head, id);
                }
                Kind::Url => {
                    let head = m.urls.insert(&ind.value, id);
                    chain(&mut m.next, &head, id);
                }
                Kind::HostPort => {
                    let head = m.host_ports.insert(&ind.value, id);
                    chain(&mut m.next, &head, id);
                }
                Kind::UserAgent => {
                    let head = m.user_agents.insert(&ind.value, id);
                    chain(&mut m.next, &head, id);
                }
            }
            m.report.indexed += 1;
        }
        // Equal networks from several feeds: chain them to the first.
        chain_equal_nets(&mut n4, &mut m.next);
        chain_equal_nets(&mut n6, &mut m.next);
        m.nets4 = RangeTable::build(n4);
        m.nets6 = RangeTable::build(n6);
        if m.report.excluded_reserved > 0 {
            tracing::info!(
                "excluded {} indicators in or covering private/reserved ranges (use include_reserved to keep them)",
                m.report.excluded_reserved
            );
        }
        m
    }

    /// Every indicator with the same key as `id` (itself first).
    pub fn same_key(&self, id: u32) -> impl Iterator<Item = u32> + '_ {
        let mut cur = id;
        std::iter::from_fn(move || {
            if cur == NONE {
                return None;
            }
            let out = cur;
            cur = self.next.get(cur as usize).copied().unwrap_or(NONE);
            Some(out)
        })
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.allow4.get(v4_key(a)).is_some(),
            IpAddr::V6(a) => self.allow6.get(u128::from(a)).is_some(),
        }
    }

    fn domain_allowed(&self, d: &str) -> bool {
        if self.allow_domains.is_empty() {
            return false;
        }
        let mut cur = d;
        loop {
            if self.allow_domains.contains(cur) {
                return true;
            }
            match cur.split_once('.') {
                Some((_, rest)) if rest.contains('.') => cur = rest,
                _ => return false,
            }
        }
    }

    /// Exact address, then the longest network. IPv4-mapped IPv6 is read as IPv4.
    #[inline]
    pub fn match_ip(&self, ip: IpAddr) -> Option<Hit> {
        let hit = match ip {
            IpAddr::V4(a) => self.match_v4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.match_v4(v4),
                None => self.match_v6(a),
            },
        }?;
        (!self.ip_allowed(ip.to_canonical())).then_some(hit)
    }

    #[inline]
    fn match_v4(&self, a: Ipv4Addr) -> Option<Hit> {
        let k = u32::from(a);
        if let Some(&id) = self.v4.get(&k) {
            return Some(Hit {
                id,
                kind: MatchKind::IpExact,
            });
        }
        if self.nets4.is_empty() {
            return None;
        }
        self.nets4.get(k as u128).map(|id| Hit {
            id,
            kind: MatchKind::Cidr,
        })
    }

    #[inline]
    fn match_v6(&self, a: Ipv6Addr) -> Option<Hit> {
        let k = u128::from(a);
        if let Some(&id) = self.v6.get(&k) {
            return Some(Hit {
                id,
                kind: MatchKind::IpExact,
            });
        }
        if self.nets6.is_empty() {
            return None;
        }
        self.nets6.get(k).map(|id| Hit {
            id,
            kind: MatchKind::Cidr,
        })
    }

    /// Exact name, then parents up to the registrable domain (Public Suffix List),
    /// so that an entry `evil.com` matches `a.b.evil.com` and nothing matches a
    /// whole public suffix like `co.uk`. Accepts any case, a trailing dot and
    /// Unicode (IDNA) names.
    pub fn match_domain(&self, name: &str) -> Option<Hit> {
        let t = name.trim_end_matches('.');
        if t.is_empty() || t.len() > 253 {
            return None;
        }
        if t.bytes().all(|b| !b.is_ascii_uppercase() && b.is_ascii()) {
            return self.match_domain_norm(t);
        }
        if t.is_ascii() {
            let mut buf = [0u8; 253];
            let out = &mut buf[..t.len()];
            out.copy_from_slice(t.as_bytes());
            out.make_ascii_lowercase();
            let s = std::str::from_utf8(out).ok()?;
            return self.match_domain_norm(s);
        }
        let ascii = idna::domain_to_ascii(t).ok()?;
        self.match_domain_norm(&ascii)
    }

    /// [`Matcher::match_domain`] on a name already lower-case ASCII without trailing dot.
    #[inline]
    pub fn match_domain_norm(&self, d: &str) -> Option<Hit> {
        let hit = self.find_domain(d)?;
        (!self.domain_allowed(d)).then_some(hit)
    }

    #[inline]
    fn find_domain(&self, d: &str) -> Option<Hit> {
        if let Some(id) = self.domains.get(d) {
            return Some(Hit {
                id,
                kind: MatchKind::DomainExact,
            });
        }
        // Walk parents (longest first), stopping before the TLD. The Public
        // Suffix List is consulted only when a parent is in the index (rare),
        // which keeps misses, the common case, to a few hash probes.
        let mut rest = d;
        while let Some((_, parent)) = rest.split_once('.') {
            if !parent.contains('.') {
                break;
            }
            if let Some(id) = self.domains.get(parent) {
                // Valid only at or below the registrable domain of the query; every
                // further parent is shorter still, so a miss here ends the walk.
                let registrable = psl::domain_str(d)?;
                return (parent.len() >= registrable.len()).then_some(Hit {
                    id,
                    kind: MatchKind::DomainParent,
                });
            }
            rest = parent;
        }
        None
    }

    /// Normalised URL exact, then its host by the IP or domain rules.
    pub fn match_url(&self, url: &str) -> Option<Hit> {
        let n = normalize_url_parts(url)?;
        match &n.host {
            UrlHost::Ip(ip) if self.ip_allowed(*ip) => return None,
            UrlHost::Domain(d) if self.domain_allowed(d) => return None,
            _ => {}
        }
        if !self.urls.is_empty() {
            if let Some(id) = self.urls.get(&n.key) {
                return Some(Hit {
                    id,
                    kind: MatchKind::UrlExact,
                });
            }
        }
        match n.host {
            UrlHost::Ip(ip) => self.match_ip(ip).map(|h| Hit {
                id: h.id,
                kind: MatchKind::UrlHostIp,
            }),
            UrlHost::Domain(d) => self.match_domain_norm(&d).map(|h| Hit {
                id: h.id,
                kind: MatchKind::UrlHostDomain,
            }),
        }
    }

    /// An address and port against host:port indicators.
    pub fn match_host_port(&self, ip: IpAddr, port: u16) -> Option<Hit> {
        if self.host_ports.is_empty() || self.ip_allowed(ip.to_canonical()) {
            return None;
        }
        let key = host_port_key(ip, port);
        self.host_ports.get(&key).map(|id| Hit {
            id,
            kind: MatchKind::HostPort,
        })
    }

    /// A domain and port against host:port indicators.
    pub fn match_domain_port(&self, domain: &str, port: u16) -> Option<Hit> {
        if self.host_ports.is_empty() {
            return None;
        }
        let d = normalize_domain(domain)?;
        if self.domain_allowed(&d) {
            return None;
        }
        self.host_ports.get(&format!("{d}:{port}")).map(|id| Hit {
            id,
            kind: MatchKind::HostPort,
        })
    }

    pub fn match_user_agent(&self, ua: &str) -> Option<Hit> {
        self.user_agents.get(ua.trim()).map(|id| Hit {
            id,
            kind: MatchKind::UserAgent,
        })
    }

    /// A value of unknown kind (a table cell): IP, URL, host:port or domain.
    pub fn match_value(&self, v: &str) -> Option<Hit> {
        let v = v.trim();
        if v.is_empty() {
            return None;
        }
        if let Ok(ip) = v.parse::<IpAddr>() {
            return self.match_ip(ip);
        }
        if v.contains("://") || v.contains('/') {
            return self.match_url(v);
        }
        if let Some((h, p)) = v.rsplit_once(':') {
            if let Ok(port) = p.parse::<u16>() {
                let h = h.trim_start_matches('[').trim_end_matches(']');
                return match h.parse::<IpAddr>() {
                    Ok(ip) => self.match_host_port(ip, port).or_else(|| self.match_ip(ip)),
                    Err(_) => self
                        .match_domain_port(h, port)
                        .or_else(|| self.match_domain(h)),
                };
            }
        }
        self.match_domain(v)
    }

    /// Sizes of the index, for logs and stats.
    pub fn sizes(&self) -> [(&'static str, usize); 8] {
        [
            ("ipv4", self.v4.len()),
            ("ipv6", self.v6.len()),
            ("ipv4-ranges", self.nets4.len()),
            ("ipv6-ranges", self.nets6.len()),
            ("domains", self.domains.len()),
            ("urls", self.urls.len()),
            ("host-ports", self.host_ports.len()),
            ("user-agents", self.user_agents.len()),
        ]
    }
}

/// Link `id` behind `head` in the same-key chain (unless it is the head).
fn chain(next: &mut [u32], head: &u32, id: u32) {
    let head = *head;
    if head == id {
        return;
    }
    let mut cur = head;
    // Chains are as long as the number of feeds holding one key: short.
    while let Some(&n) = next.get(cur as usize) {
        if n == NONE {
            break;
        }
        cur = n;
    }
    if let Some(slot) = next.get_mut(cur as usize) {
        *slot = id;
    }
}

/// Keep one entry per distinct network and chain the others to it.
fn chain_equal_nets(nets: &mut Vec<(u128, u128, u32)>, next: &mut [u32]) {
    nets.sort_unstable();
    let mut out: Vec<(u128, u128, u32)> = Vec::with_capacity(nets.len());
    for &n in nets.iter() {
        match out.last() {
            Some(&(s, e, head)) if s == n.0 && e == n.1 => chain(next, &head, n.2),
            _ => out.push(n),
        }
    }
    *nets = out;
}
