//! Lenient, panic-free helpers over rsip's untyped header values, and the RFC 3261 §8.2.6
//! response skeleton shared by the transaction layer and the UAS core.
//!
//! rsip keeps most headers as strings; its typed parsers reject some valid forms (IPv6 `Via`
//! hosts, extension methods in `CSeq`). The transaction layer must never fail on such input, so
//! the few fields it needs (top `Via`, tags, `CSeq`) are parsed here with small, total functions.

use std::net::{IpAddr, SocketAddr};

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Request, Response, StatusCode, Version};

/// The RFC 3261 §8.1.1.7 branch prefix that marks an RFC 3261 compliant transaction id.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A header that a request lacks or that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgError {
    /// A mandatory header (RFC 3261 §8.1.1) is absent.
    #[error("Missing {0} header")]
    Missing(&'static str),
    /// A header is present but cannot be parsed.
    #[error("Malformed {0} header")]
    Malformed(&'static str),
    /// The `CSeq` method differs from the request-line method (RFC 3261 §8.1.1.5).
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
}

/// One `Via` header field value (RFC 3261 §20.42), as far as the transaction layer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-cased (`UDP`, `TCP`, `TLS`, ...).
    pub transport: String,
    /// Host of sent-by, as written (IPv6 keeps its brackets).
    pub host: String,
    /// Port of sent-by, when given.
    pub port: Option<u16>,
    /// `;name[=value]` parameters in order; names keep their spelling.
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Parses the first element of a (possibly comma-joined) `Via` header value.
    pub fn parse(value: &str) -> Result<Self, MsgError> {
        const H: &str = "Via";
        let first = split_commas(value)
            .into_iter()
            .next()
            .ok_or(MsgError::Malformed(H))?;
        let (head, params) = match first.find(';') {
            Some(i) => (&first[..i], &first[i + 1..]),
            None => (first, ""),
        };
        let mut parts = head.splitn(3, '/');
        let proto = parts.next().unwrap_or("").trim();
        let version = parts.next().unwrap_or("").trim();
        let rest = parts.next().unwrap_or("").trim();
        if !proto.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(MsgError::Malformed(H));
        }
        let mut words = rest.split_whitespace();
        let transport = words.next().ok_or(MsgError::Malformed(H))?;
        let sent_by = words.next().ok_or(MsgError::Malformed(H))?;
        if words.next().is_some() || !is_token(transport) {
            return Err(MsgError::Malformed(H));
        }
        let (host, port) = split_host_port(sent_by).ok_or(MsgError::Malformed(H))?;
        let params = parse_params(params).ok_or(MsgError::Malformed(H))?;
        Ok(Self {
            transport: transport.to_ascii_uppercase(),
            host: host.to_string(),
            port,
            params,
        })
    }

    /// The `branch` parameter (RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// `Some(None)` for a valueless parameter, `Some(Some(v))` with a value, `None` if absent.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// sent-by normalised for comparison (§17.2.3): lower-case host plus the port if written.
    pub fn sent_by_key(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host.to_ascii_lowercase()),
            None => self.host.to_ascii_lowercase(),
        }
    }

    /// Sets (or replaces) a parameter.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        match self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.params.push((name.to_string(), value)),
        }
    }

    /// Whether the transport is connection-oriented (RFC 3261 §18: reliable).
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case("UDP")
    }

    fn default_port(&self) -> u16 {
        if self.transport.eq_ignore_ascii_case("TLS") {
            5061
        } else {
            5060
        }
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into its parts; `None` when malformed.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    if s.starts_with('[') {
        let end = s.find(']')?;
        let host = &s[..=end];
        let rest = &s[end + 1..];
        if rest.is_empty() {
            return Some((host, None));
        }
        let port = rest.strip_prefix(':')?.parse().ok()?;
        return Some((host, Some(port)));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => Some((h, Some(p.parse().ok()?))),
        Some(_) => None,
        None => Some((s, None)),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Parses `a=b;c;d=e` (leading `;` already removed); `None` if a name is empty.
fn parse_params(s: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Some(out);
    }
    for p in split_outside_quotes(s, ';') {
        let p = p.trim();
        let (n, v) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
            None => (p, None),
        };
        if n.is_empty() {
            return None;
        }
        out.push((n.to_string(), v));
    }
    Some(out)
}

