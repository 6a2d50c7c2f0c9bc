//! Who is calling, and which business number they called, from a diverted INVITE.
//!
//! UK networks carry two calling numbers: the network number, checked by the network, in
//! P-Asserted-Identity (RFC 3325), and the presentation number, chosen by the caller, in From.
//! Older equipment sends Remote-Party-ID (draft-ietf-sip-privacy-04) instead of PAI. The number
//! that was called before the call was forwarded comes in Diversion (RFC 5806) or History-Info
//! (RFC 7044).
//!
//! Every URI is read the same way, whatever header it is in: `sip:`/`sips:` user parts (percent
//! escapes decoded, `;phone-context` honoured), `tel:` URIs (RFC 3966, with visual separators and
//! `phone-context`), with or without a display name and angle brackets. The number itself is read
//! by `codec::phone` (`CallerId::from_raw`, `E164::parse`), which assumes the UK when there is no
//! country code.
//!
//! Both functions expect a request from `wire::parse`, whose compact header names are expanded
//! and whose list headers are split; list values are split again here in case they are not.

use rsip::headers::UntypedHeader;
use rsip::{Header, Request};

use super::wire::split_list;
use crate::codec::phone::{CallerId, E164, NumberKind, WithheldReason};

/// Where the caller id was taken from, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallerSource {
    /// P-Asserted-Identity (RFC 3325): the network number.
    PAssertedIdentity,
    /// Remote-Party-ID (draft-ietf-sip-privacy-04), from older equipment.
    RemotePartyId,
    /// From (RFC 3261 §20.20): the presentation number.
    From,
    /// A Privacy header (RFC 3323 §4.2, RFC 3325 §9.3) asked for the identity to be hidden.
    Privacy,
}

/// The caller of an INVITE: a number to text back, or withheld, and where that was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub id: CallerId,
    pub source: CallerSource,
}

/// Where the called number was taken from, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalledSource {
    /// The last Diversion header (RFC 5806 §3): the first diversion, from the original number.
    Diversion,
    /// History-Info (RFC 7044): the entry that was retargeted to reach us.
    HistoryInfo,
    /// To (RFC 3261 §20.39): the number the caller dialled, when not forwarded with a record.
    To,
    /// The Request-URI (RFC 3261 §19.1.1); also the source reported when no header held a
    /// number.
    RequestUri,
}

/// The business number that was called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Called {
    /// `None` when no header held something that reads as a phone number (some providers put an
    /// account id in the Request-URI and To); never guessed.
    pub number: Option<E164>,
    pub source: CalledSource,
    /// The URI the number was read from or, without a number, the Request-URI, for logs.
    pub uri: String,
}

/// Works out the caller of an INVITE. The rules, in order:
///
/// 1. A Privacy header with `id`, `user` or `header` among its values (RFC 3323 §4.2,
///    RFC 3325 §9.3) → withheld (`Anonymous`), source `Privacy`. Kept simple on purpose: a
///    caller who asked for privacy is never texted, whichever header carries their number.
/// 2. A Remote-Party-ID with `privacy=full` or `privacy=uri` → withheld, source `RemotePartyId`
///    (`privacy=name` hides only the name and `screen=no` only says the network did not check
///    the number, so neither withholds).
/// 3. Any identity header (P-Asserted-Identity, Remote-Party-ID, From) whose URI is anonymous
///    (`sip:anonymous@anonymous.invalid`, RFC 3323 §4.1.1.3; a user "anonymous", "restricted",
///    "unavailable", "withheld", "private" or "unknown") or in Ofcom's non-diallable 08979
///    range → withheld, from that header. An anonymous From with a number in PAI is how many
///    networks show a withheld call, sometimes without a Privacy header.
/// 4. Otherwise candidates, in order: every P-Asserted-Identity (sip and tel), every
///    Remote-Party-ID with `party=calling` or no party, then From. The first UK mobile among the
///    numbers wins; failing that, the first number.
/// 5. No number at all → withheld with the reason of the first candidate (`Empty` for a URI with
///    no user, `Unparseable` for a name that is not a number).
pub fn caller(request: &Request) -> Caller {
    caller_with_value(request).0
}

