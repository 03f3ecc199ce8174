//! Egress policy: which destinations an instance may reach.
//!
//! A [`Policy`] is an allow-list ("only these") or a deny-list ("all but these") of [`Pattern`]s.
//! Pure logic with no I/O, so the core validates user input with the same code the proxy enforces.
//!
//! # Pattern syntax
//!
//! | pattern | matches |
//! | --- | --- |
//! | `pypi.org` | exactly that name (any letter case, an optional trailing dot) |
//! | `*.pythonhosted.org` | every name *below* it, at any depth (`files.pythonhosted.org`, `a.b.pythonhosted.org`), **not** the apex `pythonhosted.org` itself: list both if both are wanted |
//! | `github.com:443` | that name on port 443 only; without `:port`, every port |
//! | `192.0.2.7`, `2001:db8::1`, `[2001:db8::1]:443` | that address when the instance asks for it literally |
//! | `10.0.0.0/8`, `fd00::/8`, `10.0.0.0/8:5432` | the addresses in that network |
//!
//! Decisions are made on what the instance asked for, never on what a name resolves to: a name
//! pattern never matches a raw IP destination and an address pattern never matches a name. In an
//! allow-list, raw IP destinations are therefore denied unless an address or network is listed.
//! A deny-list blocks what it lists and nothing else, raw IPs included: it is a convenience, not a
//! boundary (any other name or address of a denied server still works).
//!
//! Why "any port" without `:port`: the owner of a name controls all its ports, and tools such as
//! `git` over SSH (port 22) should work with the plain name.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Longest DNS name in text form (RFC 1035: 255 octets on the wire).
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// Whether a policy lists what is allowed or what is denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Only destinations matching a pattern are allowed (fail-closed).
    Allow,
    /// Destinations matching a pattern are denied, everything else is allowed.
    Deny,
}

impl Mode {
    /// `"allow"` or `"deny"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Allow => "allow",
            Mode::Deny => "deny",
        }
    }
}

/// A validated egress policy: a mode and its patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    mode: Mode,
    patterns: Vec<Pattern>,
}

impl Policy {
    /// An allow-list: only destinations matching one of `patterns` are reachable. An empty list
    /// denies everything.
    ///
    /// # Errors
    /// The first invalid pattern, with what is wrong with it.
    pub fn allow<I, S>(patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new(Mode::Allow, patterns)
    }

    /// A deny-list: destinations matching one of `patterns` are denied, all others allowed.
    ///
    /// # Errors
    /// The first invalid pattern, with what is wrong with it.
    pub fn deny<I, S>(patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new(Mode::Deny, patterns)
    }

    /// A policy of the given mode.
    ///
    /// # Errors
    /// The first invalid pattern, with what is wrong with it.
    pub fn new<I, S>(mode: Mode, patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = patterns
            .into_iter()
            .map(|p| p.as_ref().parse())
            .collect::<Result<Vec<Pattern>, _>>()?;
        Ok(Policy { mode, patterns })
    }

    /// Allow-list or deny-list.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The patterns, in the order given.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// May the instance connect to `host` on `port`?
    pub fn check(&self, host: &Host, port: u16) -> Verdict {
        let hit = self.patterns.iter().find(|p| p.matches(host, Some(port)));
        match (self.mode, hit) {
            (Mode::Allow, Some(p)) => Verdict::allowed(format!("allowed by pattern `{p}`")),
            (Mode::Deny, Some(p)) => Verdict::denied(format!("denied by pattern `{p}`")),
            (Mode::Deny, None) => Verdict::allowed("not in the deny-list".to_string()),
            (Mode::Allow, None) => {
                let why = if let Some(p) = self.patterns.iter().find(|p| p.matches(host, None)) {
                    // The host is listed, only the port is not: say so.
                    format!(
                        "not in the allow-list on port {port} (pattern `{p}` allows another port)"
                    )
                } else if matches!(host, Host::Ip(_)) {
                    "a raw IP address that is not in the allow-list (list the address or its \
                     network, e.g. `192.0.2.7` or `192.0.2.0/24`, to reach it)"
                        .to_string()
                } else {
                    "not in the allow-list".to_string()
                };
                Verdict::denied(why)
            }
        }
    }