/// Splits on `sep` outside double quotes and angle brackets.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            c if c == sep && !quoted && !angle => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Splits a header value on commas that separate field values (RFC 3261 §7.3.1), ignoring
/// commas inside quotes or `<...>`; empty elements are dropped.
pub fn split_commas(s: &str) -> Vec<&str> {
    split_outside_quotes(s, ',')
        .into_iter()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect()
}

/// The header parameters of a name-addr / addr-spec value (`From`, `To`, `Contact`): those after
/// `>` when the URI is bracketed, else those after the first `;` (RFC 3261 §20.10).
pub fn header_params(value: &str) -> Vec<(String, Option<String>)> {
    let tail = match find_outside_quotes(value, '<') {
        Some(lt) => match value[lt..].find('>') {
            Some(gt) => &value[lt + gt + 1..],
            None => return Vec::new(),
        },
        None => match value.find(';') {
            Some(i) => &value[i..],
            None => return Vec::new(),
        },
    };
    let tail = tail.trim_start().strip_prefix(';').unwrap_or("");
    parse_params(tail).unwrap_or_default()
}

/// The URI of a name-addr (inside `<>`) or of a bare addr-spec (before any `;`).
pub fn addr_uri(value: &str) -> Option<&str> {
    match find_outside_quotes(value, '<') {
        Some(lt) => {
            let rest = &value[lt + 1..];
            rest.find('>').map(|gt| rest[..gt].trim())
        }
        None => value.split(';').next().map(str::trim),
    }
}

fn find_outside_quotes(s: &str, needle: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == needle && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// The `tag` parameter of a `From`/`To` value (RFC 3261 §19.3).
pub fn tag_of(value: &str) -> Option<String> {
    header_params(value)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("tag"))
        .and_then(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The user part of a SIP URI string (`sip:user@host` → `user`).
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let (userinfo, _) = rest.split_once('@')?;
    Some(userinfo.split(':').next().unwrap_or(userinfo))
}

/// Parses a `CSeq` value: sequence number and method token (RFC 3261 §20.16).
pub fn parse_cseq(value: &str) -> Result<(u32, String), MsgError> {
    let mut words = value.split_whitespace();
    let seq = words
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n < (1 << 31))
        .ok_or(MsgError::Malformed("CSeq"))?;
    let method = words
        .next()
        .filter(|m| is_token(m))
        .ok_or(MsgError::Malformed("CSeq"))?;
    if words.next().is_some() {
        return Err(MsgError::Malformed("CSeq"));
    }
    Ok((seq, method.to_ascii_uppercase()))
}

/// First value of a header selected by `pick`.
pub fn first<'a>(
    headers: &'a Headers,
    pick: impl Fn(&'a Header) -> Option<&'a str>,
) -> Option<&'a str> {
    headers.iter().find_map(pick)
}

/// All `Via` values of a message in order, comma-joined values split apart.
pub fn all_vias(headers: &Headers) -> Vec<String> {
    headers
        .iter()
        .filter_map(|h| match h {
            Header::Via(v) => Some(v.value()),
            _ => None,
        })
        .flat_map(split_commas)
        .map(str::to_string)
        .collect()
}

/// The top `Via` of a message.
pub fn top_via(headers: &Headers) -> Result<Via, MsgError> {
    let v = first(headers, |h| match h {
        Header::Via(v) => Some(v.value()),
        _ => None,
    })
    .ok_or(MsgError::Missing("Via"))?;
    Via::parse(v)
}

/// The value of a non-repeating header such as `Call-ID`, trimmed.
pub fn call_id(headers: &Headers) -> Option<&str> {
    first(headers, |h| match h {
        Header::CallId(v) => Some(v.value().trim()),
        _ => None,
    })
}

/// The identifying fields of a request, validated (RFC 3261 §8.1.1 mandatory headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// Top `Via`, as received.
    pub via: Via,
    /// `Call-ID` value.
    pub call_id: String,
    /// `From` tag (may be absent from RFC 2543 clients).
    pub from_tag: Option<String>,
    /// `To` tag; present on in-dialog requests (and ACK for a non-2xx).
    pub to_tag: Option<String>,
    /// `CSeq` sequence number.
    pub cseq: u32,
    /// `CSeq` method, upper-case.
    pub cseq_method: String,
}

