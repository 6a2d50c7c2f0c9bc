//! Checks of the `[[sip]]` keys that only the SIP endpoint uses; the config's validation calls
//! these so that each problem is reported with its key path beside the config's other problems.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::{SipAccount, SipKeepAlive, SipTransport};
use crate::domain::{Cidr, FinalResponse};

/// The raw values of one account that are checked here.
pub struct RawAccountView<'a> {
    pub listen: &'a [String],
    pub transport: &'a str,
    pub outbound_proxy: Option<&'a str>,
    pub contact_user: Option<&'a str>,
    pub expires: u32,
    pub keepalive: &'a str,
    pub keepalive_seconds: u32,
    pub allow: &'a [String],
    pub max_ring_seconds: u32,
    pub final_response: u16,
    pub max_requests_per_second: u32,
    pub max_invites_per_second: u32,
    pub max_ringing_calls: u32,
}

/// The checked values, and every problem as (key path, message).
pub struct Checked {
    pub listen: Vec<IpAddr>,
    pub transport: SipTransport,
    pub keepalive: SipKeepAlive,
    pub allow: Vec<Cidr>,
    pub final_response: FinalResponse,
    pub errors: Vec<(String, String)>,
}

/// Shortest registration a registrar is asked for: RFC 3261 §10.2.8 lets registrars refuse less
/// than an hour, and in practice they accept one minute.
const MIN_EXPIRES: u32 = 60;
/// Longest: a day, so a lost binding is found again within one.
const MAX_EXPIRES: u32 = 86_400;
/// A call may ring at most ten minutes before it is ended and texted.
const MAX_RING_SECONDS: u32 = 600;
/// The highest per-source rate that can be set: far above what one core can parse.
const MAX_RATE: u32 = 1_000_000;
/// The most calls that may be set to ring at once: the transaction table's size.
const MAX_RINGING: u32 = 40_000;

/// Checks one account's SIP keys; `path` makes the key path (`sip[0].listen`).
pub fn check_account(raw: RawAccountView<'_>, path: &dyn Fn(&str) -> String) -> Checked {
    let mut errors = Vec::new();
    let mut listen = Vec::new();
    if raw.listen.is_empty() {
        errors.push((
            path("listen"),
            "is empty: list the local addresses to listen on, e.g. [\"0.0.0.0\", \"::\"]"
                .to_string(),
        ));
    }
    for (i, text) in raw.listen.iter().enumerate() {
        match text.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(address) => listen.push(address),
            Err(_) => errors.push((
                format!("{}[{i}]", path("listen")),
                format!("{text:?} is not an IP address (e.g. \"0.0.0.0\", \"::\", \"192.168.1.20\"); the port is local_port"),
            )),
        }
    }
    if let Some(proxy) = raw.outbound_proxy
        && (proxy.trim().is_empty() || proxy.contains("://") || proxy.contains(' '))
    {
        errors.push((
            path("outbound_proxy"),
            format!("{proxy:?} should be a host name or address, with an optional :port (e.g. \"proxy.example.net:5060\")"),
        ));
    }
    if let Some(user) = raw.contact_user
        && (user.is_empty()
            || !user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c)))
    {
        errors.push((
            path("contact_user"),
            format!("{user:?} is not a SIP user name: use letters, digits and - _ . only (or leave it out for an unguessable one)"),
        ));
    }
    if !(MIN_EXPIRES..=MAX_EXPIRES).contains(&raw.expires) {
        errors.push((
            path("expires"),
            format!(
                "{} seconds is outside {MIN_EXPIRES}..={MAX_EXPIRES}; 300 suits most registrars",
                raw.expires
            ),
        ));
    }
    let transport = match raw.transport {
        "udp" => SipTransport::Udp,
        "tcp" => SipTransport::Tcp,
        other => {
            errors.push((
                path("transport"),
                format!("{other:?} is not one of \"udp\", \"tcp\" (TLS is not supported yet)"),
            ));
            SipTransport::Udp
        }
    };
    let keepalive = match raw.keepalive {
        "crlf" => SipKeepAlive::Crlf,
        "options" => SipKeepAlive::Options,
        "off" => SipKeepAlive::Off,
        other => {
            errors.push((
                path("keepalive"),
                format!("{other:?} is not one of \"crlf\", \"options\", \"off\""),
            ));
            SipKeepAlive::Crlf
        }
    };
    if !(1..=3600).contains(&raw.keepalive_seconds) {
        errors.push((
            path("keepalive_seconds"),
            format!(
                "{} is outside 1..=3600 seconds; 25 keeps most NAT bindings open",
                raw.keepalive_seconds
            ),
        ));
    }
    let mut allow = Vec::new();
    for (i, text) in raw.allow.iter().enumerate() {
        match text.parse::<Cidr>() {
            Ok(range) => allow.push(range),
            Err(err) => errors.push((format!("{}[{i}]", path("allow")), err.to_string())),
        }
    }
    if !(1..=MAX_RING_SECONDS).contains(&raw.max_ring_seconds) {
        errors.push((
            path("max_ring_seconds"),
            format!(
                "{} is outside 1..={MAX_RING_SECONDS} seconds",
                raw.max_ring_seconds
            ),
        ));
    }
    for (key, rate) in [
        ("max_requests_per_second", raw.max_requests_per_second),
        ("max_invites_per_second", raw.max_invites_per_second),
    ] {
        if rate > MAX_RATE {
            errors.push((
                path(key),
                format!("{rate} is above {MAX_RATE}; use 0 for no limit"),
            ));
        }
    }
    if raw.max_requests_per_second != 0 && raw.max_invites_per_second > raw.max_requests_per_second
    {
        errors.push((
            path("max_requests_per_second"),
            format!(
                "{} is below max_invites_per_second ({}): every INVITE is a request too, and a call takes three or four (INVITE, CANCEL, ACK); allow at least {}, or 0 for no limit",
                raw.max_requests_per_second,
                raw.max_invites_per_second,
                raw.max_invites_per_second.saturating_mul(4)
            ),
        ));
    }
    if !(1..=MAX_RINGING).contains(&raw.max_ringing_calls) {
        errors.push((
            path("max_ringing_calls"),
            format!(
                "{} is outside 1..={MAX_RINGING}; 100 is plenty for a small business (each ringing call holds a few kilobytes)",
                raw.max_ringing_calls
            ),
        ));
    }
    let final_response = match raw.final_response {
        480 => FinalResponse::TemporarilyUnavailable,
        486 => FinalResponse::BusyHere,
        603 => FinalResponse::Decline,
        other => {
            errors.push((
                path("final_response"),
                format!("{other} is not one of 480 (no answer), 486 (busy) or 603 (declined)"),
            ));
            FinalResponse::TemporarilyUnavailable
        }
    };
    Checked {
        listen,
        transport,
        keepalive,
        allow,
        final_response,
        errors,
    }
}