    /// May the instance resolve `name` through the proxy's DNS server? A name is answered when the
    /// instance may connect to it on at least one port.
    pub fn check_name(&self, name: &Host) -> Verdict {
        match self.mode {
            Mode::Allow => match self.patterns.iter().find(|p| p.matches(name, None)) {
                Some(p) => Verdict::allowed(format!("allowed by pattern `{p}`")),
                None => Verdict::denied("not in the allow-list".to_string()),
            },
            // A deny pattern with a port leaves the other ports open, so the name still resolves.
            Mode::Deny => match self
                .patterns
                .iter()
                .find(|p| p.port.is_none() && p.matches(name, None))
            {
                Some(p) => Verdict::denied(format!("denied by pattern `{p}`")),
                None => Verdict::allowed("not in the deny-list".to_string()),
            },
        }
    }
}

impl fmt::Display for Policy {
    /// `allow-list [pypi.org, *.pythonhosted.org]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-list [", self.mode.as_str())?;
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        f.write_str("]")
    }
}

/// The outcome of checking a destination against a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the destination may be reached.
    pub allowed: bool,
    /// Why, in a few words fit for a log line or an HTTP error body.
    pub reason: String,
}

impl Verdict {
    fn allowed(reason: String) -> Self {
        Verdict {
            allowed: true,
            reason,
        }
    }
    fn denied(reason: String) -> Self {
        Verdict {
            allowed: false,
            reason,
        }
    }
}

/// One pattern of a policy: a host pattern and an optional port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    host: HostPattern,
    port: Option<u16>,
}

/// The host part of a [`Pattern`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this name (lower case, no trailing dot).
    Exact(String),
    /// Every name strictly below this one (`*.example.com` holds `example.com`).
    Below(String),
    /// Every address in this network (a single address is a full-length prefix).
    Net(IpNet),
}

impl Pattern {
    /// The host part.
    pub fn host(&self) -> &HostPattern {
        &self.host
    }

    /// The port, if the pattern is limited to one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Does this pattern match `host` (on `port`, or on any port when `port` is `None`)?
    pub fn matches(&self, host: &Host, port: Option<u16>) -> bool {
        if let (Some(want), Some(got)) = (self.port, port)
            && want != got
        {
            return false;
        }
        match (&self.host, host) {
            (HostPattern::Exact(n), Host::Name(h)) => n == h,
            (HostPattern::Below(s), Host::Name(h)) => {
                h.len() > s.len() + 1
                    && h.ends_with(s.as_str())
                    && h.as_bytes()[h.len() - s.len() - 1] == b'.'
            }
            (HostPattern::Net(net), Host::Ip(ip)) => net.contains(*ip),
            _ => false,
        }
    }
}