impl RequestInfo {
    /// Checks Via, From, To, Call-ID and CSeq; `Err` names the first offending header.
    pub fn from_request(req: &Request) -> Result<Self, MsgError> {
        let h = &req.headers;
        let via = top_via(h)?;
        if matches!(via.param("branch"), Some(None | Some(""))) {
            return Err(MsgError::Malformed("Via"));
        }
        let from = first(h, |x| match x {
            Header::From(v) => Some(v.value()),
            _ => None,
        })
        .ok_or(MsgError::Missing("From"))?;
        let to = first(h, |x| match x {
            Header::To(v) => Some(v.value()),
            _ => None,
        })
        .ok_or(MsgError::Missing("To"))?;
        if addr_uri(from).is_none_or(|u| !u.contains(':')) {
            return Err(MsgError::Malformed("From"));
        }
        if addr_uri(to).is_none_or(|u| !u.contains(':')) {
            return Err(MsgError::Malformed("To"));
        }
        let call_id = call_id(h).ok_or(MsgError::Missing("Call-ID"))?;
        if call_id.is_empty() || call_id.contains(char::is_whitespace) {
            return Err(MsgError::Malformed("Call-ID"));
        }
        let cseq = first(h, |x| match x {
            Header::CSeq(v) => Some(v.value()),
            _ => None,
        })
        .ok_or(MsgError::Missing("CSeq"))?;
        let (seq, cseq_method) = parse_cseq(cseq)?;
        if cseq_method != req.method.to_string() {
            return Err(MsgError::CSeqMismatch);
        }
        Ok(Self {
            via,
            call_id: call_id.to_string(),
            from_tag: tag_of(from),
            to_tag: tag_of(to),
            cseq: seq,
            cseq_method,
        })
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4): over a reliable transport
/// back to the connection's peer; over UDP to the source IP and, when the request carried
/// `rport`, the source port, otherwise the sent-by port (default 5060, 5061 for TLS).
pub fn response_destination(via: &Via, source: SocketAddr, reliable: bool) -> SocketAddr {
    if reliable || via.param("rport").is_some() {
        source
    } else {
        SocketAddr::new(source.ip(), via.port.unwrap_or_else(|| via.default_port()))
    }
}

/// Everything needed to build any response to one request (RFC 3261 §8.2.6.2): the Via list
/// (top one stamped with `received`/`rport`), From, To, Call-ID, CSeq and the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBase {
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
    timestamp: Option<String>,
    to_tag: String,
    /// Where the responses are sent.
    pub destination: SocketAddr,
}

/// A To tag that is the same for every response to one request, including a CANCEL of it and
/// any retransmission answered statelessly (RFC 3261 §8.2.6.2, §8.2.7, §9.2). It is a keyed
/// hash of Call-ID, From tag, CSeq number and top-Via branch; the key is random per process, so
/// the tag carries 64 unpredictable bits (§19.3 asks for at least 32).
fn derive_tag(headers: &Headers, top: &Via) -> String {
    use std::hash::{BuildHasher, Hash, Hasher};
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = KEY
        .get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher();
    call_id(headers).hash(&mut h);
    first(headers, |x| match x {
        Header::From(v) => Some(v.value()),
        _ => None,
    })
    .and_then(tag_of)
    .hash(&mut h);
    first(headers, |x| match x {
        Header::CSeq(v) => Some(v.value()),
        _ => None,
    })
    .and_then(|c| parse_cseq(c).ok())
    .map(|(n, _)| n)
    .hash(&mut h);
    top.branch().hash(&mut h);
    top.sent_by_key().hash(&mut h);
    format!("{:016x}", h.finish())
}