/// Accounts that share a local port share its sockets and per-source limits, so they must listen
/// on the same addresses with the same limits; and contact users must differ, since they tell
/// the accounts' calls apart.
pub fn check_ports(accounts: &[SipAccount]) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut by_port: HashMap<u16, usize> = HashMap::new();
    for (i, account) in accounts.iter().enumerate() {
        match by_port.get(&account.local_port) {
            Some(&first) if accounts[first].listen != account.listen => errors.push((
                format!("sip[{i}].listen"),
                format!(
                    "differs from sip[{first}].listen, which uses the same local_port {}: give both the same listen list, or another local_port",
                    account.local_port
                ),
            )),
            Some(_) => {}
            None => {
                by_port.insert(account.local_port, i);
            }
        }
        if let Some(&first) = by_port.get(&account.local_port) {
            let other = &accounts[first];
            for (key, mine, theirs) in [
                (
                    "max_requests_per_second",
                    account.max_requests_per_second,
                    other.max_requests_per_second,
                ),
                (
                    "max_invites_per_second",
                    account.max_invites_per_second,
                    other.max_invites_per_second,
                ),
                (
                    "max_ringing_calls",
                    u32::try_from(account.max_ringing_calls).unwrap_or(u32::MAX),
                    u32::try_from(other.max_ringing_calls).unwrap_or(u32::MAX),
                ),
            ] {
                if mine != theirs {
                    errors.push((
                        format!("sip[{i}].{key}"),
                        format!(
                            "{mine} differs from sip[{first}].{key} ({theirs}), which uses the same local_port {}: the limits of a port are shared by its accounts, so give both the same value",
                            account.local_port
                        ),
                    ));
                }
            }
        }
        if let Some(first) = accounts[..i]
            .iter()
            .position(|other| other.contact_user == account.contact_user)
        {
            errors.push((
                format!("sip[{i}].contact_user"),
                format!(
                    "{:?} is already sip[{first}]'s contact user",
                    account.contact_user
                ),
            ));
        }
    }
    errors
}