impl fmt::Display for Pattern {
    /// The canonical form, which parses back to the same pattern.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bracket =
            self.port.is_some() && matches!(&self.host, HostPattern::Net(n) if n.addr.is_ipv6());
        if bracket {
            f.write_str("[")?;
        }
        match &self.host {
            HostPattern::Exact(n) => f.write_str(n)?,
            HostPattern::Below(s) => write!(f, "*.{s}")?,
            HostPattern::Net(n) => write!(f, "{n}")?,
        }
        if bracket {
            f.write_str("]")?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, PatternError> {
        parse_pattern(s).map_err(|reason| PatternError {
            pattern: s.to_string(),
            reason,
        })
    }
}

/// An invalid pattern: which one and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it, and how to write it instead where that is clear.
    pub reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid egress pattern {:?}: {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for PatternError {}

fn parse_pattern(s: &str) -> Result<Pattern, String> {
    if s.is_empty() {
        return Err("the pattern is empty".into());
    }
    if s.chars().any(char::is_whitespace) {
        return Err("it contains whitespace".into());
    }
    if s.contains("://") {
        return Err("it looks like a URL; give only the host and an optional port, e.g. `pypi.org` or `pypi.org:443`".into());
    }
    if !s.is_ascii() {
        return Err("it contains non-ASCII characters; write internationalised names in their punycode form (`xn--…`)".into());
    }
    let (host, port) = split_host_port(s)?;
    let port = port.map(parse_port).transpose()?;
    let host = if let Some((addr, prefix)) = host.split_once('/') {
        HostPattern::Net(parse_net(addr, prefix)?)
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        HostPattern::Net(IpNet::host(ip))
    } else if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.contains('*') {
            return Err(
                "`*` may only stand alone as the first label, as in `*.example.com`".into(),
            );
        }
        HostPattern::Below(parse_name(suffix)?)
    } else if host.contains('*') {
        return Err(if host == "*" {
            "`*` alone is not a pattern; an open network needs no egress policy, and `*.example.com` matches the names below a domain".into()
        } else {
            "`*` may only stand alone as the first label, as in `*.example.com`".into()
        });
    } else {
        HostPattern::Exact(parse_name(host)?)
    };
    Ok(Pattern { host, port })
}

/// Splits `host[:port]`, `[v6]:port`, `[v6]` or a bare IPv6 address/network.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err("`[` without a closing `]`".into());
        };
        if inside.parse::<IpAddr>().is_err() && !inside.contains('/') {
            return Err(format!(
                "`[{inside}]`: brackets hold an IPv6 address, and `{inside}` is not one"
            ));
        }
        return match after {
            "" => Ok((inside, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((inside, Some(port))),
                None => Err(format!(
                    "unexpected `{after}` after `]`; write `[address]:port`"
                )),
            },
        };
    }
    match s.matches(':').count() {
        0 => Ok((s, None)),
        1 => {
            let (h, p) = s.split_once(':').unwrap_or((s, ""));
            if h.is_empty() {
                return Err("the host before `:` is empty".into());
            }
            Ok((h, Some(p)))
        }
        // Two or more colons: an IPv6 address or network without a port.
        _ => {
            if s.contains('%') {
                return Err("IPv6 zone indexes (`%eth0`) are not supported".into());
            }
            Ok((s, None))
        }
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    if p.is_empty() {
        return Err("the port after `:` is empty".into());
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port `{p}` is not a number"));
    }
    match p.parse::<u32>() {
        Ok(0) => Err("port 0 is not a port one can connect to (use 1-65535)".into()),
        Ok(n) if n <= 65535 => Ok(n as u16),
        _ => Err(format!("port `{p}` is out of range (1-65535)")),
    }
}

fn parse_net(addr: &str, prefix: &str) -> Result<IpNet, String> {
    let ip: IpAddr = addr.parse().map_err(|_| {
        format!("it contains `/` but `{addr}` is not an IP address; give only a host (no path), or a network such as `10.0.0.0/8`")
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
        return Err(format!(
            "prefix length `{prefix}` is not a number from 0 to {max}"
        ));
    }
    let len: u8 = prefix
        .parse()
        .map_err(|_| format!("prefix length `{prefix}` is not a number from 0 to {max}"))?;
    if len > max {
        return Err(format!(
            "prefix length /{len} is longer than an {} address (/{max})",
            if max == 32 { "IPv4" } else { "IPv6" }
        ));
    }
    let net = IpNet::new(ip, len);
    if net.addr != normalize_ip(ip) {
        return Err(format!(
            "`{addr}/{len}` has bits set beyond its prefix; did you mean `{net}`?"
        ));
    }
    Ok(net)
}

/// Validates and normalises a DNS name: lower case, no trailing dot.
fn parse_name(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the name is {} characters long, more than DNS allows ({MAX_NAME_LEN})",
            name.len()
        ));
    }
    if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("`{name}` is not a valid IPv4 address"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("it has an empty label (`..`, or a leading dot)".into());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "label `{label}` is longer than {MAX_LABEL_LEN} characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "`{c}` is not allowed in a host name (letters, digits, `-`, `_` and `.` are)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with `-`"));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the last label is all digits, which no host name has".into());
    }
    Ok(name)
}

/// A destination host as an instance asked for it: a validated name or an address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lower case, without a trailing dot.
    Name(String),
    /// An IP address (IPv4-mapped IPv6 addresses are stored as IPv4).
    Ip(IpAddr),
}