/// [`caller`], and the header value it was read from (the From of a call whose Privacy header
/// withheld it; empty with no candidate): the record of a call shows the value its number came
/// from, so the stored caller is always the one that was texted.
pub fn caller_with_value(request: &Request) -> (Caller, String) {
    if privacy_requested(request) {
        let from = header_values(request, "From").first().copied();
        return (
            Caller {
                id: CallerId::Withheld(WithheldReason::Anonymous),
                source: CallerSource::Privacy,
            },
            from.unwrap_or_default().to_string(),
        );
    }

    let mut candidates: Vec<(CallerId, CallerSource, &str)> = Vec::new();
    for value in header_values(request, "P-Asserted-Identity") {
        candidates.push((caller_id(value), CallerSource::PAssertedIdentity, value));
    }
    for value in header_values(request, "Remote-Party-ID") {
        let Some(address) = NameAddr::parse(value) else {
            candidates.push((
                CallerId::Withheld(WithheldReason::Unparseable),
                CallerSource::RemotePartyId,
                value,
            ));
            continue;
        };
        let party = address.param("party");
        if party.is_some_and(|party| !party.eq_ignore_ascii_case("calling")) {
            continue;
        }
        let privacy = address.param("privacy").unwrap_or_default();
        if privacy.eq_ignore_ascii_case("full") || privacy.eq_ignore_ascii_case("uri") {
            return (
                Caller {
                    id: CallerId::Withheld(WithheldReason::Anonymous),
                    source: CallerSource::RemotePartyId,
                },
                value.to_string(),
            );
        }
        candidates.push((
            caller_id_from_uri(address.uri),
            CallerSource::RemotePartyId,
            value,
        ));
    }
    for value in header_values(request, "From") {
        candidates.push((caller_id(value), CallerSource::From, value));
    }

    let explicitly_withheld = candidates.iter().find(|(id, _, _)| {
        matches!(
            id,
            CallerId::Withheld(WithheldReason::Anonymous | WithheldReason::NonDiallable)
        )
    });
    let is_mobile = |id: &CallerId| id.number().map(E164::kind) == Some(NumberKind::UkMobile);
    let chosen = explicitly_withheld
        .or_else(|| candidates.iter().find(|(id, _, _)| is_mobile(id)))
        .or_else(|| candidates.iter().find(|(id, _, _)| id.number().is_some()))
        .or_else(|| candidates.first());
    match chosen {
        Some((id, source, value)) => (
            Caller {
                id: id.clone(),
                source: *source,
            },
            value.to_string(),
        ),
        None => (
            Caller {
                id: CallerId::Withheld(WithheldReason::Empty),
                source: CallerSource::From,
            },
            String::new(),
        ),
    }
}

/// Works out the business number that was called, trying in order:
///
/// 1. Diversion (RFC 5806 §3): each diversion adds an entry on top, so the last entry is the
///    first diversion, from the original called number.
/// 2. History-Info (RFC 7044): entries sorted by `index`. The first entry that marks a
///    retargeting is found: one whose URI carries a `cause` parameter (RFC 4458; RFC 7544 §4
///    maps a diversion to it), or a `Reason` in its URI headers (`?Reason=SIP%3Bcause%3D486`,
///    RFC 7044 §9.3). An entry with `Reason` is itself the target that was left, so it is the
///    original; an entry with `cause` is the new target, so the original is the entry its `mp`
///    names (RFC 7044 §10.3), or else the entry just before it. From there `rc` links (the same
///    user reached at a registered contact, §10.2) are followed back to the address of record.
///    With no marker, the first entry: the target the caller dialled.
/// 3. To: not changed by forwarding that leaves no record, so it is what the caller dialled.
/// 4. The Request-URI.
///
/// A header whose URI does not read as a phone number is passed over for the next; when none
/// does, `number` is `None` and `source` is `RequestUri`.
pub fn called(request: &Request) -> Called {
    let found = |uri: &str, source: CalledSource| {
        number_from_uri(uri).map(|number| Called {
            number: Some(number),
            source,
            uri: uri.to_string(),
        })
    };

    let diversions = header_values(request, "Diversion");
    if let Some(address) = diversions.last().and_then(|value| NameAddr::parse(value))
        && let Some(result) = found(address.uri, CalledSource::Diversion)
    {
        return result;
    }
    if let Some(uri) = history_info_original(&header_values(request, "History-Info"))
        && let Some(result) = found(uri, CalledSource::HistoryInfo)
    {
        return result;
    }
    if let Some(address) = header_values(request, "To")
        .first()
        .and_then(|value| NameAddr::parse(value))
        && let Some(result) = found(address.uri, CalledSource::To)
    {
        return result;
    }
    let request_uri = request.uri.to_string();
    Called {
        number: number_from_uri(&request_uri),
        source: CalledSource::RequestUri,
        uri: request_uri,
    }
}

/// The values of every header with this name, list values split into elements.
fn header_values<'a>(request: &'a Request, name: &str) -> Vec<&'a str> {
    request
        .headers
        .iter()
        .filter_map(|header| match header {
            Header::From(from) if name == "From" => Some(from.value()),
            Header::To(to) if name == "To" => Some(to.value()),
            Header::Other(key, value) if key.eq_ignore_ascii_case(name) => Some(value.as_str()),
            _ => None,
        })
        .flat_map(split_list)
        .collect()
}

/// True when a Privacy header asks to hide the identity: `id` (RFC 3325 §9.3), `user` or
/// `header` (RFC 3323 §4.2), in any case, among values separated by `;`.
fn privacy_requested(request: &Request) -> bool {
    header_values(request, "Privacy").iter().any(|value| {
        value.split([';', ',', ' ', '\t']).any(|token| {
            ["id", "user", "header"]
                .iter()
                .any(|hidden| token.eq_ignore_ascii_case(hidden))
        })
    })
}

/// A name-addr or addr-spec (RFC 3261 §25.1): the URI and the header parameters after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NameAddr<'a> {
    uri: &'a str,
    /// The parameters after the URI, starting with ';' (or empty).
    params: &'a str,
}

