//! Every default in one place, each with why it is what it is.

use std::path::PathBuf;

/// This box's name when `box.name` is not set: the system's host name, which already tells
/// boxes apart on a network (`None` when it cannot be read).
pub fn box_name() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?;
    let name = name.to_str()?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Where the installed package keeps its state: systemd's `StateDirectory=textback`.
pub fn database() -> PathBuf {
    PathBuf::from("/var/lib/textback/textback.db")
}

/// Transcripts are personal data: kept a year (long enough for a business's records and
/// disputes), then deleted.
pub const fn retention_days() -> u32 {
    365
}

/// The dashboard listens on loopback only until the installer opens it to the LAN.
pub fn dashboard_listen() -> String {
    "127.0.0.1:8080".to_string()
}

/// The stable name `udev/99-textback.rules` gives the first dongle's AT port.
pub fn modem_port() -> PathBuf {
    PathBuf::from("/dev/textback-modem")
}

/// Every USB dongle we know talks at this rate on its AT port (the rate is nominal over USB).
pub const fn baud() -> u32 {
    115_200
}

/// 0: never hang up, let the caller give up or the network divert them to voicemail.
pub const fn hangup_after_rings() -> u32 {
    0
}

/// Ask the network for delivery reports, so the dashboard can say a text arrived.
pub const fn status_reports() -> bool {
    true
}

/// Distinct numbers one SIM may text in any 24 hours. UK networks bar a SIM that texts more than
/// about 300 different numbers a day (EE); 250 stays safely under it. Shared across the pool: a
/// text over the cap goes from another SIM of the business, or waits.
pub const fn recipient_cap() -> u32 {
    250
}

/// How long a SIM the network refused (barred, not subscribed, no credit) waits before its queue
/// is tried again: a top-up or an unbarring fixes it without a restart, and a try an hour costs
/// nothing.
pub const fn refused_recheck_minutes() -> u32 {
    60
}

/// Minutes off the network (searching, denied) before the radio is switched off and on again
/// (AT+CFUN=0, then 1), which usually brings a SIM back (field notes); 0 never does.
pub const fn off_network_minutes() -> u32 {
    3
}

/// Hours between checks of a SIM's credit by USSD (`modem.balance_check_hours`): daily. A refusal
/// that may mean no credit checks it at once as well.
pub const fn balance_check_hours() -> u32 {
    24
}

/// Under this credit, in pounds, the business is told to top up the SIM (`modem.balance_low`).
pub const fn balance_low() -> f64 {
    2.0
}

/// When the daily self-test runs, UK time (`modem.self_test.at`): a quiet hour.
pub fn self_test_at() -> String {
    "04:00".to_string()
}

/// How long the self-test text has to come back (`modem.self_test.timeout_minutes`): UK networks
/// deliver in seconds; a text not back in 10 minutes is not arriving.
pub const fn self_test_timeout_minutes() -> u32 {
    10
}

/// How long the network may take to answer a USSD code (not a config key): TS 27.007 leaves it
/// open; UK networks answer balance codes in 2 to 10 s.
pub const USSD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A transcript link in a lead summary works this long: long enough to open it days later
/// from the email, short enough that an old forwarded email stops exposing the transcript.
pub const fn link_valid_days() -> u32 {
    30
}

/// A lead that cannot be delivered for two days is news nobody can act on any more; the
/// dashboard and `textback leads list` show it as failed.
pub const fn give_up_after_hours() -> u32 {
    48
}

/// A caller who texts again after their lead went out usually adds something the business
/// needs ("can you come after 3?"): the lead's recipients are told, as they were of the lead.
pub const fn late_replies() -> bool {
    true
}

/// Submission with STARTTLS (RFC 6409).
pub const fn smtp_port() -> u16 {
    587
}

pub fn smtp_security() -> String {
    "starttls".to_string()
}

/// The WhatsApp Business Cloud API (Meta's Graph API).
pub fn whatsapp_base_url() -> String {
    "https://graph.facebook.com".to_string()
}

pub fn whatsapp_api_version() -> String {
    "v21.0".to_string()
}

pub fn whatsapp_language() -> String {
    "en_GB".to_string()
}

/// An HTTP notifier that has not answered in this long is treated as down, and tried later.
pub const fn http_timeout_seconds() -> u32 {
    10
}

/// A call-back notice waits this long for more untexted calls before it goes (`"5m"`), so that
/// a burst of calls reaches the owner as one message rather than several.
pub fn call_back_gather() -> String {
    "5m".to_string()
}