impl Host {
    /// Parses a host as found in a CONNECT target, a URL, a TLS SNI or a DNS question: a name, an
    /// IPv4 address or an IPv6 address (without brackets).
    ///
    /// # Errors
    /// What is wrong with the host.
    pub fn parse(s: &str) -> Result<Host, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Host::Ip(normalize_ip(ip)));
        }
        if !s.is_ascii() {
            return Err("the host name contains non-ASCII characters".into());
        }
        if s.contains('*') {
            return Err("`*` is not allowed in a host name".into());
        }
        parse_name(s).map(Host::Name)
    }

    /// The name, or `None` for an address.
    pub fn name(&self) -> Option<&str> {
        match self {
            Host::Name(n) => Some(n),
            Host::Ip(_) => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// An IP network: an address and a prefix length, with no bits set beyond the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix` bits (clamped to the address length); bits beyond the
    /// prefix are cleared. IPv4-mapped IPv6 networks of at least /96 become IPv4 networks.
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => (
                IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)),
                prefix - 96,
            ),
            _ => (addr, prefix),
        };
        match addr {
            IpAddr::V4(v4) => {
                let prefix = prefix.min(32);
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpNet {
                    addr: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask)),
                    prefix,
                }
            }
            IpAddr::V6(v6) => {
                let prefix = prefix.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpNet {
                    addr: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
                    prefix,
                }
            }
        }
    }

    /// The single-address network of `addr`.
    pub fn host(addr: IpAddr) -> Self {
        let addr = normalize_ip(addr);
        IpNet::new(addr, if addr.is_ipv4() { 32 } else { 128 })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Is `ip` in this network? (IPv4-mapped IPv6 addresses count as IPv4.)
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = normalize_ip(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && IpNet::new(ip, self.prefix).addr == self.addr
    }
}