impl<'a> NameAddr<'a> {
    /// Reads `"Display \"Name\"" <uri>;params`, `Name <uri>;params` or `uri;params` (without
    /// angle brackets every `;` parameter belongs to the header, RFC 3261 §20.10). `None` for an
    /// unclosed quote or angle bracket.
    fn parse(value: &'a str) -> Option<NameAddr<'a>> {
        let value = value.trim();
        let mut rest = value;
        if let Some(quoted) = value.strip_prefix('"') {
            let mut escaped = false;
            let mut end = None;
            for (index, character) in quoted.char_indices() {
                match character {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        end = Some(index);
                        break;
                    }
                    _ => {}
                }
            }
            rest = quoted.get(end? + 1..)?;
        }
        if let Some(open) = rest.find('<') {
            let inside = rest.get(open + 1..)?;
            let close = inside.find('>')?;
            return Some(NameAddr {
                uri: inside.get(..close)?.trim(),
                params: inside.get(close + 1..)?.trim(),
            });
        }
        let (uri, params) = match rest.find(';') {
            Some(semicolon) => (rest.get(..semicolon)?, rest.get(semicolon..)?),
            None => (rest, ""),
        };
        Some(NameAddr {
            uri: uri.trim(),
            params: params.trim(),
        })
    }

    /// A header parameter's value (quotes removed; "" for a parameter without a value).
    fn param(&self, name: &str) -> Option<&'a str> {
        find_param(self.params, name)
    }
}

/// The value of a `;name=value` parameter in a parameter list, by name in any case.
fn find_param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|param| {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        key.trim().eq_ignore_ascii_case(name).then(|| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|inner| inner.strip_suffix('"'))
                .unwrap_or(value)
        })
    })
}

/// The caller id in a header value (name-addr).
fn caller_id(value: &str) -> CallerId {
    match NameAddr::parse(value) {
        Some(address) => caller_id_from_uri(address.uri),
        None => CallerId::Withheld(WithheldReason::Unparseable),
    }
}

/// The caller id of a URI.
fn caller_id_from_uri(uri: &str) -> CallerId {
    match phone_text(uri) {
        Ok(text) => CallerId::from_raw(&text),
        Err(reason) => CallerId::Withheld(reason),
    }
}

/// The phone number of a URI, if it holds one.
fn number_from_uri(uri: &str) -> Option<E164> {
    phone_text(uri)
        .ok()
        .and_then(|text| E164::parse(&text).ok())
}

/// What to hand `codec::phone` for a URI: a `tel:` URI with percent escapes decoded; for `sip:`/`sips:`, the user
/// part with percent escapes decoded, as a `tel:` URI when it carries parameters such as
/// `phone-context` (RFC 3261 §19.1.6, "sip:07700900123;phone-context=+44@host;user=phone").
/// Errors: `Anonymous` for the host anonymous.invalid (RFC 3323 §4.1.1.3), `Empty` for a URI
/// with no user, `Unparseable` for any other scheme.
fn phone_text(uri: &str) -> Result<String, WithheldReason> {
    let uri = uri.trim();
    if uri.is_empty() {
        return Err(WithheldReason::Empty);
    }
    if strip_scheme(uri, "tel:").is_some() {
        return Ok(percent_decode(uri));
    }
    let Some(rest) = strip_scheme(uri, "sip:").or_else(|| strip_scheme(uri, "sips:")) else {
        return Err(WithheldReason::Unparseable);
    };
    // Drop URI headers (after '?'), then split user from host at the last '@'.
    let rest = rest
        .split_once('?')
        .map_or(rest, |(before, _headers)| before);
    let (user, host) = rest.rsplit_once('@').unwrap_or(("", rest));
    let host = host.split([';', ':']).next().unwrap_or_default();
    if host.eq_ignore_ascii_case("anonymous.invalid") {
        return Err(WithheldReason::Anonymous);
    }
    let user = percent_decode(user);
    if user.trim().is_empty() {
        return Err(WithheldReason::Empty);
    }
    if user.contains(';') {
        Ok(format!("tel:{user}"))
    } else {
        Ok(user)
    }
}

/// The rest of `text` after a URI scheme, matched in any case.
fn strip_scheme<'a>(text: &'a str, scheme: &str) -> Option<&'a str> {
    let head = text.get(..scheme.len())?;
    if head.eq_ignore_ascii_case(scheme) {
        text.get(scheme.len()..)
    } else {
        None
    }
}

/// Decodes `%XX` escapes (RFC 3986 §2.1) that stand for ASCII characters ("%2B44…" → "+44…");
/// anything else is left as written.
fn percent_decode(text: &str) -> String {
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        decoded.push_str(rest.get(..at).unwrap_or_default());
        let escape = rest
            .get(at + 1..at + 3)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(u8::is_ascii);
        match escape {
            Some(byte) => {
                decoded.push(char::from(byte));
                rest = rest.get(at + 3..).unwrap_or_default();
            }
            None => {
                decoded.push('%');
                rest = rest.get(at + 1..).unwrap_or_default();
            }
        }
    }
    decoded.push_str(rest);
    decoded
}