impl ResponseBase {
    /// Builds the skeleton; fails only when the top `Via` is missing or unparseable (then no
    /// response can be routed and the request must be dropped, RFC 3261 §8.2.6.2 / §18.2.2).
    pub fn new(headers: &Headers, source: SocketAddr, reliable: bool) -> Result<Self, MsgError> {
        let mut top = top_via(headers)?;
        let to_tag = derive_tag(headers, &top);
        let destination = response_destination(&top, source, reliable);
        // RFC 3261 §18.2.1: received= when sent-by is not the packet's source address;
        // RFC 3581 §4: an empty rport gets the source port, and received= is then mandatory.
        let sent_by_ip = top
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        let empty_rport = matches!(top.param("rport"), Some(None));
        if empty_rport {
            top.set_param("rport", Some(source.port().to_string()));
        }
        if empty_rport || sent_by_ip != Some(source.ip()) {
            top.set_param("received", Some(source.ip().to_string()));
        }
        let mut vias = all_vias(headers);
        match vias.first_mut() {
            Some(v) => *v = top.to_string(),
            None => vias.push(top.to_string()),
        }
        let pick = |f: fn(&Header) -> Option<&str>| first(headers, f).map(str::to_string);
        Ok(Self {
            vias,
            from: pick(|h| match h {
                Header::From(v) => Some(v.value()),
                _ => None,
            }),
            to: pick(|h| match h {
                Header::To(v) => Some(v.value()),
                _ => None,
            }),
            call_id: pick(|h| match h {
                Header::CallId(v) => Some(v.value()),
                _ => None,
            }),
            cseq: pick(|h| match h {
                Header::CSeq(v) => Some(v.value()),
                _ => None,
            }),
            timestamp: pick(|h| match h {
                Header::Timestamp(v) => Some(v.value()),
                _ => None,
            }),
            to_tag,
            destination,
        })
    }

    /// The To tag this UAS uses for the request (unless the request's `To` already had one).
    pub fn to_tag(&self) -> &str {
        &self.to_tag
    }

    /// A response with the standard status; every response but 100 gets our To tag unless the
    /// request's `To` already carries one (RFC 3261 §8.2.6.2). Ends with `Content-Length: 0`.
    pub fn response(&self, code: u16) -> Response {
        self.build(StatusCode::from(code))
    }

    /// Like [`ResponseBase::response`] with an explicit reason phrase (e.g. for 400).
    pub fn response_with_reason(&self, code: u16, reason: &str) -> Response {
        self.build(StatusCode::Other(code, reason.to_string()))
    }

    fn build(&self, status_code: StatusCode) -> Response {
        let to_tag = (status_code.code() != 100).then_some(self.to_tag.as_str());
        let mut headers = Headers::default();
        for v in &self.vias {
            headers.push(rsip::headers::Via::new(v.clone()).into());
        }
        if let Some(f) = &self.from {
            headers.push(rsip::headers::From::new(f.clone()).into());
        }
        if let Some(t) = &self.to {
            let value = match to_tag {
                Some(tag) if tag_of(t).is_none() => format!("{t};tag={tag}"),
                _ => t.clone(),
            };
            headers.push(rsip::headers::To::new(value).into());
        }
        if let Some(c) = &self.call_id {
            headers.push(rsip::headers::CallId::new(c.clone()).into());
        }
        if let Some(c) = &self.cseq {
            headers.push(rsip::headers::CSeq::new(c.clone()).into());
        }
        // RFC 3261 §8.2.6.1: a 100 (Trying) copies Timestamp.
        if status_code.code() == 100
            && let Some(ts) = &self.timestamp
        {
            headers.push(rsip::headers::Timestamp::new(ts.clone()).into());
        }
        headers.push(rsip::headers::ContentLength::new("0").into());
        Response {
            status_code,
            version: Version::V2,
            headers,
            body: Vec::new(),
        }
    }
}

/// Appends `header` before the final `Content-Length` so that it stays last.
pub fn push_header(resp: &mut Response, header: Header) {
    let mut all: Vec<Header> = std::mem::take(&mut resp.headers).into();
    let at = match all.last() {
        Some(Header::ContentLength(_)) => all.len() - 1,
        _ => all.len(),
    };
    all.insert(at, header);
    resp.headers = all.into();
}

/// The value of the first header of `resp` for which `pick` returns `Some`.
pub fn response_header<'a>(
    resp: &'a Response,
    pick: impl Fn(&'a Header) -> Option<&'a str>,
) -> Option<&'a str> {
    first(&resp.headers, pick)
}

