//! The config file: TOML read into raw serde types, then validated into [`Config`], with every
//! problem reported at once under the key path where it is.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::codec::pdu;
use crate::core::template::Template;
use crate::domain::{E164, ModemId, ProfileId, QuestionId, Secret};

/// Every default in one place, each with why it is what it is.
pub mod defaults {
    use std::path::PathBuf;

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
        crate::sip::guard::DEFAULT_REQUESTS_PER_SECOND
    }

    /// New calls (INVITEs) one address may start a second: twice the load benchmark's highest
    /// rate. A small business's trunk never comes near it; set it lower to cap a flood sooner.
    pub const fn sip_max_invites_per_second() -> u32 {
        crate::sip::guard::DEFAULT_INVITES_PER_SECOND
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
        "You won't get any more texts from {business}. Reply START if you change your mind."
            .to_string()
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
}

/// The longest a profile's question list may be: name, callback number, reason and ten of the
/// business's own.
pub const MAX_QUESTIONS: usize = 13;

// ---------------------------------------------------------------------------------------------
// Raw: what serde reads. Unknown keys are errors everywhere.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    dashboard: RawDashboard,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default, rename = "modem")]
    modems: Vec<RawModem>,
    #[serde(default, rename = "sip")]
    sip_accounts: Vec<RawSipAccount>,
    #[serde(default, rename = "profile")]
    profiles: Vec<RawProfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    #[serde(default = "defaults::database")]
    database: PathBuf,
    #[serde(default = "defaults::retention_days")]
    retention_days: u32,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            database: defaults::database(),
            retention_days: defaults::retention_days(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDashboard {
    #[serde(default = "defaults::dashboard_listen")]
    listen: String,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    trusted_proxy: Option<String>,
}

impl Default for RawDashboard {
    fn default() -> Self {
        Self {
            listen: defaults::dashboard_listen(),
            public_url: None,
            trusted_proxy: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default = "defaults::box_texts_per_hour")]
    texts_per_hour: u32,
    #[serde(default = "defaults::box_texts_per_day")]
    texts_per_day: u32,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            texts_per_hour: defaults::box_texts_per_hour(),
            texts_per_day: defaults::box_texts_per_day(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    #[serde(default = "defaults::link_valid_days")]
    link_valid_days: u32,
    #[serde(default = "defaults::give_up_after_hours")]
    give_up_after_hours: u32,
    #[serde(default = "defaults::late_replies")]
    late_replies: bool,
    #[serde(default)]
    email: Option<RawEmail>,
    #[serde(default)]
    whatsapp: Option<RawWhatsApp>,
    #[serde(default)]
    webhook: RawWebhook,
}

impl Default for RawNotify {
    fn default() -> Self {
        Self {
            link_valid_days: defaults::link_valid_days(),
            give_up_after_hours: defaults::give_up_after_hours(),
            late_replies: defaults::late_replies(),
            email: None,
            whatsapp: None,
            webhook: RawWebhook::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    host: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default = "defaults::smtp_security")]
    security: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    from: String,
    /// A PEM file of certificate authorities to trust besides the built-in ones (a relay on the
    /// LAN with its own certificate).
    #[serde(default)]
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhatsApp {
    phone_number_id: String,
    token: String,
    #[serde(default)]
    template: Option<String>,
    #[serde(default = "defaults::whatsapp_language")]
    language: String,
    #[serde(default = "defaults::whatsapp_base_url")]
    base_url: String,
    #[serde(default = "defaults::whatsapp_api_version")]
    api_version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    #[serde(default)]
    secret: Option<String>,
    #[serde(default = "defaults::http_timeout_seconds")]
    timeout_seconds: u32,
}

impl Default for RawWebhook {
    fn default() -> Self {
        Self {
            secret: None,
            timeout_seconds: defaults::http_timeout_seconds(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModem {
    id: String,
    #[serde(default = "defaults::modem_port")]
    port: PathBuf,
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    smsc: Option<String>,
    #[serde(default = "defaults::baud")]
    baud: u32,
    #[serde(default = "defaults::hangup_after_rings")]
    hangup_after_rings: u32,
    #[serde(default = "defaults::status_reports")]
    status_reports: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSipAccount {
    name: String,
    registrar: String,
    username: String,
    password: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default = "defaults::sip_port")]
    local_port: u16,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default = "defaults::sip_listen")]
    listen: Vec<String>,
    #[serde(default = "defaults::sip_register")]
    register: bool,
    #[serde(default = "defaults::sip_transport")]
    transport: String,
    #[serde(default)]
    outbound_proxy: Option<String>,
    #[serde(default)]
    auth_username: Option<String>,
    #[serde(default)]
    contact_user: Option<String>,
    #[serde(default = "defaults::sip_expires")]
    expires: u32,
    #[serde(default = "defaults::sip_keepalive")]
    keepalive: String,
    #[serde(default = "defaults::sip_keepalive_seconds")]
    keepalive_seconds: u32,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default = "defaults::sip_max_ring_seconds")]
    max_ring_seconds: u32,
    #[serde(default = "defaults::sip_final_response")]
    final_response: u16,
    #[serde(default = "defaults::sip_max_requests_per_second")]
    max_requests_per_second: u32,
    #[serde(default = "defaults::sip_max_invites_per_second")]
    max_invites_per_second: u32,
    #[serde(default = "defaults::sip_max_ringing_calls")]
    max_ringing_calls: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    id: String,
    name: String,
    #[serde(default)]
    numbers: Vec<String>,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    modem: Option<String>,
    #[serde(default = "defaults::first_message")]
    first_message: String,
    #[serde(default = "defaults::closing_message")]
    closing_message: String,
    #[serde(default = "defaults::opt_out_message")]
    opt_out_message: String,
    #[serde(default = "defaults::opt_in_message")]
    opt_in_message: String,
    #[serde(default = "defaults::text_kinds")]
    text_kinds: Vec<String>,
    #[serde(default)]
    allow_numbers: Vec<String>,
    #[serde(default)]
    staff_numbers: Vec<String>,
    #[serde(default = "defaults::cooldown_hours")]
    cooldown_hours: u32,
    /// Seconds to hold the first text, for a business that wants to call back first.
    #[serde(default)]
    first_text_delay_seconds: u32,
    /// The optional local model that reads replies.
    #[serde(default)]
    llm: Option<crate::llm::client::LlmConfig>,
    #[serde(default)]
    texts_per_hour: Option<u32>,
    #[serde(default)]
    texts_per_day: Option<u32>,
    /// How to reach the business, for HELP.
    #[serde(default)]
    contact: Option<String>,
    #[serde(default)]
    hours: Option<RawHours>,
    #[serde(default)]
    out_of_hours_message: Option<String>,
    #[serde(default)]
    max_questions_per_message: Option<usize>,
    #[serde(default)]
    max_turns: Option<u32>,
    #[serde(default)]
    silence_minutes: Option<u32>,
    #[serde(default, rename = "answer")]
    answers: Vec<RawCanned>,
    #[serde(default, rename = "question")]
    questions: Option<Vec<RawQuestion>>,
    #[serde(default, rename = "recipient")]
    recipients: Vec<RawRecipient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    id: String,
    ask: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default = "default_true")]
    required: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHours {
    #[serde(default)]
    monday: Option<String>,
    #[serde(default)]
    tuesday: Option<String>,
    #[serde(default)]
    wednesday: Option<String>,
    #[serde(default)]
    thursday: Option<String>,
    #[serde(default)]
    friday: Option<String>,
    #[serde(default)]
    saturday: Option<String>,
    #[serde(default)]
    sunday: Option<String>,
    #[serde(default)]
    holidays: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCanned {
    keywords: Vec<String>,
    answer: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    sms: Option<String>,
    #[serde(default)]
    whatsapp: Option<String>,
    #[serde(default)]
    webhook: Option<String>,
    #[serde(default)]
    when: Option<RawRoute>,
    /// `false`: not told of replies after the lead, whatever `notify.late_replies` says.
    #[serde(default)]
    late_replies: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    question: String,
    contains: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Validated: what the rest of the program sees.

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub storage: Storage,
    pub dashboard: Dashboard,
    pub notify: Notify,
    pub modems: Vec<ModemConfig>,
    pub sip_accounts: Vec<SipAccount>,
    pub profiles: Vec<Profile>,
    /// The profile for calls whose called number matches no profile.
    pub default_profile: ProfileId,
}

#[derive(Debug, Clone)]
pub struct Storage {
    pub database: PathBuf,
    /// Calls, transcripts and leads older than this are deleted (opt-outs are kept).
    pub retention: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub listen: SocketAddr,
    /// How people reach the dashboard, for links in lead summaries.
    pub public_url: String,
    /// The reverse proxy in front of the dashboard, if any: only its X-Forwarded-For is believed
    /// (the client it names is the address login limits apply to); anyone else's is ignored.
    pub trusted_proxy: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone)]
pub struct ModemConfig {
    pub id: ModemId,
    pub port: PathBuf,
    pub pin: Option<Secret>,
    /// The profile that calls ringing this SIM belong to.
    pub profile: Option<ProfileId>,
    /// The service centre to set when the SIM has none.
    pub smsc: Option<E164>,
    pub baud: u32,
    pub hangup_after_rings: u32,
    pub status_reports: bool,
}

impl ModemConfig {
    /// A modem given only by its port, for the technician's commands (`--port`).
    pub fn for_port(port: PathBuf) -> ModemConfig {
        ModemConfig {
            // "cli" is a valid id: lower-case letters.
            id: ModemId::parse("cli").unwrap_or_else(|_| unreachable!("\"cli\" is a valid id")),
            port,
            pin: None,
            profile: None,
            smsc: None,
            baud: defaults::baud(),
            hangup_after_rings: defaults::hangup_after_rings(),
            status_reports: defaults::status_reports(),
        }
    }
}

fn account_view(account: &RawSipAccount) -> crate::sip::config::RawAccountView<'_> {
    crate::sip::config::RawAccountView {
        listen: &account.listen,
        transport: &account.transport,
        outbound_proxy: account.outbound_proxy.as_deref(),
        contact_user: account.contact_user.as_deref(),
        expires: account.expires,
        keepalive: &account.keepalive,
        keepalive_seconds: account.keepalive_seconds,
        allow: &account.allow,
        max_ring_seconds: account.max_ring_seconds,
        final_response: account.final_response,
        max_requests_per_second: account.max_requests_per_second,
        max_invites_per_second: account.max_invites_per_second,
        max_ringing_calls: account.max_ringing_calls,
    }
}