/// The longest `profile.recipient.call_back_gather`: an hour, past which a call back is late.
pub const MAX_CALL_BACK_GATHER_SECONDS: u64 = 60 * 60;

/// Another missed call from the same number within this many hours joins its conversation
/// instead of starting a new one.
pub const fn cooldown_hours() -> u32 {
    24
}

/// First texts a box sends per hour and per day at most: far above a small business's missed
/// calls, far below what a flood of spoofed calls would cost.
pub const fn box_texts_per_hour() -> u32 {
    30
}

pub const fn box_texts_per_day() -> u32 {
    200
}

pub fn text_kinds() -> Vec<String> {
    vec!["uk_mobile".to_string()]
}

/// SIP's registered port (RFC 3261 §19.1.2).
pub const fn sip_port() -> u16 {
    5060
}

/// Every IPv4 and IPv6 address of the box: the trunk may reach it on either. `::` is bound
/// IPv6-only beside `0.0.0.0`; a box without IPv6 skips it with a warning.
pub fn sip_listen() -> Vec<String> {
    vec!["0.0.0.0".to_string(), "::".to_string()]
}

/// Most trunks and PBXs need a registration to know where to send calls; a trunk that sends
/// to a fixed address (IP authentication) sets `register = false`.
pub const fn sip_register() -> bool {
    true
}

/// Five minutes: short enough that a registrar that restarted finds us again soon, long
/// enough to stay far below any registrar's rate limits. RFC 3261 §10.2.1 suggests 3600;
/// NAT bindings rarely last that long.
pub const fn sip_expires() -> u32 {
    300
}

/// UDP: what every registrar takes, and what textback always did. TCP suits trunks that
/// want it or a NAT that forgets UDP bindings quickly.
pub fn sip_transport() -> String {
    "udp".to_string()
}

/// CRLF pings (RFC 5626 §4.4.1) keep a NAT binding open at the cost of 4 bytes.
pub fn sip_keepalive() -> String {
    "crlf".to_string()
}

/// 25 s: below the 30 s many home routers keep an idle UDP binding.
pub const fn sip_keepalive_seconds() -> u32 {
    25
}

/// A caller who has rung this long has given up in all but name, and networks divert to
/// voicemail after 20-30 s; the call is then ended with `final_response` and texted.
pub const fn sip_max_ring_seconds() -> u32 {
    30
}

/// 480 Temporarily Unavailable: "no answer", which most PBXs pass on as such (486 says busy,
/// 603 says declined).
pub const fn sip_final_response() -> u16 {
    480
}

/// Requests of any kind one address may send a second: high enough for the load benchmark's
/// 1000 calls a second from one trunk, so by default only a runaway flood is cut.
pub const fn sip_max_requests_per_second() -> u32 {
    crate::domain::DEFAULT_REQUESTS_PER_SECOND
}

/// New calls (INVITEs) one address may start a second: twice the load benchmark's highest
/// rate. A small business's trunk never comes near it; set it lower to cap a flood sooner.
pub const fn sip_max_invites_per_second() -> u32 {
    crate::domain::DEFAULT_INVITES_PER_SECOND
}

/// Calls ringing at once, from every source together: a small business rarely has more
/// than a few dozen missed at the same moment, and 100 ringing calls hold well under a
/// megabyte, so a flood from an allowed source (or a spoofed one) cannot grow the daemon on
/// a Raspberry Pi. Beyond it a new call gets 503 with Retry-After, and the trunk tries
/// elsewhere.
pub const fn sip_max_ringing_calls() -> u32 {
    100
}

/// The first text: a service message that says who we are, owns the missed call, asks the
/// first question and says how to stop. Fits one GSM-7 SMS with a short business name.
pub fn first_message() -> String {
    "Hi, it's {business}. Sorry we missed your call at {time}. {question} (Reply STOP to opt out)"
        .to_string()
}

/// The last text, once every question is answered.
pub fn closing_message() -> String {
    "Thanks, that's everything we need. {business} will call you back as soon as possible."
        .to_string()
}

/// The confirmation of a STOP: one text, then silence (Ofcom and the ICO expect the opt-out
/// to be honoured at once).
pub fn opt_out_message() -> String {
    "You won't get any more texts from {business}. Reply START if you change your mind.".to_string()
}

/// The answer to START after a STOP.
pub fn opt_in_message() -> String {
    "Thanks, texts from {business} are back on.".to_string()
}

/// Asked when a profile lists no questions of its own: who is calling, and why.
pub fn questions() -> Vec<(&'static str, &'static str)> {
    vec![
        ("name", "Who am I speaking to?"),
        ("reason", "What can we help you with?"),
    ]
}