/// A short reason phrase for log lines and status displays (RFC 3261 §21).
pub fn reason_phrase(status: &StatusCode) -> String {
    if let StatusCode::Other(_, reason) = status {
        return reason.clone();
    }
    let text = match status.code() {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        486 => "Busy Here",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "",
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(list: &[Header]) -> Headers {
        list.to_vec().into()
    }

    #[test]
    fn via_parses_common_and_odd_forms() {
        let v = Via::parse("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKab;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.0.2.1");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.branch(), Some("z9hG4bKab"));
        assert_eq!(v.param("rport"), Some(None));
        let v =
            Via::parse("SIP / 2.0 / tcp [2001:db8::1]:5060 ; branch=x , SIP/2.0/UDP b").unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, "[2001:db8::1]");
        assert_eq!(v.sent_by_key(), "[2001:db8::1]:5060");
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("HTTP/1.1/UDP a").is_err());
        assert!(Via::parse("SIP/2.0/UDP a:notaport").is_err());
        assert!(Via::parse("SIP/2.0/UDP a;=x").is_err());
    }

    #[test]
    fn tags_and_uris() {
        assert_eq!(
            tag_of("\"A;tag=no\" <sip:a@b;tag=no>;tag=yes"),
            Some("yes".into())
        );
        assert_eq!(tag_of("sip:a@b;tag=1"), Some("1".into()));
        assert_eq!(tag_of("<sip:a@b>"), None);
        assert_eq!(addr_uri("\"x<y\" <sip:a@b>"), Some("sip:a@b"));
        assert_eq!(uri_user("sip:alice:pw@example.com"), Some("alice"));
        assert_eq!(parse_cseq("  12   invite "), Ok((12, "INVITE".into())));
        assert!(parse_cseq("x INVITE").is_err());
        assert!(parse_cseq("4294967295 INVITE").is_err());
        assert_eq!(
            split_commas("<sip:a,b>;q=1, \"x,y\" <sip:c>"),
            vec!["<sip:a,b>;q=1", "\"x,y\" <sip:c>"]
        );
    }

    #[test]
    fn response_base_stamps_received_and_rport() {
        let h = hdrs(&[
            rsip::headers::Via::new("SIP/2.0/UDP pbx.example.com;branch=z9hG4bK1;rport").into(),
            rsip::headers::Via::new("SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK0").into(),
            rsip::headers::From::new("<sip:a@b>;tag=f").into(),
            rsip::headers::To::new("<sip:c@d>").into(),
            rsip::headers::CallId::new("cid").into(),
            rsip::headers::CSeq::new("1 INVITE").into(),
        ]);
        let src: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        let base = ResponseBase::new(&h, src, false).unwrap();
        assert_eq!(base.destination, src);
        let r = base.response(180);
        let text = r.to_string();
        let tag = base.to_tag().to_string();
        assert_eq!(tag.len(), 16);
        assert!(text.contains(
            "Via: SIP/2.0/UDP pbx.example.com;branch=z9hG4bK1;rport=40000;received=198.51.100.7\r\n"
        ), "{text}");
        assert!(text.contains("Via: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK0\r\n"));
        assert!(text.contains(&format!("To: <sip:c@d>;tag={tag}\r\n")));
        assert!(base.response(100).to_string().contains("To: <sip:c@d>\r\n"));
        // The same request (or its CANCEL, same branch/CSeq number) gets the same tag.
        assert_eq!(ResponseBase::new(&h, src, false).unwrap().to_tag(), tag);
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));

        // No rport, sent-by equals the source: untouched, replies go to the sent-by port.
        let h = hdrs(&[rsip::headers::Via::new("SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK1").into()]);
        let base = ResponseBase::new(&h, src, false).unwrap();
        assert_eq!(base.destination, "198.51.100.7:5060".parse().unwrap());
        assert!(
            base.response(200)
                .to_string()
                .contains(";branch=z9hG4bK1\r\n")
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_are_total(s in ".{0,60}", t in "[ -~]{0,60}") {
            for v in [s.as_str(), t.as_str()] {
                let _ = Via::parse(v).map(|v| v.to_string());
                let _ = split_host_port(v);
                let _ = parse_cseq(v);
                let _ = tag_of(v);
                let _ = addr_uri(v);
                let _ = uri_user(v);
                let _ = header_params(v);
                let _ = split_commas(v);
            }
        }

        #[test]
        fn via_round_trips(
            transport in "(UDP|TCP|TLS)",
            host in "[a-z0-9.-]{1,12}",
            port in proptest::option::of(1u16..),
            branch in "z9hG4bK[a-zA-Z0-9]{1,10}",
        ) {
            let text = match port {
                Some(p) => format!("SIP/2.0/{transport} {host}:{p};branch={branch};rport"),
                None => format!("SIP/2.0/{transport} {host};branch={branch};rport"),
            };
            let v = Via::parse(&text).unwrap();
            proptest::prop_assert_eq!(v.to_string(), text);
            proptest::prop_assert_eq!(v.branch(), Some(branch.as_str()));
        }
    }
}