#[derive(Debug, Clone)]
pub struct SipAccount {
    pub name: String,
    /// Host name or address, with an optional `:port`.
    pub registrar: String,
    pub username: String,
    pub password: Secret,
    pub domain: Option<String>,
    pub local_port: u16,
    pub profile: Option<ProfileId>,
    /// Local addresses the endpoint listens on (UDP and TCP), each with `local_port`.
    pub listen: Vec<std::net::IpAddr>,
    /// Whether to REGISTER; `false` for a trunk that sends calls to a fixed address.
    pub register: bool,
    /// How to reach the registrar: over UDP, or over one TCP connection kept open (and opened
    /// again when lost) that the registrar also sends calls on.
    pub transport: SipTransport,
    /// Host name or address, with an optional `:port`, that requests go through.
    pub outbound_proxy: Option<String>,
    /// Digest user name when it differs from `username`.
    pub auth_username: Option<String>,
    /// The user part of our Contact: INVITEs must be addressed to it. Defaults to a value derived
    /// from the account's password, so a scanner cannot guess it (see [`sip_contact_user`]).
    pub contact_user: String,
    pub expires: u32,
    pub keepalive: SipKeepAlive,
    pub keepalive_interval: std::time::Duration,
    /// Sources whose INVITEs are accepted besides the registrar's and the proxy's addresses.
    pub allow: Vec<crate::sip::cidr::Cidr>,
    pub max_ring: std::time::Duration,
    pub final_response: crate::sip::endpoint::FinalResponse,
    /// Requests of any kind one source address may send a second (0: no limit); beyond it they
    /// are dropped. Shared by the accounts on one local port.
    pub max_requests_per_second: u32,
    /// New INVITEs one source address may send a second (0: no limit); beyond it they get 503.
    pub max_invites_per_second: u32,
    /// Calls ringing at once on the account's local port, from all sources; beyond it a new
    /// call gets 503 with Retry-After.
    pub max_ringing_calls: usize,
}

/// The transport an account registers over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
}

/// How a registered account keeps its NAT binding open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipKeepAlive {
    Crlf,
    Options,
    Off,
}

/// The default contact user of an account: "tb" and 16 hex digits of a hash of the account's
/// name, user name and password. Stable across restarts, different on every box with its own
/// password, and not guessable by a scanner that walks common extension numbers.
pub fn sip_contact_user(name: &str, username: &str, password: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(format!("textback-contact\0{name}\0{username}\0{password}"));
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("tb{hex}")
}

/// One business the box texts for.
#[derive(Debug, Clone)]
pub struct Profile {
    pub id: ProfileId,
    /// The business's name as callers know it, used in every text.
    pub name: String,
    /// The business's own numbers: a diverted call to one of them belongs to this profile.
    pub numbers: Vec<E164>,
    /// Send from this modem only.
    pub modem: Option<ModemId>,
    pub first_message: Template,
    pub closing_message: Template,
    pub opt_out_message: Template,
    pub opt_in_message: Template,
    pub questions: Vec<Question>,
    pub recipients: Vec<Recipient>,
    /// Who gets texted, and how many first texts at most (the box's caps included).
    pub rules: crate::core::policy::Rules,
    /// Another call within this long joins the caller's conversation.
    pub cooldown: std::time::Duration,
    /// What the conversation engine needs of this business.
    pub dialogue: crate::core::conversation::DialogueProfile,
    /// Opening hours in UK time; without them the business is always "open".
    pub hours: Option<crate::core::hours::Hours>,
    /// The first text outside the hours; {callback} is the promise ("by 9am tomorrow").
    pub out_of_hours_message: Option<Template>,
    /// How long the first text is held (zero: sent at once).
    pub first_text_delay: std::time::Duration,
    /// The local model that reads replies, checked; `None`: the built-in engine alone.
    pub llm: Option<crate::llm::client::LlmSettings>,
}

/// The longest `profile.first_text_delay_seconds`: 30 minutes.
pub const MAX_FIRST_TEXT_DELAY_SECONDS: u32 = 30 * 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: QuestionId,
    pub ask: String,
    pub kind: crate::core::conversation::QuestionKind,
    pub required: bool,
}

/// How leads reach their recipients.
#[derive(Debug, Clone)]
pub struct Notify {
    /// How long a transcript link in a summary works.
    pub link_valid: std::time::Duration,
    /// When to stop retrying a delivery.
    pub give_up_after: std::time::Duration,
    /// Whether a caller's text after their lead went out is told to the lead's recipients.
    pub late_replies: bool,
    pub email: Option<EmailSettings>,
    pub whatsapp: Option<WhatsAppSettings>,
    pub webhook: WebhookSettings,
}

/// The SMTP server lead emails go through.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub security: EmailSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `Name <address>` or a bare address.
    pub from: String,
    /// Certificate authorities trusted besides the built-in ones.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailSecurity {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only for a relay on the box or the LAN (port 25).
    None,
}

/// The WhatsApp Business Cloud API account leads are sent from.
#[derive(Debug, Clone)]
pub struct WhatsAppSettings {
    pub base_url: String,
    pub api_version: String,
    pub phone_number_id: String,
    pub token: Secret,
    /// An approved message template. Without one, leads go as free text, which WhatsApp delivers
    /// only within 24 hours of the recipient's last message to the business number.
    pub template: Option<String>,
    pub language: String,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The HMAC-SHA256 key the signature header is made with.
    pub secret: Option<Secret>,
    pub timeout: std::time::Duration,
}

/// Someone who receives this profile's leads, and how.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub name: String,
    pub channels: Vec<Channel>,
    /// Only leads whose answer matches, e.g. the heating team gets the boiler jobs.
    pub when: Option<Route>,
    /// Told of the caller's texts after the lead went out: `notify.late_replies`, unless the
    /// recipient opted out with `late_replies = false`.
    pub late_replies: bool,
}

/// A department's share of the leads: those whose answer to `question` contains one of the
/// words (case does not matter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub question: QuestionId,
    pub contains: Vec<String>,
}

impl Route {
    /// Whether a lead with these answers goes to the recipient.
    pub fn matches(&self, answers: &[(String, String)]) -> bool {
        answers
            .iter()
            .filter(|(question, _)| question.as_str() == self.question.as_str())
            .any(|(_, answer)| {
                let answer = answer.to_lowercase();
                self.contains
                    .iter()
                    .any(|word| answer.contains(&word.to_lowercase()))
            })
    }
}

impl Recipient {
    /// Whether this recipient is told of a lead with these answers.
    pub fn wants(&self, answers: &[(String, String)]) -> bool {
        self.when
            .as_ref()
            .is_none_or(|route| route.matches(answers))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    Email(String),
    Sms(E164),
    WhatsApp(E164),
    Webhook(String),
}

impl Channel {
    /// The channel's name in the store and the CLI.
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Email(_) => "email",
            Channel::Sms(_) => "sms",
            Channel::WhatsApp(_) => "whatsapp",
            Channel::Webhook(_) => "webhook",
        }
    }

    /// Where this channel delivers to (an address, a number or a URL).
    pub fn target(&self) -> String {
        match self {
            Channel::Email(address) => address.clone(),
            Channel::Sms(number) | Channel::WhatsApp(number) => number.to_string(),
            Channel::Webhook(url) => url.clone(),
        }
    }
}