/// One History-Info entry (RFC 7044 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HistoryEntry<'a> {
    uri: &'a str,
    /// The `index`, as numbers ("1.2.1" → [1, 2, 1]); `None` if missing or unreadable.
    index: Option<Vec<u32>>,
    /// The `mp` tag: the index of the entry this one was retargeted from.
    mp: Option<Vec<u32>>,
    /// The `rc` tag: the index of the entry whose user this one reaches at another contact.
    rc: Option<Vec<u32>>,
    /// The URI has a numeric `cause` parameter (RFC 4458): this entry is a diversion target.
    cause: bool,
    /// The URI has a `Reason` header: the request to this entry was answered with a failure or
    /// redirect, so it was left for another target.
    reason: bool,
}

impl<'a> HistoryEntry<'a> {
    fn parse(value: &'a str) -> Option<HistoryEntry<'a>> {
        let address = NameAddr::parse(value)?;
        let (main, headers) = address.uri.split_once('?').unwrap_or((address.uri, ""));
        let uri_params = main.split_once(';').map_or("", |(_, params)| params);
        let cause = find_param(uri_params, "cause").is_some_and(|cause| {
            !cause.is_empty() && cause.bytes().all(|byte| byte.is_ascii_digit())
        });
        let reason = headers.split('&').any(|header| {
            header
                .split_once('=')
                .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("Reason"))
        });
        let index = |name: &str| address.param(name).and_then(parse_index);
        Some(HistoryEntry {
            uri: address.uri,
            index: index("index"),
            mp: index("mp"),
            rc: index("rc"),
            cause,
            reason,
        })
    }
}

/// "1.2.1" → [1, 2, 1].
fn parse_index(text: &str) -> Option<Vec<u32>> {
    text.split('.')
        .map(|part| part.trim().parse().ok())
        .collect()
}