impl fmt::Display for IpNet {
    /// `10.0.0.0/8`, or just the address for a single-address network.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.7`) as the IPv4 address they carry.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> Host {
        Host::parse(s).unwrap()
    }

    #[test]
    fn valid_patterns_and_their_canonical_form() {
        let table = [
            ("pypi.org", "pypi.org"),
            ("PyPI.org.", "pypi.org"),
            ("*.pythonhosted.org", "*.pythonhosted.org"),
            ("github.com:443", "github.com:443"),
            ("localhost", "localhost"),
            ("_acme.example.com", "_acme.example.com"),
            ("xn--bcher-kva.de", "xn--bcher-kva.de"),
            ("192.0.2.7", "192.0.2.7"),
            ("192.0.2.7:80", "192.0.2.7:80"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.0.0.0/8:5432", "10.0.0.0/8:5432"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:DB8::1]:443", "[2001:db8::1]:443"),
            ("fd00::/8", "fd00::/8"),
            ("[fd00::/8]:22", "[fd00::/8]:22"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("a.b:65535", "a.b:65535"),
        ];
        for (input, canonical) in table {
            let p: Pattern = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(p.to_string(), canonical, "{input}");
            assert_eq!(
                canonical.parse::<Pattern>().unwrap(),
                p,
                "{canonical} round trip"
            );
        }
    }

    #[test]
    fn invalid_patterns_say_why() {
        let table = [
            ("", "empty"),
            (" pypi.org", "whitespace"),
            ("https://pypi.org", "looks like a URL"),
            ("pypi.org/simple", "no path"),
            ("bücher.de", "punycode"),
            ("a..b", "empty label"),
            (".a.com", "empty label"),
            ("a.com..", "empty label"),
            ("*", "`*` alone"),
            ("a*.b.com", "first label"),
            ("*.*.com", "first label"),
            ("foo.*.com", "first label"),
            ("**.com", "first label"),
            ("*.", "empty"),
            ("a.com:", "port after `:` is empty"),
            (":443", "host before `:` is empty"),
            ("a.com:0", "port 0"),
            ("a.com:65536", "out of range"),
            ("a.com:99999999999", "out of range"),
            ("a.com:https", "not a number"),
            ("a.com:-1", "not a number"),
            ("a_b!.com", "`!` is not allowed"),
            ("-a.com", "starts or ends with `-`"),
            ("a-.com", "starts or ends with `-`"),
            ("1.2.3", "not a valid IPv4"),
            ("999.1.1.1", "not a valid IPv4"),
            ("010.0.0.1", "not a valid IPv4"),
            ("foo.123", "all digits"),
            ("10.0.0.1/8", "did you mean `10.0.0.0/8`"),
            ("10.0.0.0/33", "longer than an IPv4"),
            ("fd00::/129", "longer than an IPv6"),
            ("10.0.0.0/", "not a number"),
            ("10.0.0.0/x", "not a number"),
            ("foo/8", "not an IP address"),
            ("[a.com]:80", "brackets hold an IPv6"),
            ("[::1", "without a closing"),
            ("[::1]x", "after `]`"),
            ("fe80::1%eth0", "zone"),
            (&format!("{}.com", "a".repeat(64)), "longer than 63"),
            (
                &format!("{}com", "abcdefghi.".repeat(26)),
                "more than DNS allows",
            ),
        ];
        for (input, want) in table {
            let err = input.parse::<Pattern>().expect_err(input);
            let msg = err.to_string();
            assert!(
                msg.contains(want),
                "{input:?}: {msg:?} should contain {want:?}"
            );
            assert!(
                msg.contains(&format!("{input:?}")),
                "{msg} should quote the input"
            );
        }
    }

    #[test]
    fn allow_list_decisions() {
        let p = Policy::allow([
            "pypi.org",
            "*.pythonhosted.org",
            "github.com:443",
            "192.0.2.0/24",
            "[2001:db8::1]:443",
        ])
        .unwrap();
        let table: &[(&str, u16, bool, &str)] = &[
            ("pypi.org", 443, true, "`pypi.org`"),
            ("PYPI.ORG.", 80, true, "`pypi.org`"),
            ("files.pythonhosted.org", 443, true, "`*.pythonhosted.org`"),
            ("a.b.pythonhosted.org", 443, true, "`*.pythonhosted.org`"),
            ("pythonhosted.org", 443, false, "not in the allow-list"),
            ("evilpythonhosted.org", 443, false, "not in the allow-list"),
            ("github.com", 443, true, "`github.com:443`"),
            ("github.com", 22, false, "allows another port"),
            ("api.github.com", 443, false, "not in the allow-list"),
            ("192.0.2.9", 8080, true, "`192.0.2.0/24`"),
            ("198.51.100.1", 443, false, "raw IP address"),
            ("::ffff:192.0.2.9", 80, true, "`192.0.2.0/24`"),
            ("2001:db8::1", 443, true, "`[2001:db8::1]:443`"),
            ("2001:db8::1", 80, false, "allows another port"),
            ("example.com", 80, false, "not in the allow-list"),
        ];
        for &(host, port, allowed, why) in table {
            let v = p.check(&name(host), port);
            assert_eq!(v.allowed, allowed, "{host}:{port}: {v:?}");
            assert!(
                v.reason.contains(why),
                "{host}:{port}: {:?} should contain {why:?}",
                v.reason
            );
        }
    }

    #[test]
    fn deny_list_decisions() {
        let p = Policy::deny(["*.tracker.example", "evil.example:443", "203.0.113.0/24"]).unwrap();
        let table: &[(&str, u16, bool)] = &[
            ("a.tracker.example", 443, false),
            ("tracker.example", 443, true),
            ("evil.example", 443, false),
            ("evil.example", 80, true),
            ("203.0.113.5", 80, false),
            ("198.51.100.1", 80, true),
            ("pypi.org", 443, true),
        ];
        for &(host, port, allowed) in table {
            assert_eq!(p.check(&name(host), port).allowed, allowed, "{host}:{port}");
        }
        // Names: only a port-less deny pattern hides a name from DNS.
        assert!(!p.check_name(&name("x.tracker.example")).allowed);
        assert!(p.check_name(&name("evil.example")).allowed);
        assert!(p.check_name(&name("pypi.org")).allowed);
    }

    #[test]
    fn names_resolve_when_some_port_is_allowed() {
        let p = Policy::allow(["github.com:443", "*.example.org"]).unwrap();
        assert!(p.check_name(&name("github.com")).allowed);
        assert!(p.check_name(&name("www.example.org")).allowed);
        assert!(!p.check_name(&name("example.org")).allowed);
        assert!(!p.check_name(&name("gitlab.com")).allowed);
        let empty = Policy::allow(Vec::<String>::new()).unwrap();
        assert!(!empty.check(&name("a.com"), 80).allowed);
        assert!(!empty.check_name(&name("a.com")).allowed);
    }

    #[test]
    fn policy_errors_name_the_bad_pattern_and_display_lists_patterns() {
        let err = Policy::allow(["pypi.org", "bad pattern"]).unwrap_err();
        assert_eq!(err.pattern, "bad pattern");
        let p = Policy::allow(["PyPI.org", "*.x.y:8080"]).unwrap();
        assert_eq!(p.to_string(), "allow-list [pypi.org, *.x.y:8080]");
    }

    #[test]
    fn destination_hosts() {
        assert_eq!(
            Host::parse("Example.COM.").unwrap(),
            Host::Name("example.com".into())
        );
        assert_eq!(
            Host::parse("::ffff:10.0.0.1").unwrap(),
            Host::Ip("10.0.0.1".parse().unwrap())
        );
        for bad in ["", "a..b", "*.a.com", "a b", "ä.com", "1.2.3.4.5", "x:80"] {
            assert!(Host::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9_]([a-z0-9_-]{0,10}[a-z0-9_])?"
    }

    fn dns_name() -> impl Strategy<Value = String> {
        (prop::collection::vec(label(), 0..4), "[a-z][a-z0-9]{0,5}").prop_map(|(mut ls, tld)| {
            ls.push(tld);
            ls.join(".")
        })
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|v| IpAddr::V4(v.into())),
            any::<u128>().prop_map(|v| IpAddr::V6(v.into())),
        ]
    }

    fn pattern_text() -> impl Strategy<Value = String> {
        let port = prop::option::of(1u16..);
        prop_oneof![
            (dns_name(), port.clone())
                .prop_map(|(n, p)| p.map_or(n.clone(), |p| format!("{n}:{p}"))),
            (dns_name(), port.clone())
                .prop_map(|(n, p)| p.map_or(format!("*.{n}"), |p| format!("*.{n}:{p}"))),
            (ip(), any::<u8>(), port).prop_map(|(ip, len, p)| {
                let net = IpNet::new(ip, len);
                match (net.addr().is_ipv6(), p) {
                    (true, Some(p)) => format!("[{net}]:{p}"),
                    (false, Some(p)) => format!("{net}:{p}"),
                    (_, None) => net.to_string(),
                }
            }),
        ]
    }

    fn host() -> impl Strategy<Value = Host> {
        prop_oneof![
            dns_name().prop_map(Host::Name),
            ip().prop_map(|ip| Host::Ip(normalize_ip(ip)))
        ]
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Pattern>();
            let _ = Host::parse(&s);
        }

        #[test]
        fn parsing_pattern_like_text_never_panics(s in "[a-z0-9.*:/\\[\\]%-]{0,30}") {
            if let Ok(p) = s.parse::<Pattern>() {
                prop_assert_eq!(p.to_string().parse::<Pattern>().unwrap(), p);
            }
        }

        #[test]
        fn generated_patterns_round_trip(text in pattern_text()) {
            let p: Pattern = text.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(p.to_string().parse::<Pattern>().unwrap(), p);
        }

        #[test]
        fn exact_and_wildcard_semantics(n in dns_name(), sub in label(), port in 1u16..) {
            let exact: Pattern = n.parse().unwrap();
            let below: Pattern = format!("*.{n}").parse().unwrap();
            let apex = Host::Name(n.clone());
            let child = Host::Name(format!("{sub}.{n}"));
            prop_assert!(exact.matches(&apex, Some(port)));
            let shouted = Host::parse(&format!("{}.", n.to_uppercase())).unwrap();
            prop_assert!(exact.matches(&shouted, Some(port)));
            prop_assert!(!exact.matches(&child, Some(port)));
            prop_assert!(below.matches(&child, Some(port)));
            prop_assert!(!below.matches(&apex, Some(port)));
            // `*.n` does not match a sibling that merely ends with the same text.
            let sibling = Host::Name(format!("{sub}{n}"));
            prop_assert!(!below.matches(&sibling, Some(port)));
        }

        #[test]
        fn networks_contain_their_addresses(addr in ip(), len in any::<u8>()) {
            let net = IpNet::new(addr, len);
            prop_assert!(net.contains(addr));
            prop_assert!(net.to_string().parse::<Pattern>().is_ok());
        }

        #[test]
        fn deny_is_the_complement_of_allow(pats in prop::collection::vec(pattern_text(), 0..5), h in host(), port in 1u16..) {
            let allow = Policy::allow(&pats).unwrap();
            let deny = Policy::deny(&pats).unwrap();
            prop_assert_ne!(allow.check(&h, port).allowed, deny.check(&h, port).allowed);
            // Whatever may connect on some port also resolves.
            if allow.check(&h, port).allowed && matches!(h, Host::Name(_)) {
                prop_assert!(allow.check_name(&h).allowed);
            }
        }
    }
}