/// Fields a first message may use.
pub const FIRST_MESSAGE_FIELDS: &[&str] = &["business", "time", "day", "question"];
/// The first text outside business hours can also promise when the business will call back.
pub const OUT_OF_HOURS_FIELDS: &[&str] = &["business", "time", "day", "question", "callback"];
/// Said when hours are set but no out_of_hours_message: the promise is computed from the hours.
pub const DEFAULT_OUT_OF_HOURS_MESSAGE: &str = "Hi, it's {business}, sorry we missed your call. We'll call you back {callback}. {question} (Reply STOP to opt out)";
/// Fields the opt-out and opt-in confirmations may use.
pub const BUSINESS_ONLY_FIELDS: &[&str] = &["business"];

impl Config {
    pub fn profile(&self, id: &ProfileId) -> Option<&Profile> {
        self.profiles.iter().find(|profile| &profile.id == id)
    }

    /// The profile a call to `called` belongs to: the one listing that number, else the default.
    pub fn profile_for_number(&self, called: Option<&E164>) -> &Profile {
        called
            .and_then(|number| self.profiles.iter().find(|p| p.numbers.contains(number)))
            .or_else(|| self.profile(&self.default_profile))
            .unwrap_or(&self.profiles[0]) // validate() guarantees at least one profile
    }