/// The URI of the original called target in History-Info entries (see `called` for the rule).
fn history_info_original<'a>(values: &[&'a str]) -> Option<&'a str> {
    let mut entries: Vec<HistoryEntry<'a>> = values
        .iter()
        .filter_map(|value| HistoryEntry::parse(value))
        .collect();
    // Entries with an index in index order; any without keep their place after them.
    entries.sort_by(|left, right| match (&left.index, &right.index) {
        (Some(left), Some(right)) => left.cmp(right),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let position_of = |index: &Vec<u32>| {
        entries
            .iter()
            .position(|entry| entry.index.as_ref() == Some(index))
    };

    let marker = entries.iter().position(|entry| entry.cause || entry.reason);
    let mut original = match marker {
        None => 0,
        Some(position) => {
            let entry = entries.get(position)?;
            if entry.reason {
                position
            } else {
                entry
                    .mp
                    .as_ref()
                    .and_then(position_of)
                    .unwrap_or(position.saturating_sub(1))
            }
        }
    };
    // Follow rc links back to the address of record, stopping before any entry seen already.
    let mut seen = vec![false; entries.len()];
    while let Some(flag) = seen.get_mut(original) {
        *flag = true;
        let next = entries
            .get(original)
            .and_then(|entry| entry.rc.as_ref())
            .and_then(position_of);
        match next {
            Some(next) if !seen.get(next).copied().unwrap_or(true) => original = next,
            _ => break,
        }
    }
    entries.get(original).map(|entry| entry.uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::wire::{self, Incoming};

    /// An INVITE with the given Request-URI and header lines (Via, Call-ID and CSeq added).
    fn invite(request_uri: &str, headers: &[&str]) -> Request {
        let mut text = format!(
            "INVITE {request_uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-test\r\n\
             Call-ID: test-call@192.0.2.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        );
        for header in headers {
            text.push_str(header);
            text.push_str("\r\n");
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        match wire::parse(text.as_bytes()) {
            Ok(Incoming::Message(message)) => match *message {
                rsip::SipMessage::Request(request) => request,
                rsip::SipMessage::Response(_) => panic!("not a request"),
            },
            other => panic!("{text}\ndid not parse: {other:?}"),
        }
    }

    fn number(text: &str) -> E164 {
        match E164::parse(text) {
            Ok(number) => number,
            Err(error) => panic!("{text}: {error}"),
        }
    }

    fn caller_number(text: &str) -> CallerId {
        CallerId::Number(number(text))
    }

    fn withheld(reason: WithheldReason) -> CallerId {
        CallerId::Withheld(reason)
    }

    struct Case {
        name: &'static str,
        request_uri: &'static str,
        headers: &'static [&'static str],
        caller: CallerId,
        caller_source: CallerSource,
        called: Option<&'static str>,
        called_source: CalledSource,
    }

    fn check(case: &Case) {
        let request = invite(case.request_uri, case.headers);
        let who = caller(&request);
        assert_eq!(who.id, case.caller, "{}: caller", case.name);
        assert_eq!(
            who.source, case.caller_source,
            "{}: caller source",
            case.name
        );
        let dialled = called(&request);
        assert_eq!(
            dialled.number,
            case.called.map(number),
            "{}: called ({})",
            case.name,
            dialled.uri
        );
        assert_eq!(
            dialled.source, case.called_source,
            "{}: called source",
            case.name
        );
    }

    /// Header sets modelled on what UK carriers and PBXs send (numbers from Ofcom's drama
    /// ranges).
    #[test]
    fn uk_carrier_header_sets() {
        use CalledSource as Cd;
        use CallerSource as Cr;
        let cases = [
            Case {
                name: "BT-style: PAI and From agree, Diversion from the business line",
                request_uri: "sip:+441134960999@192.0.2.10:5060;user=phone",
                headers: &[
                    "From: <sip:+447700900123@sip.bt.example;user=phone>;tag=bt-1",
                    "To: <sip:+441134960000@sip.bt.example;user=phone>",
                    "P-Asserted-Identity: <sip:+447700900123@sip.bt.example;user=phone>",
                    "Privacy: none",
                    "Diversion: <sip:+441134960000@sip.bt.example;user=phone>;reason=no-answer;\
                     counter=1;privacy=off",
                ],
                caller: caller_number("+447700900123"),
                caller_source: Cr::PAssertedIdentity,
                called: Some("+441134960000"),
                called_source: Cd::Diversion,
            },
            Case {
                name: "Gamma-style: PAI network number, From presentation number (0800)",
                request_uri: "sip:441134960999@198.51.100.20",
                headers: &[
                    "From: \"ACME LTD\" <sip:08001234567@gamma.example>;tag=g-1",
                    "To: <sip:441134960000@gamma.example>",
                    "P-Asserted-Identity: <sip:447700900456@gamma.example;user=phone>",
                    "Diversion: <sip:441134960000@gamma.example>;reason=unconditional",
                ],
                caller: caller_number("+447700900456"),
                caller_source: Cr::PAssertedIdentity,
                called: Some("+441134960000"),
                called_source: Cd::Diversion,
            },
            Case {
                name: "Gamma-style: PAI is the PBX's geographic number, From a mobile twin",
                request_uri: "sip:441134960999@198.51.100.20",
                headers: &[
                    "From: \"Dave Smith\" <sip:07700900789@gamma.example>;tag=g-2",
                    "To: <sip:441134960000@gamma.example>",
                    "P-Asserted-Identity: <sip:441614960000@gamma.example;user=phone>",
                ],
                caller: caller_number("+447700900789"),
                caller_source: Cr::From,
                called: Some("+441134960000"),
                called_source: Cd::To,
            },
            Case {
                name: "withheld: Privacy: id, anonymous From, real number in PAI",
                request_uri: "sip:+441134960999@192.0.2.10",
                headers: &[
                    "From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=w-1",
                    "To: <sip:+441134960000@carrier.example>",
                    "P-Asserted-Identity: <sip:+447700900123@carrier.example;user=phone>",
                    "Privacy: id",
                    "Diversion: <sip:+441134960000@carrier.example>;reason=user-busy",
                ],
                caller: withheld(WithheldReason::Anonymous),
                caller_source: Cr::Privacy,
                called: Some("+441134960000"),
                called_source: Cd::Diversion,
            },
            Case {
                name: "withheld without Privacy: anonymous From wins over PAI",
                request_uri: "sip:+441134960999@192.0.2.10",
                headers: &[
                    "From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=w-2",
                    "To: <sip:+441134960000@carrier.example>",
                    "P-Asserted-Identity: <tel:+447700900123>",
                ],
                caller: withheld(WithheldReason::Anonymous),
                caller_source: Cr::From,
                called: Some("+441134960000"),
                called_source: Cd::To,
            },
            Case {
                name: "Asterisk/FreePBX forward with History-Info",
                request_uri: "sip:textback@192.0.2.10:5060",
                headers: &[
                    "From: \"07700900123\" <sip:07700900123@pbx.example>;tag=as-1",
                    "To: <sip:07700900999@pbx.example>",
                    "History-Info: <sip:01134960000@pbx.example>;index=1",
                    "History-Info: <sip:07700900999@pbx.example;cause=302>;index=1.1",
                ],
                caller: caller_number("+447700900123"),
                caller_source: Cr::From,
                called: Some("+441134960000"),
                called_source: Cd::HistoryInfo,
            },
            Case {
                name: "several Diversion headers: the last is the original",
                request_uri: "sip:+447700900999@192.0.2.10",
                headers: &[
                    "From: <sip:+447700900123@carrier.example>;tag=d-1",
                    "To: <sip:+442079460018@carrier.example>",
                    "Diversion: <sip:+442079460999@carrier.example>;reason=no-answer;counter=1",
                    "Diversion: <sip:+442079460018@carrier.example>;reason=unconditional,\
                     <sip:+441134960000@carrier.example>;reason=user-busy;counter=1",
                ],
                caller: caller_number("+447700900123"),
                caller_source: Cr::From,
                called: Some("+441134960000"),
                called_source: Cd::Diversion,
            },
            Case {
                name: "Request-URI and To carry an account id: no called number",
                request_uri: "sip:acct-4471@192.0.2.10:5060",
                headers: &[
                    "From: <sip:+447700900123@provider.example>;tag=r-1",
                    "To: <sip:acct-4471@provider.example>",
                ],
                caller: caller_number("+447700900123"),
                caller_source: Cr::From,
                called: None,
                called_source: Cd::RequestUri,
            },
            Case {
                name: "Request-URI holds the number, To our account",
                request_uri: "sip:+441134960000@192.0.2.10;user=phone",
                headers: &[
                    "From: sip:07700900123@provider.example;tag=r-2",
                    "To: \"Textback\" <sip:textback@provider.example>",
                ],
                caller: caller_number("+447700900123"),
                caller_source: Cr::From,
                called: Some("+441134960000"),
                called_source: Cd::RequestUri,
            },
            Case {
                name: "two PAIs, sip geographic then tel mobile: the mobile wins",
                request_uri: "sip:+441134960000@192.0.2.10",
                headers: &[
                    "From: <sip:+441614960000@ims.example>;tag=p-1",
                    "To: <sip:+441134960000@ims.example>",
                    "P-Asserted-Identity: <sip:+441614960000@ims.example;user=phone>, \
                     <tel:+44-7700-900123>",
                ],
                caller: caller_number("+447700900123"),
                caller_source: Cr::PAssertedIdentity,
                called: Some("+441134960000"),
                called_source: Cd::To,
            },
            Case {
                name: "Remote-Party-ID from older kit, privacy=off",
                request_uri: "sip:01134960000@192.0.2.10",
                headers: &[
                    "From: \"Dave\" <sip:dave@pbx.example>;tag=rp-1",
                    "To: <sip:01134960000@pbx.example>",
                    "Remote-Party-ID: \"Dave\" <sip:07700900123@pbx.example>;party=calling;\
                     screen=no;privacy=off",
                ],
                caller: caller_number("+447700900123"),
                caller_source: Cr::RemotePartyId,
                called: Some("+441134960000"),
                called_source: Cd::To,
            },
            Case {
                name: "Remote-Party-ID privacy=full withholds",
                request_uri: "sip:01134960000@192.0.2.10",
                headers: &[
                    "From: \"Dave\" <sip:07700900123@pbx.example>;tag=rp-2",
                    "To: <sip:01134960000@pbx.example>",
                    "Remote-Party-ID: <sip:07700900123@pbx.example>;party=calling;privacy=full",
                ],
                caller: withheld(WithheldReason::Anonymous),
                caller_source: Cr::RemotePartyId,
                called: Some("+441134960000"),
                called_source: Cd::To,
            },
            Case {
                name: "non-diallable 08979 presentation number",
                request_uri: "sip:+441134960000@192.0.2.10",
                headers: &[
                    "From: <sip:+448979123456@carrier.example>;tag=n-1",
                    "To: <sip:+441134960000@carrier.example>",
                    "P-Asserted-Identity: <sip:+442079460018@carrier.example>",
                ],
                caller: withheld(WithheldReason::NonDiallable),
                caller_source: Cr::From,
                called: Some("+441134960000"),
                called_source: Cd::To,
            },
        ];
        for case in &cases {
            check(case);
        }
    }

    #[test]
    fn privacy_values() {
        for privacy in [
            "id",
            "ID",
            "user",
            "header",
            "header;id",
            "session; user",
            "id;critical",
        ] {
            let request = invite(
                "sip:+441134960000@192.0.2.10",
                &[
                    "From: <sip:+447700900123@a.example>;tag=1",
                    "To: <sip:+441134960000@a.example>",
                    &format!("Privacy: {privacy}"),
                ],
            );
            assert_eq!(
                caller(&request),
                Caller {
                    id: withheld(WithheldReason::Anonymous),
                    source: CallerSource::Privacy
                },
                "{privacy}"
            );
        }
        for privacy in ["none", "session", "critical"] {
            let request = invite(
                "sip:+441134960000@192.0.2.10",
                &[
                    "From: <sip:+447700900123@a.example>;tag=1",
                    "To: <sip:+441134960000@a.example>",
                    &format!("Privacy: {privacy}"),
                ],
            );
            assert_eq!(
                caller(&request).id,
                caller_number("+447700900123"),
                "{privacy}"
            );
        }
    }

    #[test]
    fn withheld_words_and_empty_users() {
        let cases = [
            (
                "<sip:anonymous@anonymous.invalid>",
                WithheldReason::Anonymous,
            ),
            ("<sip:Anonymous@carrier.example>", WithheldReason::Anonymous),
            (
                "<sip:restricted@carrier.example>",
                WithheldReason::Anonymous,
            ),
            (
                "<sip:unavailable@carrier.example>",
                WithheldReason::Anonymous,
            ),
            (
                "<sip:+447700900123@anonymous.invalid>",
                WithheldReason::Anonymous,
            ),
            ("<tel:anonymous>", WithheldReason::Anonymous),
            ("<sip:carrier.example>", WithheldReason::Empty),
            ("<sip:@carrier.example>", WithheldReason::Empty),
            (
                "<sip:08979123456@carrier.example>",
                WithheldReason::NonDiallable,
            ),
            (
                "<sip:reception@carrier.example>",
                WithheldReason::Unparseable,
            ),
            ("<mailto:dave@example.com>", WithheldReason::Unparseable),
        ];
        for (from, reason) in cases {
            let request = invite(
                "sip:+441134960000@192.0.2.10",
                &[
                    &format!("From: {from};tag=1"),
                    "To: <sip:+441134960000@a.example>",
                ],
            );
            let who = caller(&request);
            assert_eq!(who.id, withheld(reason), "{from}");
            assert_eq!(who.source, CallerSource::From, "{from}");
        }
    }

    #[test]
    fn uri_forms_all_read_the_same_number() {
        let forms = [
            "<sip:+447700900123@host.example>",
            "<sip:07700900123@host.example>",
            "<sip:447700900123@host.example;user=phone>",
            "<sips:+447700900123@host.example:5061;transport=tls>",
            "<tel:+447700900123>",
            "<tel:07700900123;phone-context=+44>",
            "<tel:+44-7700-900123>",
            "<tel:+44.7700.900.123;cpc=ordinary>",
            "\"Dave \\\"D\\\" Smith\" <sip:+447700900123@host.example>",
            "Dave Smith <sip:+447700900123@host.example>",
            "\"Smith, Dave <mobile>\" <sip:+447700900123@host.example>",
            "sip:+447700900123@host.example",
            "<sip:%2B447700900123@host.example>",
            "<tel:%2B447700900123>",
            "<sip:07700900123;phone-context=+44@host.example;user=phone>",
            "<sip:+44-7700-900123@host.example;user=phone>",
            "<SIP:+447700900123@HOST.EXAMPLE>",
        ];
        for form in forms {
            let request = invite(
                "sip:+441134960000@192.0.2.10",
                &[
                    &format!("From: {form};tag=x"),
                    &format!("To: {form}"),
                    &format!("P-Asserted-Identity: {form}"),
                ],
            );
            assert_eq!(
                caller(&request).id,
                caller_number("+447700900123"),
                "caller from {form}"
            );
            let dialled = called(&request);
            assert_eq!(dialled.number, Some(number("+447700900123")), "To {form}");
            assert_eq!(dialled.source, CalledSource::To, "{form}");
        }
    }

    #[test]
    fn caller_prefers_a_mobile_then_the_first_number() {
        let request = invite(
            "sip:+441134960000@192.0.2.10",
            &[
                "From: <sip:+442079460018@a.example>;tag=1",
                "To: <sip:+441134960000@a.example>",
                "P-Asserted-Identity: <sip:+441614960000@a.example>",
            ],
        );
        assert_eq!(
            caller(&request),
            Caller {
                id: caller_number("+441614960000"),
                source: CallerSource::PAssertedIdentity
            }
        );
        let request = invite(
            "sip:+441134960000@192.0.2.10",
            &[
                "From: <sip:dave@a.example>;tag=1",
                "To: <sip:+441134960000@a.example>",
                "P-Asserted-Identity: <sip:switchboard@a.example>",
            ],
        );
        assert_eq!(
            caller(&request),
            Caller {
                id: withheld(WithheldReason::Unparseable),
                source: CallerSource::PAssertedIdentity
            }
        );
    }

    #[test]
    fn remote_party_id_for_the_called_party_is_not_the_caller() {
        let request = invite(
            "sip:+441134960000@192.0.2.10",
            &[
                "From: <sip:+442079460018@a.example>;tag=1",
                "To: <sip:+441134960000@a.example>",
                "Remote-Party-ID: <sip:+447700900999@a.example>;party=called",
            ],
        );
        assert_eq!(
            caller(&request),
            Caller {
                id: caller_number("+442079460018"),
                source: CallerSource::From
            }
        );
    }

    fn history(values: &[&str]) -> Option<String> {
        history_info_original(values).map(str::to_string)
    }

    #[test]
    fn history_info_rules() {
        // Asterisk: index=1 is the original, 1.1 the forward target with cause.
        assert_eq!(
            history(&[
                "<sip:01134960000@pbx>;index=1",
                "<sip:07700900999@pbx;cause=302>;index=1.1",
            ]),
            Some("sip:01134960000@pbx".into())
        );
        // Out of order on the wire: sorted by index.
        assert_eq!(
            history(&[
                "<sip:07700900999@pbx;cause=302>;index=1.1",
                "<sip:01134960000@pbx>;index=1",
            ]),
            Some("sip:01134960000@pbx".into())
        );
        // RFC 7044 style: a contact (rc) that timed out, then voicemail (mp, cause): back to
        // the address of record.
        assert_eq!(
            history(&[
                "<sip:+441134960000@example.com;user=phone>;index=1",
                "<sip:+441134960000@192.0.2.3?Reason=SIP%3Bcause%3D408>;index=1.1;rc=1",
                "<sip:+447700900999@example.com;cause=408>;index=1.2;mp=1",
            ]),
            Some("sip:+441134960000@example.com;user=phone".into())
        );
        // 3GPP TS 24.604 style: Reason on the diverting entry, cause and mp on the target.
        assert_eq!(
            history(&[
                "<sip:+441134960000@ims.example;user=phone?Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%22>;index=1",
                "<sip:+447700900999@ims.example;user=phone;cause=486>;index=1.1;mp=1",
            ]),
            Some("sip:+441134960000@ims.example;user=phone?Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%22".into())
        );
        // A number translation (0800 → 0113, mp without cause) before the diversion: the
        // business line is the one diverted from.
        assert_eq!(
            history(&[
                "<sip:08001234567@carrier>;index=1",
                "<sip:01134960000@carrier>;index=1.1;mp=1",
                "<sip:07700900999@carrier;cause=408>;index=1.1.1;mp=1.1",
            ]),
            Some("sip:01134960000@carrier".into())
        );
        // No markers: the first entry.
        assert_eq!(
            history(&["<sip:a@x>;index=1", "<sip:b@x>;index=1.1"]),
            Some("sip:a@x".into())
        );
        // Flat indices without mp: the entry just before the cause.
        assert_eq!(
            history(&[
                "<sip:a@x>;index=1",
                "<sip:b@x>;index=2",
                "<sip:c@x;cause=480>;index=3"
            ]),
            Some("sip:b@x".into())
        );
        // An rc loop does not hang.
        assert_eq!(
            history(&["<sip:a@x>;index=1;rc=1.1", "<sip:b@x>;index=1.1;rc=1"]),
            Some("sip:b@x".into())
        );
        assert_eq!(history(&[]), None);
        assert_eq!(history(&["<sip:unclosed@x;index=1"]), None);
    }

    #[test]
    fn called_falls_through_headers_without_numbers() {
        let request = invite(
            "sip:textback@192.0.2.10",
            &[
                "From: <sip:+447700900123@a.example>;tag=1",
                "To: <sip:+441134960000@a.example>",
                "Diversion: <sip:reception@pbx.example>;reason=no-answer",
                "History-Info: <sip:anonymous@anonymous.invalid>;index=1",
            ],
        );
        let dialled = called(&request);
        assert_eq!(dialled.number, Some(number("+441134960000")));
        assert_eq!(dialled.source, CalledSource::To);
        assert_eq!(dialled.uri, "sip:+441134960000@a.example");
    }

    #[test]
    fn called_with_nothing_says_so() {
        let request = invite(
            "sip:acct-4471@192.0.2.10",
            &[
                "From: <sip:+447700900123@a.example>;tag=1",
                "To: <sip:acct-4471@a.example>",
            ],
        );
        assert_eq!(
            called(&request),
            Called {
                number: None,
                source: CalledSource::RequestUri,
                uri: "sip:acct-4471@192.0.2.10".into()
            }
        );
    }

    #[test]
    fn name_addr_forms() {
        assert_eq!(
            NameAddr::parse("\"A <b>, c\" <sip:x@y;lr>;tag=1;party=calling"),
            Some(NameAddr {
                uri: "sip:x@y;lr",
                params: ";tag=1;party=calling"
            })
        );
        assert_eq!(
            NameAddr::parse("sip:x@y;tag=1"),
            Some(NameAddr {
                uri: "sip:x@y",
                params: ";tag=1"
            })
        );
        assert_eq!(NameAddr::parse("\"unclosed <sip:x@y>"), None);
        assert_eq!(NameAddr::parse("<sip:x@y"), None);
        let address = NameAddr::parse("<sip:x@y>;privacy=\"full\";screen").expect("parses");
        assert_eq!(address.param("PRIVACY"), Some("full"));
        assert_eq!(address.param("screen"), Some(""));
        assert_eq!(address.param("party"), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%2B44"), "+44");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%2b"), "%zz+");
        assert_eq!(percent_decode("%C3%A9"), "%C3%A9");
    }

    const FUZZ_INVITE: &str = "INVITE sip:+441134960000@192.0.2.10;user=phone SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
        From: \"Dave \\\"D\\\"\" <sip:07700900123@a.example>;tag=1\r\n\
        To: <tel:+44-113-496-0000>\r\nCall-ID: f@a\r\nCSeq: 1 INVITE\r\n\
        P-Asserted-Identity: <sip:%2B447700900123@a;user=phone>, <tel:07700900123;phone-context=+44>\r\n\
        Remote-Party-ID: <sip:+447700900123@a>;party=calling;privacy=off\r\n\
        Privacy: none\r\n\
        Diversion: <sip:+441134960000@a>;reason=no-answer\r\n\
        History-Info: <sip:+441134960000@a?Reason=SIP%3Bcause%3D408>;index=1,<sip:b@a;cause=408>;index=1.1;mp=1;rc=1\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn fuzz_invite_reads() {
        let request = invite_from(FUZZ_INVITE.as_bytes()).expect("parses");
        assert_eq!(caller(&request).id, caller_number("+447700900123"));
        assert_eq!(called(&request).number, Some(number("+441134960000")));
    }

    fn invite_from(bytes: &[u8]) -> Option<Request> {
        match wire::parse(bytes) {
            Ok(Incoming::Message(message)) => match *message {
                rsip::SipMessage::Request(request) => Some(request),
                rsip::SipMessage::Response(_) => None,
            },
            _ => None,
        }
    }

    proptest::proptest! {
        #[test]
        fn identity_of_mutated_invites_never_panics(
            edits in proptest::collection::vec(
                (
                    proptest::prelude::any::<proptest::sample::Index>(),
                    proptest::sample::select(b":;,<>\"\\@ =?%+0a.-".to_vec()),
                ),
                1..8,
            )
        ) {
            let mut bytes = FUZZ_INVITE.as_bytes().to_vec();
            for (index, byte) in edits {
                let at = index.index(bytes.len());
                bytes[at] = byte;
            }
            if let Some(request) = invite_from(&bytes) {
                let _ = caller(&request);
                let _ = called(&request);
            }
        }

        #[test]
        fn identity_never_panics(value in "\\PC{0,80}") {
            let _ = caller_id(&value);
            let _ = number_from_uri(&value);
            let _ = HistoryEntry::parse(&value);
            let _ = history_info_original(&[value.as_str(), "<sip:a@b;cause=302>;index=1.1;mp=1;rc=1"]);
        }
    }
}