    pub fn modem(&self, id: &ModemId) -> Option<&ModemConfig> {
        self.modems.iter().find(|modem| &modem.id == id)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// One problem found in the config, at a key path such as `profile[1].numbers[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config {}: {source}. Create it with `textback init`, or name another with --config", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not TOML: nothing past the first syntax error can be read.
    #[error("{} has a problem\n  {problem}", path.display())]
    Syntax { path: PathBuf, problem: Problem },
    #[error("{} has {} problem{}\n{}", path.display(), problems.len(), if problems.len() == 1 { "" } else { "s" }, indent(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn indent(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|problem| format!("  {problem}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A config that loaded, with the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Problem>,
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Validates config text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Loaded, Error> {
    let read = read_raw(text).map_err(|failure| match failure {
        ReadFailure::Syntax(problem) => Error::Syntax {
            path: path.to_path_buf(),
            problem,
        },
        ReadFailure::Stuck(problems) => Error::Invalid {
            path: path.to_path_buf(),
            problems,
        },
    })?;
    let Read {
        raw,
        mut problems,
        replaced,
    } = read;
    match validate(raw) {
        // A value that was replaced so that reading could go on is reported once, as read.
        Err(found) => problems.extend(found.into_iter().filter(|problem| {
            !replaced
                .iter()
                .any(|key| is_at_or_under(&problem.path, key))
        })),
        Ok(loaded) if problems.is_empty() => return Ok(loaded),
        Ok(_) => {}
    }
    Err(Error::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

/// Whether the key path `path` is `key` or inside it (`key.x`, `key[0]`).
fn is_at_or_under(path: &str, key: &str) -> bool {
    path.strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The most type errors and unknown keys reported from one file; past it the file is not worth
/// reading further.
const MAX_READ_PROBLEMS: usize = 50;

/// The raw config as far as it could be read, with the problems found in reading it.
struct Read {
    /// The config, with each bad value replaced (or unknown key dropped) so reading went on.
    raw: RawConfig,
    /// Type errors, unknown keys and missing keys, in the order found.
    problems: Vec<Problem>,
    /// The key paths whose values were replaced: value checks there would only repeat them.
    replaced: Vec<String>,
}

/// Why the raw config could not be read at all.
enum ReadFailure {
    /// Not TOML.
    Syntax(Problem),
    /// Problems that no replacement got past (listed all the same).
    Stuck(Vec<Problem>),
}

/// Reads the TOML into [`RawConfig`]. serde stops at the first type error or unknown key, so
/// each one is noted with its key path and line, the value at that path is replaced with one of
/// the right type (or the unknown key is dropped), and the file is read again: every such
/// problem comes out of one run.
fn read_raw(text: &str) -> Result<Read, ReadFailure> {
    let line_of = |span: Option<std::ops::Range<usize>>| {
        span.map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
    };
    let mut root = toml::de::DeTable::parse(text).map_err(|err| {
        ReadFailure::Syntax(Problem {
            path: match line_of(err.span()) {
                Some(line) => format!("line {line}"),
                None => "(file)".to_string(),
            },
            message: format!("TOML syntax: {}", err.message().trim()),
        })
    })?;
    let mut problems = Vec::new();
    let mut replaced: Vec<String> = Vec::new();
    loop {
        let failure = match attempt(&root) {
            Ok(raw) => {
                return Ok(Read {
                    raw,
                    problems,
                    replaced,
                });
            }
            Err(failure) => failure,
        };
        let ReadError {
            segments,
            path,
            message,
            span,
        } = failure;
        let mut shown = message.clone();
        if shown.starts_with("missing field") {
            shown.push_str(": add it");
        }
        if let Some(line) = line_of(span) {
            shown.push_str(&format!(" (line {line})"));
        }
        problems.push(Problem {
            path: if path.is_empty() {
                "(top level)".to_string()
            } else {
                path.clone()
            },
            message: shown,
        });
        // The key to repair: the unknown or mistyped one, or the missing one inside `path`.
        let (segments, key) = match missing_field(&message) {
            Some(field) => {
                let mut segments = segments;
                segments.push(Segment::Key(field.to_string()));
                let key = if path.is_empty() {
                    field.to_string()
                } else {
                    format!("{path}.{field}")
                };
                (segments, key)
            }
            None => (segments, path),
        };
        let repaired = if message.starts_with("unknown field") {
            remove(root.get_mut(), &segments)
        } else if replaced.contains(&key) || problems.len() >= MAX_READ_PROBLEMS {
            false
        } else {
            replaced.push(key.clone());
            replace(&mut root, &segments, &key)
        };
        if !repaired {
            return Err(ReadFailure::Stuck(problems));
        }
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Where and why reading the raw config failed.
struct ReadError {
    segments: Vec<Segment>,
    /// `segments` written as in messages: `profile[0].numbers[1]`; empty at the top level.
    path: String,
    /// serde's message.
    message: String,
    span: Option<std::ops::Range<usize>>,
}

fn attempt(root: &toml::Spanned<toml::de::DeTable<'_>>) -> Result<RawConfig, ReadError> {
    let deserializer = toml::de::Deserializer::from(root.clone());
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let segments: Vec<Segment> = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    Some(Segment::Key(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let path = err.path().to_string();
        let inner = err.into_inner();
        ReadError {
            segments,
            path: if path == "." { String::new() } else { path },
            message: inner.message().trim().to_string(),
            span: inner.span(),
        }
    })
}

/// The field named by serde's "missing field `name`".
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split('`')
        .next()
        .filter(|field| !field.is_empty())
}

/// The value at `segments`, if there is one.
fn value_at<'a, 'i>(
    table: &'a mut toml::de::DeTable<'i>,
    segments: &[Segment],
) -> Option<&'a mut toml::de::DeValue<'i>> {
    let (first, rest) = segments.split_first()?;
    let Segment::Key(key) = first else {
        return None;
    };
    let mut value = table.get_mut(key.as_str())?.get_mut();
    for segment in rest {
        value = match (segment, value) {
            (Segment::Key(key), toml::de::DeValue::Table(table)) => {
                table.get_mut(key.as_str())?.get_mut()
            }
            (Segment::Index(index), toml::de::DeValue::Array(array)) => {
                array.get_mut(*index)?.get_mut()
            }
            _ => return None,
        };
    }
    Some(value)
}

/// The table that holds the last key of `segments`, and that key.
fn parent_of<'a, 'i, 's>(
    root: &'a mut toml::de::DeTable<'i>,
    segments: &'s [Segment],
) -> Option<(&'a mut toml::de::DeTable<'i>, &'s str)> {
    let (last, parent) = segments.split_last()?;
    let Segment::Key(key) = last else {
        return None;
    };
    if parent.is_empty() {
        return Some((root, key));
    }
    match value_at(root, parent)? {
        toml::de::DeValue::Table(table) => Some((table, key)),
        _ => None,
    }
}

/// Drops the key at `segments`; false when there is none.
fn remove(root: &mut toml::de::DeTable<'_>, segments: &[Segment]) -> bool {
    parent_of(root, segments).is_some_and(|(table, key)| table.remove(key).is_some())
}

/// Puts a value at `segments` that reading gets past: an empty string, zero, false, an empty
/// list or an empty table, whichever the key takes; or, when none does, drops the key (an
/// optional one is then absent). False when nothing helped.
fn replace(
    root: &mut toml::Spanned<toml::de::DeTable<'_>>,
    segments: &[Segment],
    key: &str,
) -> bool {
    use toml::de::{DeArray, DeInteger, DeTable, DeValue};
    let candidates = [
        DeValue::String(std::borrow::Cow::Borrowed("")),
        DeValue::Integer(DeInteger::default()),
        DeValue::Boolean(false),
        DeValue::Array(DeArray::new()),
        DeValue::Table(DeTable::new()),
    ];
    let gets_past = |root: &toml::Spanned<DeTable<'_>>| match attempt(root) {
        Ok(_) => true,
        Err(failure) => {
            let at = match missing_field(&failure.message) {
                Some(field) if failure.path.is_empty() => field.to_string(),
                Some(field) => format!("{}.{field}", failure.path),
                None => failure.path,
            };
            !is_at_or_under(&at, key)
        }
    };
    for candidate in candidates {
        let Some((table, name)) = parent_of(root.get_mut(), segments) else {
            // An element of a list: replaced in place.
            let Some(value) = value_at(root.get_mut(), segments) else {
                return false;
            };
            *value = candidate;
            if gets_past(root) {
                return true;
            }
            continue;
        };
        let span = table.get(name).map(|value| value.span()).unwrap_or(0..0);
        table.insert(
            toml::Spanned::new(span.clone(), std::borrow::Cow::Owned(name.to_string())),
            toml::Spanned::new(span, candidate),
        );
        if gets_past(root) {
            return true;
        }
    }
    remove(root.get_mut(), segments) && gets_past(root)
}

/// Collects problems while validating.
#[derive(Default)]
struct Checker {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Checker {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn number(&mut self, path: &str, value: &str) -> Option<E164> {
        match E164::parse(value) {
            Ok(number) => Some(number),
            Err(err) => {
                self.error(path, err.to_string());
                None
            }
        }
    }

    fn template(&mut self, path: &str, source: &str, allowed: &[&str]) -> Option<Template> {
        match Template::parse(source, allowed) {
            Ok(template) => Some(template),
            Err(err) => {
                self.error(path, err.to_string());
                None
            }
        }
    }
}

fn validate(raw: RawConfig) -> Result<Loaded, Vec<Problem>> {
    let mut check = Checker::default();

    let listen = match raw.dashboard.listen.parse::<SocketAddr>() {
        Ok(address) => Some(address),
        Err(_) => {
            check.error(
                "dashboard.listen",
                format!(
                    "{:?} is not an address and port (e.g. \"127.0.0.1:8080\", or \"0.0.0.0:8080\" for the LAN)",
                    raw.dashboard.listen
                ),
            );
            None
        }
    };
    let public_url = match &raw.dashboard.public_url {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
            check.error(
                "dashboard.public_url",
                format!("{url:?} must start with http:// or https://"),
            );
            url.clone()
        }
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", raw.dashboard.listen),
    };

    let trusted_proxy = match raw.dashboard.trusted_proxy.as_deref().map(str::trim) {
        None => None,
        Some(text) => match text.parse::<std::net::IpAddr>() {
            Ok(address) if address.is_unspecified() => {
                check.error(
                    "dashboard.trusted_proxy",
                    format!(
                        "{text:?} is any address, so anyone could say who they are: give the proxy's own address (\"127.0.0.1\" for a proxy on this box)"
                    ),
                );
                None
            }
            Ok(address) => Some(address),
            Err(_) => {
                check.error(
                    "dashboard.trusted_proxy",
                    format!(
                        "{text:?} is not an IP address: give the reverse proxy's address as the dashboard sees it (\"127.0.0.1\" for a proxy on this box), or remove the key"
                    ),
                );
                None
            }
        },
    };
    let notify = validate_notify(&mut check, raw.notify);
    if !(7..=3650).contains(&raw.storage.retention_days) {
        check.error(
            "storage.retention_days",
            format!(
                "{} is out of range: 7 to 3650 days",
                raw.storage.retention_days
            ),
        );
    }

    // Ids first, so that references between sections can be checked.
    let profile_ids: Vec<Option<ProfileId>> = raw
        .profiles
        .iter()
        .enumerate()
        .map(|(i, profile)| match ProfileId::parse(&profile.id) {
            Ok(id) => Some(id),
            Err(err) => {
                check.error(format!("profile[{i}].id"), err.to_string());
                None
            }
        })
        .collect();
    let modem_ids: Vec<Option<ModemId>> = raw
        .modems
        .iter()
        .enumerate()
        .map(|(i, modem)| match ModemId::parse(&modem.id) {
            Ok(id) => Some(id),
            Err(err) => {
                check.error(format!("modem[{i}].id"), err.to_string());
                None
            }
        })
        .collect();
    duplicates(
        &mut check,
        "profile",
        "id",
        raw.profiles.iter().map(|p| p.id.as_str()),
    );
    duplicates(
        &mut check,
        "modem",
        "id",
        raw.modems.iter().map(|m| m.id.as_str()),
    );
    duplicates(
        &mut check,
        "sip",
        "name",
        raw.sip_accounts.iter().map(|s| s.name.as_str()),
    );

    let known_profiles: Vec<&str> = raw.profiles.iter().map(|p| p.id.as_str()).collect();
    let known_modems: Vec<&str> = raw.modems.iter().map(|m| m.id.as_str()).collect();
    let profile_ref =
        |check: &mut Checker, path: String, name: &Option<String>| -> Option<ProfileId> {
            let name = name.as_ref()?;
            if !known_profiles.contains(&name.as_str()) {
                check.error(
                    path,
                    format!(
                        "no profile has id {name:?}; the profiles are: {}",
                        quoted(&known_profiles)
                    ),
                );
                return None;
            }
            ProfileId::parse(name).ok()
        };

    if raw.profiles.is_empty() {
        check.error(
            "profile",
            "no [[profile]]: add one with at least `id` and `name` (the business callers hear of)",
        );
    }
    if raw.modems.is_empty() {
        check.error(
            "modem",
            "no [[modem]]: textback sends its texts through a GSM modem; add a [[modem]] with its `id` and `port`",
        );
    }

    if !raw.storage.database.is_absolute() {
        check.error(
            "storage.database",
            format!(
                "{:?} is not an absolute path (e.g. /var/lib/textback/textback.db)",
                raw.storage.database
            ),
        );
    } else if !raw.storage.database.starts_with("/var/lib/textback") {
        check.warn(
            "storage.database",
            format!(
                "{} is outside /var/lib/textback: systemd/textback.service (ProtectSystem=strict) only lets textback write there",
                raw.storage.database.display()
            ),
        );
    }
    duplicates(
        &mut check,
        "modem",
        "port",
        raw.modems.iter().map(|m| m.port.to_str().unwrap_or("")),
    );

    let mut modems = Vec::new();
    for (i, (modem, id)) in raw.modems.iter().zip(&modem_ids).enumerate() {
        let path = |key: &str| format!("modem[{i}].{key}");
        if modem.hangup_after_rings == 1 {
            check.error(
                path("hangup_after_rings"),
                "1 hangs up before the caller's number arrives (+CLIP follows the first RING): use 0 (never) or 2 or more",
            );
        }
        if !modem.port.is_absolute() {
            check.error(
                path("port"),
                format!(
                    "{:?} is not an absolute path (e.g. /dev/textback-modem)",
                    modem.port
                ),
            );
        } else if !modem.port.exists() {
            check.warn(
                path("port"),
                format!(
                    "{} does not exist now: plug the dongle in, or install udev/99-textback.rules, which creates /dev/textback-modem",
                    modem.port.display()
                ),
            );
        }
        let pin = match &modem.pin {
            Some(pin)
                if !(4..=8).contains(&pin.len()) || !pin.chars().all(|c| c.is_ascii_digit()) =>
            {
                check.error(path("pin"), "a SIM PIN is 4 to 8 digits");
                None
            }
            Some(pin) => Some(Secret::new(pin.clone())),
            None => None,
        };
        let smsc = modem
            .smsc
            .as_ref()
            .and_then(|smsc| check.number(&path("smsc"), smsc));
        const RATES: &[u32] = &[
            9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600,
        ];
        if !RATES.contains(&modem.baud) {
            check.error(
                path("baud"),
                format!(
                    "{} is not a serial rate; use one of {RATES:?} (115200 for USB dongles)",
                    modem.baud
                ),
            );
        }
        let profile = profile_ref(&mut check, path("profile"), &modem.profile);
        if let Some(id) = id {
            modems.push(ModemConfig {
                id: id.clone(),
                port: modem.port.clone(),
                pin,
                profile,
                smsc,
                baud: modem.baud,
                hangup_after_rings: modem.hangup_after_rings,
                status_reports: modem.status_reports,
            });
        }
    }

    let mut sip_accounts = Vec::new();
    for (i, account) in raw.sip_accounts.iter().enumerate() {
        let path = |key: &str| format!("sip[{i}].{key}");
        for (key, value) in [
            ("name", &account.name),
            ("registrar", &account.registrar),
            ("username", &account.username),
            ("password", &account.password),
        ] {
            if value.trim().is_empty() {
                check.error(path(key), "is empty");
            }
        }
        if account.registrar.contains("://") || account.registrar.contains(' ') {
            check.error(
                path("registrar"),
                format!("{:?} should be a host name or address, with an optional :port (e.g. \"sip.example.net\")", account.registrar),
            );
        }
        let profile = profile_ref(&mut check, path("profile"), &account.profile);
        let sip = crate::sip::config::check_account(account_view(account), &path);
        for (key, message) in sip.errors {
            check.error(key, message);
        }
        sip_accounts.push(SipAccount {
            name: account.name.clone(),
            registrar: account.registrar.clone(),
            username: account.username.clone(),
            password: Secret::new(account.password.clone()),
            domain: account.domain.clone(),
            local_port: account.local_port,
            profile,
            listen: sip.listen,
            register: account.register,
            transport: sip.transport,
            outbound_proxy: account.outbound_proxy.clone(),
            auth_username: account.auth_username.clone(),
            contact_user: account.contact_user.clone().unwrap_or_else(|| {
                sip_contact_user(&account.name, &account.username, &account.password)
            }),
            expires: account.expires,
            keepalive: sip.keepalive,
            keepalive_interval: std::time::Duration::from_secs(account.keepalive_seconds.into()),
            allow: sip.allow,
            max_ring: std::time::Duration::from_secs(account.max_ring_seconds.into()),
            final_response: sip.final_response,
            max_requests_per_second: account.max_requests_per_second,
            max_invites_per_second: account.max_invites_per_second,
            max_ringing_calls: usize::try_from(account.max_ringing_calls).unwrap_or(usize::MAX),
        });
    }
    for (key, message) in crate::sip::config::check_ports(&sip_accounts) {
        check.error(key, message);
    }

    let mut profiles = Vec::new();
    let mut number_owner: HashMap<E164, String> = HashMap::new();
    for (i, (profile, id)) in raw.profiles.iter().zip(&profile_ids).enumerate() {
        let path = |key: &str| format!("profile[{i}].{key}");
        if profile.name.trim().is_empty() {
            check.error(
                path("name"),
                "is empty: it is the business name every text starts with",
            );
        }
        let mut numbers = Vec::new();
        for (j, number) in profile.numbers.iter().enumerate() {
            let key = format!("profile[{i}].numbers[{j}]");
            if let Some(number) = check.number(&key, number) {
                if let Some(owner) = number_owner.get(&number) {
                    check.error(
                        &key,
                        format!(
                            "{number} is already listed at {owner}: a number belongs to one profile"
                        ),
                    );
                } else {
                    number_owner.insert(number.clone(), key.clone());
                    numbers.push(number);
                }
            }
        }
        let mut rules = crate::core::policy::Rules {
            kinds: Vec::new(),
            allow: Vec::new(),
            staff: Vec::new(),
            caps: crate::core::policy::Caps {
                box_hour: Some(raw.limits.texts_per_hour),
                box_day: Some(raw.limits.texts_per_day),
                profile_hour: profile.texts_per_hour,
                profile_day: profile.texts_per_day,
            },
        };
        for (j, kind) in profile.text_kinds.iter().enumerate() {
            match number_kind(kind) {
                Some(kind) => rules.kinds.push(kind),
                None => check.error(
                    format!("profile[{i}].text_kinds[{j}]"),
                    format!("{kind:?} is not a kind of number: use uk_mobile, uk_personal, uk_pager, uk_geographic, uk_non_geographic or international (premium-rate numbers are never texted)"),
                ),
            }
        }
        for (j, number) in profile.allow_numbers.iter().enumerate() {
            rules
                .allow
                .extend(check.number(&format!("profile[{i}].allow_numbers[{j}]"), number));
        }
        for (j, number) in profile.staff_numbers.iter().enumerate() {
            rules
                .staff
                .extend(check.number(&format!("profile[{i}].staff_numbers[{j}]"), number));
        }
        if profile.cooldown_hours > 24 * 30 {
            check.error(
                format!("profile[{i}].cooldown_hours"),
                format!("{} is out of range: 0 to 720 hours", profile.cooldown_hours),
            );
        }
        if profile.first_text_delay_seconds > MAX_FIRST_TEXT_DELAY_SECONDS {
            check.error(
                format!("profile[{i}].first_text_delay_seconds"),
                format!(
                    "{} is out of range: 0 (no delay) to {MAX_FIRST_TEXT_DELAY_SECONDS} seconds; a caller texted later than that has usually rung someone else",
                    profile.first_text_delay_seconds
                ),
            );
        }
        let llm = match &profile.llm {
            None => None,
            Some(raw) => match crate::llm::client::LlmSettings::from_config(raw) {
                Ok(settings) => Some(settings),
                Err(crate::llm::client::LlmError::Config { key, problem }) => {
                    let key = key.strip_prefix("profile.").unwrap_or(key);
                    check.error(format!("profile[{i}].{key}"), problem);
                    None
                }
                Err(other) => {
                    check.error(format!("profile[{i}].llm"), other.to_string());
                    None
                }
            },
        };
        for (key, value) in [
            ("texts_per_hour", profile.texts_per_hour),
            ("texts_per_day", profile.texts_per_day),
        ] {
            if value == Some(0) {
                check.error(
                    format!("profile[{i}].{key}"),
                    "is 0, which would never text anyone: leave it out for no cap of the business's own",
                );
            }
        }
        let modem = match &profile.modem {
            Some(name) if !known_modems.contains(&name.as_str()) => {
                check.error(
                    path("modem"),
                    format!(
                        "no modem has id {name:?}; the modems are: {}",
                        quoted(&known_modems)
                    ),
                );
                None
            }
            Some(name) => ModemId::parse(name).ok(),
            None => None,
        };

        let raw_questions: Vec<(String, String)> = match &profile.questions {
            Some(questions) => questions
                .iter()
                .map(|q| (q.id.clone(), q.ask.clone()))
                .collect(),
            None => defaults::questions()
                .into_iter()
                .map(|(id, ask)| (id.to_string(), ask.to_string()))
                .collect(),
        };
        let raw_kinds: Vec<(Option<String>, Vec<String>, bool)> = match &profile.questions {
            Some(questions) => questions
                .iter()
                .map(|q| (q.kind.clone(), q.options.clone(), q.required))
                .collect(),
            None => raw_questions
                .iter()
                .map(|_| (None, Vec::new(), true))
                .collect(),
        };
        if raw_questions.is_empty() {
            check.error(
                path("question"),
                "no questions: a profile asks at least one (leave [[profile.question]] out for the defaults: name, then reason)",
            );
        }
        if raw_questions.len() > MAX_QUESTIONS {
            check.error(
                path("question"),
                format!(
                    "{} questions; at most {MAX_QUESTIONS} (name, callback number, reason and 10 of your own). Callers stop answering long before that",
                    raw_questions.len()
                ),
            );
        }
        let mut questions = Vec::new();
        let mut seen = Vec::new();
        for (j, (qid, ask)) in raw_questions.iter().enumerate() {
            let key = |k: &str| format!("profile[{i}].question[{j}].{k}");
            if ask.trim().is_empty() {
                check.error(
                    key("ask"),
                    "is empty: write the question as the caller should read it",
                );
            }
            if seen.contains(qid) {
                check.error(key("id"), format!("{qid:?} is used twice in this profile"));
            }
            seen.push(qid.clone());
            let (kind_name, options, required) =
                raw_kinds
                    .get(j)
                    .cloned()
                    .unwrap_or((None, Vec::new(), true));
            let kind = match question_kind(qid, kind_name.as_deref(), &options) {
                Ok(kind) => kind,
                Err(problem) => {
                    check.error(key("kind"), problem);
                    crate::core::conversation::QuestionKind::Text
                }
            };
            match QuestionId::parse(qid) {
                Ok(id) => questions.push(Question {
                    id,
                    ask: ask.trim().to_string(),
                    kind,
                    required,
                }),
                Err(err) => check.error(key("id"), err.to_string()),
            }
        }

        for (key, text) in [
            ("first_message", &profile.first_message),
            ("closing_message", &profile.closing_message),
            ("opt_out_message", &profile.opt_out_message),
            ("opt_in_message", &profile.opt_in_message),
        ] {
            if text.trim().is_empty() {
                check.error(
                    path(key),
                    "is empty: every text the box sends must say something",
                );
            }
        }
        let closing_fields: Vec<&str> = std::iter::once("business")
            .chain(questions.iter().map(|q| q.id.as_str()))
            .collect();
        let first_message = check.template(
            &path("first_message"),
            &profile.first_message,
            FIRST_MESSAGE_FIELDS,
        );
        let hours = profile.hours.as_ref().map(|raw| {
            let days = [
                ("monday", &raw.monday),
                ("tuesday", &raw.tuesday),
                ("wednesday", &raw.wednesday),
                ("thursday", &raw.thursday),
                ("friday", &raw.friday),
                ("saturday", &raw.saturday),
                ("sunday", &raw.sunday),
            ];
            let mut hours = crate::core::hours::Hours::default();
            for (n, (day, text)) in days.iter().enumerate() {
                if let Some(text) = text {
                    match crate::core::hours::parse_day(text) {
                        Ok(open) => hours.week[n] = open,
                        Err(err) => check.error(path(&format!("hours.{day}")), err.to_string()),
                    }
                }
            }
            for (j, day) in raw.holidays.iter().enumerate() {
                match chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d") {
                    Ok(date) => hours.holidays.push(date),
                    Err(_) => check.error(
                        path(&format!("hours.holidays[{j}]")),
                        format!("{day:?} is not a date: write 2026-12-25"),
                    ),
                }
            }
            if hours.week.iter().all(Option::is_none) {
                check.error(
                    path("hours"),
                    "every day is closed: give at least one day's hours, e.g. monday = \"08:00-18:00\"",
                );
            }
            hours
        });
        let out_of_hours_message = match (&hours, &profile.out_of_hours_message) {
            (_, Some(text)) => {
                check.template(&path("out_of_hours_message"), text, OUT_OF_HOURS_FIELDS)
            }
            (Some(_), None) => check.template(
                &path("out_of_hours_message"),
                DEFAULT_OUT_OF_HOURS_MESSAGE,
                OUT_OF_HOURS_FIELDS,
            ),
            (None, None) => None,
        };
        if profile.out_of_hours_message.is_some() && hours.is_none() {
            check.warn(
                path("out_of_hours_message"),
                "is never sent without [profile.hours]: add the business's opening hours",
            );
        }
        let closing_message = check.template(
            &path("closing_message"),
            &profile.closing_message,
            &closing_fields,
        );
        let opt_out_message = check.template(
            &path("opt_out_message"),
            &profile.opt_out_message,
            BUSINESS_ONLY_FIELDS,
        );
        let opt_in_message = check.template(
            &path("opt_in_message"),
            &profile.opt_in_message,
            BUSINESS_ONLY_FIELDS,
        );
        if let Some(first) = &first_message {
            let sample = sample_first_message(first, &profile.name, questions.first());
            warn_length(&mut check, &path("first_message"), &sample);
        }
        for (j, question) in questions.iter().enumerate() {
            warn_length(
                &mut check,
                &format!("profile[{i}].question[{j}].ask"),
                &question.ask,
            );
        }

        let mut recipients = Vec::new();
        for (j, recipient) in profile.recipients.iter().enumerate() {
            let key = |k: &str| format!("profile[{i}].recipient[{j}].{k}");
            if recipient.name.trim().is_empty() {
                check.error(key("name"), "is empty");
            }
            let mut channels = Vec::new();
            if recipient.email.is_some() && notify.email.is_none() {
                check.warn(
                    key("email"),
                    "[notify.email] is not set: emails to this recipient wait (pending) until notify.email.host and notify.email.from are",
                );
            }
            if recipient.whatsapp.is_some() && notify.whatsapp.is_none() {
                check.warn(
                    key("whatsapp"),
                    "[notify.whatsapp] is not set: WhatsApp messages to this recipient wait (pending) until notify.whatsapp.phone_number_id, token and template are",
                );
            }
            if let Some(email) = &recipient.email {
                if is_email(email) {
                    channels.push(Channel::Email(email.trim().to_string()));
                } else {
                    check.error(
                        key("email"),
                        format!("{email:?} is not an email address (name@example.com)"),
                    );
                }
            }
            if let Some(number) = &recipient.sms {
                channels.extend(check.number(&key("sms"), number).map(Channel::Sms));
            }
            if let Some(number) = &recipient.whatsapp {
                channels.extend(
                    check
                        .number(&key("whatsapp"), number)
                        .map(Channel::WhatsApp),
                );
            }
            if let Some(url) = &recipient.webhook {
                if url.starts_with("https://") || url.starts_with("http://") {
                    channels.push(Channel::Webhook(url.clone()));
                } else {
                    check.error(
                        key("webhook"),
                        format!("{url:?} must start with https:// (or http:// on the LAN)"),
                    );
                }
            }
            if recipient.email.is_none()
                && recipient.sms.is_none()
                && recipient.whatsapp.is_none()
                && recipient.webhook.is_none()
            {
                check.error(
                    format!("profile[{i}].recipient[{j}]"),
                    "has no channel: give it at least one of email, sms, whatsapp, webhook",
                );
            }
            let when = recipient.when.as_ref().and_then(|route| {
                let question = questions
                    .iter()
                    .find(|q| q.id.as_str() == route.question)
                    .map(|q| q.id.clone());
                if question.is_none() {
                    check.error(
                        key("when.question"),
                        format!(
                            "{:?} is not one of this profile's questions ({})",
                            route.question,
                            quoted(&questions.iter().map(|q| q.id.as_str()).collect::<Vec<_>>())
                        ),
                    );
                }
                let contains: Vec<String> = route
                    .contains
                    .iter()
                    .map(|w| w.trim().to_string())
                    .filter(|w| !w.is_empty())
                    .collect();
                if contains.is_empty() {
                    check.error(
                        key("when.contains"),
                        "is empty: list the words an answer must contain, e.g. [\"boiler\", \"heating\"]",
                    );
                }
                question.map(|question| Route { question, contains })
            });
            if recipient.late_replies == Some(true) && !notify.late_replies {
                check.warn(
                    key("late_replies"),
                    "has no effect while notify.late_replies = false: nobody is told of replies after a lead",
                );
            }
            recipients.push(Recipient {
                name: recipient.name.clone(),
                channels,
                when,
                late_replies: notify.late_replies && recipient.late_replies.unwrap_or(true),
            });
        }
        if profile.recipients.is_empty() {
            check.warn(
                format!("profile[{i}].recipient"),
                "no recipients: leads are kept on the dashboard but nobody is told of them",
            );
        }

        if let (
            Some(id),
            Some(first_message),
            Some(closing_message),
            Some(opt_out_message),
            Some(opt_in_message),
        ) = (
            id,
            first_message,
            closing_message,
            opt_out_message,
            opt_in_message,
        ) {
            let dialogue = dialogue_profile(
                &mut check,
                i,
                profile,
                &questions,
                &numbers,
                [
                    first_message.source(),
                    closing_message.source(),
                    opt_out_message.source(),
                    opt_in_message.source(),
                ],
            );
            // The silence clock starts with the conversation: a first text held longer than it
            // would time out before it is sent.
            if u64::from(profile.first_text_delay_seconds)
                >= u64::from(dialogue.silence_minutes) * 60
            {
                check.error(
                    format!("profile[{i}].first_text_delay_seconds"),
                    format!(
                        "{} s is not shorter than silence_minutes ({} min): the conversation would end as silent before its first text is sent; shorten the delay or lengthen silence_minutes",
                        profile.first_text_delay_seconds, dialogue.silence_minutes
                    ),
                );
            }
            profiles.push(Profile {
                dialogue,
                hours,
                out_of_hours_message,
                id: id.clone(),
                name: profile.name.trim().to_string(),
                numbers,
                modem,
                first_message,
                closing_message,
                opt_out_message,
                opt_in_message,
                questions,
                recipients,
                rules,
                cooldown: std::time::Duration::from_secs(u64::from(profile.cooldown_hours) * 3600),
                first_text_delay: std::time::Duration::from_secs(u64::from(
                    profile.first_text_delay_seconds,
                )),
                llm,
            });
        }
    }

    let defaults_marked: Vec<&RawProfile> = raw.profiles.iter().filter(|p| p.default).collect();
    let default_profile = match defaults_marked.as_slice() {
        [only] => ProfileId::parse(&only.id).ok(),
        [] if raw.profiles.len() == 1 => ProfileId::parse(&raw.profiles[0].id).ok(),
        [] if raw.profiles.len() > 1 => {
            check.error(
                "profile",
                "several profiles and none has `default = true`: mark the one for calls to numbers no profile lists",
            );
            None
        }
        [] => None,
        several => {
            check.error(
                "profile",
                format!(
                    "{} profiles have `default = true` ({}): only one can be the default",
                    several.len(),
                    quoted(&several.iter().map(|p| p.id.as_str()).collect::<Vec<_>>())
                ),
            );
            None
        }
    };

    if !check.errors.is_empty() {
        return Err(check.errors);
    }
    let (Some(listen), Some(default_profile)) = (listen, default_profile) else {
        // Unreachable: both are only None alongside an error above.
        return Err(vec![Problem {
            path: "(top level)".to_string(),
            message: "incomplete config".to_string(),
        }]);
    };
    Ok(Loaded {
        config: Config {
            storage: Storage {
                database: raw.storage.database,
                retention: std::time::Duration::from_secs(
                    u64::from(raw.storage.retention_days) * 24 * 3600,
                ),
            },
            dashboard: Dashboard {
                listen,
                public_url,
                trusted_proxy,
            },
            notify,
            modems,
            sip_accounts,
            profiles,
            default_profile,
        },
        warnings: check.warnings,
    })
}

/// A kind of number as the config names it. Premium rate and unused ranges have no name: they
/// are never texted.
fn number_kind(name: &str) -> Option<crate::domain::NumberKind> {
    use crate::domain::NumberKind;
    Some(match name {
        "uk_mobile" => NumberKind::UkMobile,
        "uk_personal" => NumberKind::UkPersonal,
        "uk_pager" => NumberKind::UkPager,
        "uk_geographic" => NumberKind::UkGeographic,
        "uk_non_geographic" => NumberKind::UkNonGeographic,
        "international" => NumberKind::International,
        _ => return None,
    })
}

/// The conversation engine's view of a profile; its own checks are reported under the profile.
fn dialogue_profile(
    check: &mut Checker,
    i: usize,
    profile: &RawProfile,
    questions: &[Question],
    numbers: &[E164],
    [first, closing, opt_out, opt_in]: [&str; 4],
) -> crate::core::conversation::DialogueProfile {
    use crate::core::conversation::{self as engine, DialogueProfile};
    let contact = profile
        .contact
        .clone()
        .unwrap_or_else(|| match numbers.first() {
            Some(number) => format!("Call {}.", number.national()),
            None => String::new(),
        });
    let mut dialogue = DialogueProfile::new(
        profile.name.trim(),
        &contact,
        questions
            .iter()
            .map(|q| engine::Question {
                id: q.id.to_string(),
                ask: q.ask.clone(),
                kind: q.kind.clone(),
                required: q.required,
            })
            .collect(),
    );
    if let Some(n) = profile.max_questions_per_message {
        dialogue.max_questions_per_message = n;
    }
    if let Some(n) = profile.max_turns {
        dialogue.max_turns = n;
    }
    if let Some(n) = profile.silence_minutes {
        dialogue.silence_minutes = n;
    }
    dialogue.canned = profile
        .answers
        .iter()
        .map(|a| engine::CannedAnswer {
            keywords: a.keywords.iter().map(|k| k.to_lowercase()).collect(),
            answer: a.answer.clone(),
        })
        .collect();
    dialogue.templates.first_message = first.to_string();
    dialogue.templates.closing = closing.to_string();
    dialogue.templates.opt_out = opt_out.to_string();
    dialogue.templates.opt_in = opt_in.to_string();
    if let Err(problems) = dialogue.check() {
        for problem in problems {
            check.error(format!("profile[{i}]"), problem.to_string());
        }
    }
    dialogue
}

/// A question's kind as the config names it; without `kind`, the ids `postcode` and `urgency`
/// mean those kinds, and any other id free text.
fn question_kind(
    id: &str,
    name: Option<&str>,
    options: &[String],
) -> Result<crate::core::conversation::QuestionKind, String> {
    use crate::core::conversation::QuestionKind;
    let implied = match id {
        "postcode" => "postcode",
        "urgency" => "urgency",
        _ => "text",
    };
    QuestionKind::from_name(name.unwrap_or(implied), options).map_err(|err| err.to_string())
}

fn validate_notify(check: &mut Checker, raw: RawNotify) -> Notify {
    const HOUR: u64 = 3600;
    if raw.link_valid_days == 0 || raw.link_valid_days > 3650 {
        check.error(
            "notify.link_valid_days",
            format!("{} is out of range: 1 to 3650 days", raw.link_valid_days),
        );
    }
    if raw.give_up_after_hours == 0 || raw.give_up_after_hours > 24 * 90 {
        check.error(
            "notify.give_up_after_hours",
            format!(
                "{} is out of range: 1 to 2160 hours (90 days)",
                raw.give_up_after_hours
            ),
        );
    }
    let email = raw.email.map(|email| {
        let security = match email.security.to_ascii_lowercase().as_str() {
            "starttls" => EmailSecurity::StartTls,
            "tls" | "ssl" => EmailSecurity::Tls,
            "none" => EmailSecurity::None,
            other => {
                check.error(
                    "notify.email.security",
                    format!("{other:?} is not one of \"starttls\" (port 587), \"tls\" (port 465), \"none\" (a relay on the box or the LAN)"),
                );
                EmailSecurity::StartTls
            }
        };
        let port = email.port.unwrap_or(match security {
            EmailSecurity::StartTls => defaults::smtp_port(),
            EmailSecurity::Tls => 465,
            EmailSecurity::None => 25,
        });
        if email.host.trim().is_empty() || email.host.contains(char::is_whitespace) {
            check.error(
                "notify.email.host",
                format!("{:?} is not a host name or address", email.host),
            );
        }
        let address = match (email.from.rfind('<'), email.from.rfind('>')) {
            (Some(open), Some(close)) if open < close => &email.from[open + 1..close],
            _ => email.from.as_str(),
        };
        if !is_email(address) {
            check.error(
                "notify.email.from",
                format!(
                    "{:?} is not an address: write \"leads@example.com\" or \"Acme leads <leads@example.com>\"",
                    email.from
                ),
            );
        }
        if email.username.is_some() != email.password.is_some() {
            check.error(
                "notify.email",
                "username and password go together: give both, or neither for a relay that needs no login",
            );
        }
        if security == EmailSecurity::None && email.password.is_some() {
            check.warn(
                "notify.email.security",
                "\"none\" with a password sends the password unencrypted: use \"starttls\" or \"tls\" unless the relay is on this box",
            );
        }
        if let Some(ca_file) = &email.ca_file {
            if !ca_file.is_absolute() {
                check.error(
                    "notify.email.ca_file",
                    format!(
                        "{} is relative: give the full path of the PEM file",
                        ca_file.display()
                    ),
                );
            } else if security == EmailSecurity::None {
                check.warn(
                    "notify.email.ca_file",
                    "is only used with security \"starttls\" or \"tls\"",
                );
            } else if !ca_file.exists() {
                check.warn(
                    "notify.email.ca_file",
                    format!(
                        "{} does not exist now: lead emails fail until it does",
                        ca_file.display()
                    ),
                );
            }
        }
        EmailSettings {
            host: email.host.trim().to_string(),
            port,
            security,
            username: email.username,
            password: email.password.map(Secret::new),
            from: email.from.trim().to_string(),
            ca_file: email.ca_file,
        }
    });
    let whatsapp = raw.whatsapp.map(|whatsapp| {
        if whatsapp.phone_number_id.is_empty()
            || !whatsapp.phone_number_id.chars().all(|c| c.is_ascii_digit())
        {
            check.error(
                "notify.whatsapp.phone_number_id",
                format!(
                    "{:?} is not a phone number id: the digits Meta's WhatsApp Manager shows under API setup (not the phone number)",
                    whatsapp.phone_number_id
                ),
            );
        }
        if whatsapp.token.trim().is_empty() {
            check.error("notify.whatsapp.token", "is empty: a system user's access token");
        }
        match whatsapp.template.as_deref().map(str::trim) {
            Some("") => check.error(
                "notify.whatsapp.template",
                "is empty: the name of an approved message template",
            ),
            Some(_) => {}
            None => check.warn(
                "notify.whatsapp.template",
                "not set: leads go as free text, which WhatsApp delivers only within 24 hours of the recipient's last message to the business number; an approved template with 4 body variables (name, number, reason, link) always arrives",
            ),
        }
        if !(whatsapp.base_url.starts_with("https://") || whatsapp.base_url.starts_with("http://")) {
            check.error(
                "notify.whatsapp.base_url",
                format!("{:?} must start with https://", whatsapp.base_url),
            );
        }
        WhatsAppSettings {
            base_url: whatsapp.base_url.trim_end_matches('/').to_string(),
            api_version: whatsapp.api_version.trim_matches('/').to_string(),
            phone_number_id: whatsapp.phone_number_id,
            token: Secret::new(whatsapp.token.trim()),
            template: whatsapp.template.map(|t| t.trim().to_string()),
            language: whatsapp.language,
        }
    });
    if raw.webhook.timeout_seconds == 0 || raw.webhook.timeout_seconds > 300 {
        check.error(
            "notify.webhook.timeout_seconds",
            format!("{} is out of range: 1 to 300", raw.webhook.timeout_seconds),
        );
    }
    if raw.webhook.secret.as_deref().is_some_and(|s| s.len() < 16) {
        check.error(
            "notify.webhook.secret",
            "is shorter than 16 characters: use a long random string (`openssl rand -hex 32`)",
        );
    }
    Notify {
        link_valid: std::time::Duration::from_secs(u64::from(raw.link_valid_days) * 24 * HOUR),
        give_up_after: std::time::Duration::from_secs(u64::from(raw.give_up_after_hours) * HOUR),
        late_replies: raw.late_replies,
        email,
        whatsapp,
        webhook: WebhookSettings {
            secret: raw.webhook.secret.map(Secret::new),
            timeout: std::time::Duration::from_secs(u64::from(raw.webhook.timeout_seconds)),
        },
    }
}

fn duplicates<'a>(
    check: &mut Checker,
    section: &str,
    key: &str,
    values: impl Iterator<Item = &'a str>,
) {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, value) in values.enumerate() {
        if let Some(earlier) = first.get(value) {
            check.error(
                format!("{section}[{i}].{key}"),
                format!("{value:?} is already the {key} of {section}[{earlier}]: each {section} needs its own"),
            );
        } else {
            first.insert(value, i);
        }
    }
}

fn quoted(values: &[&str]) -> String {
    if values.is_empty() {
        return "(none)".to_string();
    }
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_email(value: &str) -> bool {
    let value = value.trim();
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !value.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// The first text as it would read for a typical call, to measure it.
pub fn sample_first_message(
    template: &Template,
    business: &str,
    first_question: Option<&Question>,
) -> String {
    let values = HashMap::from([
        ("business", business.to_string()),
        ("time", "12:45".to_string()),
        ("day", "Wednesday".to_string()),
        (
            "question",
            first_question.map(|q| q.ask.clone()).unwrap_or_default(),
        ),
    ]);
    template.render(&values)
}

fn warn_length(check: &mut Checker, path: &str, text: &str) {
    let segmentation = pdu::segment(text);
    let parts = segmentation.parts.len();
    match segmentation.encoding {
        pdu::Encoding::Ucs2 => {
            let odd: String = text
                .chars()
                .filter(|c| !crate::codec::gsm7::is_gsm7(&c.to_string()))
                .take(5)
                .collect();
            check.warn(
                path,
                format!(
                    "uses characters outside the GSM 7-bit alphabet ({odd:?}), so it goes as UCS-2 with 70 characters per SMS ({parts} SMS). Use plain quotes and dashes"
                ),
            );
        }
        pdu::Encoding::Gsm7 if parts > 1 => {
            check.warn(
                path,
                format!(
                    "about {} characters: {parts} SMS where one holds 160. Shorten it to send one",
                    text.chars().count()
                ),
            );
        }
        pdu::Encoding::Gsm7 => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const MINIMAL: &str = r#"
[[modem]]
id = "main"
port = "/dev/null"

[[profile]]
id = "acme"
name = "Acme Plumbing"
numbers = ["020 7946 0018"]
"#;

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text, Path::new("test.toml")) {
            Ok(_) => panic!("expected problems in:\n{text}"),
            Err(Error::Syntax { problem, .. }) => vec![problem],
            Err(Error::Invalid { problems, .. }) => problems,
            Err(err) => panic!("unexpected {err}"),
        }
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let loaded = parse(MINIMAL, Path::new("test.toml")).unwrap();
        let config = loaded.config;
        assert_eq!(config.default_profile.as_str(), "acme");
        assert_eq!(config.storage.database, defaults::database());
        let profile = &config.profiles[0];
        assert_eq!(profile.questions.len(), 2);
        assert_eq!(profile.numbers[0].as_str(), "+442079460018");
        assert_eq!(config.modems[0].baud, 115_200);
        assert_eq!(config.dashboard.public_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn unknown_key_names_its_path_and_line() {
        let text = MINIMAL.replace("name = \"Acme Plumbing\"", "nmae = \"Acme Plumbing\"");
        let got = problems(&text);
        // The misspelt key, and the key it was meant to be, which is now missing.
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].path, "profile[0].nmae");
        assert_eq!(got[1].path, "profile[0]");
        assert!(
            got[1].message.starts_with("missing field `name`"),
            "{got:?}"
        );
        assert!(
            got[0].message.contains("unknown field `nmae`"),
            "{}",
            got[0].message
        );
        assert!(got[0].message.contains("(line 8)"), "{}", got[0].message);
    }

    #[test]
    fn wrong_type_names_its_path() {
        let text = MINIMAL.replace(
            "port = \"/dev/null\"",
            "port = \"/dev/null\"\nbaud = \"fast\"",
        );
        let got = problems(&text);
        assert_eq!(got[0].path, "modem[0].baud");
        assert!(
            got[0].message.contains("invalid type"),
            "{}",
            got[0].message
        );
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let text = r#"
[dashboard]
listen = "localhost"

[[modem]]
id = "main"
port = "dev/ttyUSB2"
pin = "12"

[[profile]]
id = "acme"
name = "Acme"
modem = "spare"
numbers = ["020 7946 001", "07700 900123"]
first_message = "Hi from {busines}"

[[profile]]
id = "acme"
name = "Acme Two"
numbers = ["+447700900123"]

[[profile.recipient]]
name = "Owner"
"#;
        let got = problems(text);
        let paths: Vec<&str> = got.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "dashboard.listen",
            "profile[1].id",
            "modem[0].port",
            "modem[0].pin",
            "profile[0].numbers[0]",
            "profile[0].modem",
            "profile[0].first_message",
            "profile[1].numbers[0]",
            "profile[1].recipient[0]",
            "profile",
        ] {
            assert!(
                paths.contains(&expected),
                "no problem at {expected}: {got:#?}"
            );
        }
        let text = Error::Invalid {
            path: PathBuf::from("test.toml"),
            problems: got,
        }
        .to_string();
        assert!(text.starts_with("test.toml has 10 problems\n  "), "{text}");
    }

    #[test]
    fn late_replies_default_on_and_a_recipient_can_opt_out() {
        let recipients = r#"
[[profile.recipient]]
name = "Owner"
sms = "+447700900456"

[[profile.recipient]]
name = "Office"
sms = "+447700900457"
late_replies = false
"#;
        let config = parse(&format!("{MINIMAL}{recipients}"), Path::new("test.toml"))
            .unwrap()
            .config;
        assert!(config.notify.late_replies);
        let told: Vec<bool> = config.profiles[0]
            .recipients
            .iter()
            .map(|r| r.late_replies)
            .collect();
        assert_eq!(told, [true, false]);

        // Off for the whole box: nobody is told, and a recipient asking for them is warned.
        let text = format!(
            "[notify]\nlate_replies = false\n{MINIMAL}{}",
            recipients.replace("late_replies = false", "late_replies = true")
        );
        let loaded = parse(&text, Path::new("test.toml")).unwrap();
        assert!(!loaded.config.notify.late_replies);
        assert!(
            loaded.config.profiles[0]
                .recipients
                .iter()
                .all(|r| !r.late_replies)
        );
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.path == "profile[0].recipient[1].late_replies"),
            "{:#?}",
            loaded.warnings
        );

        // Not a bool: named with its path.
        let got = problems(&format!(
            "[notify]\nlate_replies = \"yes\"\n{MINIMAL}{recipients}"
        ));
        assert_eq!(got[0].path, "notify.late_replies", "{got:#?}");
        let got = problems(&format!(
            "{MINIMAL}{}",
            recipients.replace("late_replies = false", "late_replys = false")
        ));
        assert_eq!(
            got[0].path, "profile[0].recipient[1].late_replys",
            "{got:#?}"
        );
    }

    #[test]
    fn example_config_parses() {
        let loaded = parse(
            include_str!("../config/textback.example.toml"),
            Path::new("example"),
        )
        .unwrap();
        assert!(!loaded.config.profiles.is_empty());
    }

    #[test]
    fn demo_config_parses_without_warnings_about_length() {
        let loaded = parse(include_str!("../config/demo.toml"), Path::new("demo")).unwrap();
        assert!(
            loaded
                .warnings
                .iter()
                .all(|w| !w.path.contains("message") && !w.path.contains("ask")),
            "{:#?}",
            loaded.warnings
        );
    }
}
