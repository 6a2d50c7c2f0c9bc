//! The config file: TOML read into raw serde types, then validated into [`Config`], with every
//! problem reported at once under the key path where it is.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::codec::pdu;
use crate::core::template::Template;
use crate::domain::{ChannelKind, E164, ModemId, ProfileId, QuestionId, Secret};

pub mod defaults;
pub mod llm;
mod raw;
mod read;
pub mod sip;
mod validate;

pub use validate::sample_first_message;

/// The longest a profile's question list may be: name, callback number, reason and ten of the
/// business's own.
pub const MAX_QUESTIONS: usize = 13;

// ---------------------------------------------------------------------------------------------
// Validated: what the rest of the program sees.

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// This box's name (`box.name`, default the host name): it tells the boxes of a fleet apart
    /// in webhook payloads and their idempotency keys, and in /metrics (`textback_box_info`).
    pub box_name: String,
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
    /// Distinct numbers this SIM may text in any 24 hours (`modem.recipient_cap`).
    pub recipient_cap: u32,
    /// How long a queue held because the network refused the SIM waits before it is tried again.
    pub refused_recheck: std::time::Duration,
    /// Time off the network before the radio is cycled (AT+CFUN=0, then 1); None: never.
    pub off_network_cycle: Option<std::time::Duration>,
    /// The dongle this `[[modem]]` is (`modem.imei`): another one on the port is not used.
    pub imei: Option<String>,
    /// The SIM this `[[modem]]` holds (`modem.iccid`): another SIM is not used, so a reboot that
    /// renames ports never swaps the businesses' numbers.
    pub iccid: Option<String>,
    /// The SIM's credit check by USSD (`modem.balance_ussd`), when configured.
    pub balance: Option<BalanceCheck>,
    /// The daily self-test (`[modem.self_test]`), when configured.
    pub self_test: Option<SelfTest>,
    /// The USB device this `[[modem]]` is (`modem.usb_serial`, its `serial` in sysfs): its ports
    /// are found under whatever names they have.
    pub usb_serial: Option<String>,
    /// Where ports are looked for (not a config key: `/sys` and `/dev`; tests give a fake tree).
    pub search: PortSearch,
    /// How long a USSD code may wait for the network's answer (not a config key: the driver's
    /// [`defaults::USSD_TIMEOUT`], shorter in tests).
    pub ussd_timeout: std::time::Duration,
}

/// A SIM's credit check: the code to dial, when the credit is low, how often to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceCheck {
    /// The network's balance code (`modem.balance_ussd`), e.g. `*#10#`.
    pub code: String,
    /// Under this many pence the business is told to top up (`modem.balance_low`).
    pub low_pence: i64,
    /// How often the credit is looked at (`modem.balance_check_hours`); also after a refusal
    /// that may mean no credit.
    pub interval: std::time::Duration,
}

/// Where ports are looked for: the sysfs root and the device folder (`/sys`, `/dev`); tests give
/// a fake tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSearch {
    pub sys: PathBuf,
    pub dev: PathBuf,
}

impl Default for PortSearch {
    fn default() -> Self {
        PortSearch {
            sys: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
        }
    }
}

/// A SIM's daily self-test: a text to a number that comes back to the box, which must come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfTest {
    /// Where the text goes (`modem.self_test.to`): this SIM's own number, or another modem's.
    pub to: E164,
    /// When, UK time (`modem.self_test.at`).
    pub at: chrono::NaiveTime,
    /// How long it has to come back (`modem.self_test.timeout_minutes`).
    pub timeout: std::time::Duration,
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
            recipient_cap: defaults::recipient_cap(),
            refused_recheck: std::time::Duration::from_secs(
                u64::from(defaults::refused_recheck_minutes()) * 60,
            ),
            off_network_cycle: Some(std::time::Duration::from_secs(
                u64::from(defaults::off_network_minutes()) * 60,
            )),
            imei: None,
            iccid: None,
            balance: None,
            self_test: None,
            usb_serial: None,
            search: PortSearch::default(),
            ussd_timeout: defaults::USSD_TIMEOUT,
        }
    }
}

fn account_view(account: &raw::RawSipAccount) -> sip::RawAccountView<'_> {
    sip::RawAccountView {
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
    pub allow: Vec<crate::domain::Cidr>,
    pub max_ring: std::time::Duration,
    pub final_response: crate::domain::FinalResponse,
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
    pub llm: Option<llm::LlmSettings>,
    /// The morning summary of yesterday; `None`: none is sent.
    pub summary: Option<Summary>,
}

/// `[profile.summary]`: when the morning summary goes, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// UK local time of day (Europe/London: GMT in winter, BST in summer).
    pub at: chrono::NaiveTime,
    /// Also by SMS to the recipients' `sms` channels (email always).
    pub sms: bool,
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
    /// How long a call-back notice to this recipient waits for more untexted calls before it
    /// goes (zero: each call at once).
    pub call_back_gather: std::time::Duration,
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
    /// The channel's kind, as the store keeps it.
    pub fn kind(&self) -> ChannelKind {
        match self {
            Channel::Email(_) => ChannelKind::Email,
            Channel::Sms(_) => ChannelKind::Sms,
            Channel::WhatsApp(_) => ChannelKind::WhatsApp,
            Channel::Webhook(_) => ChannelKind::Webhook,
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
    let read = read::read_raw(text).map_err(|failure| match failure {
        read::ReadFailure::Syntax(problem) => Error::Syntax {
            path: path.to_path_buf(),
            problem,
        },
        read::ReadFailure::Stuck(problems) => Error::Invalid {
            path: path.to_path_buf(),
            problems,
        },
    })?;
    let read::Read {
        raw,
        mut problems,
        replaced,
    } = read;
    match validate::validate(raw) {
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
pub(crate) fn is_at_or_under(path: &str, key: &str) -> bool {
    path.strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

#[cfg(test)]
pub(crate) mod tests {
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
    fn the_box_is_named_by_its_host_unless_box_name_is_set() {
        let config = parse(MINIMAL, Path::new("test.toml")).unwrap().config;
        assert_eq!(Some(config.box_name), defaults::box_name());
        let text = format!("[box]\nname = \"shop-1\"\n{MINIMAL}");
        let config = parse(&text, Path::new("test.toml")).unwrap().config;
        assert_eq!(config.box_name, "shop-1");
        for bad in ["", "shop 1", "shop/1", "café", &"x".repeat(64)] {
            let text = format!("[box]\nname = {bad:?}\n{MINIMAL}");
            let got = problems(&text);
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].path, "box.name");
            assert!(
                got[0].message.contains("letters, digits, '.', '-' or '_'"),
                "{}",
                got[0].message
            );
        }
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
    fn the_balance_check_is_optional_and_checked() {
        let config = parse(MINIMAL, Path::new("test.toml")).unwrap().config;
        assert_eq!(config.modems[0].balance, None);
        let with = |keys: &str| {
            MINIMAL.replace(
                "port = \"/dev/null\"",
                &format!("port = \"/dev/null\"\n{keys}"),
            )
        };
        let config = parse(&with("balance_ussd = \"*#10#\""), Path::new("test.toml"))
            .unwrap()
            .config;
        assert_eq!(
            config.modems[0].balance,
            Some(BalanceCheck {
                code: "*#10#".to_string(),
                low_pence: 200,
                interval: std::time::Duration::from_secs(24 * 3600),
            })
        );
        let config = parse(
            &with("balance_ussd = \"*100#\"\nbalance_low = 0.5\nbalance_check_hours = 6"),
            Path::new("test.toml"),
        )
        .unwrap()
        .config;
        assert_eq!(
            config.modems[0].balance.as_ref().map(|b| b.low_pence),
            Some(50)
        );
        for (keys, path, says) in [
            (
                "balance_ussd = \"10\"",
                "modem[0].balance_ussd",
                "is not a USSD code",
            ),
            (
                "balance_ussd = \"*1 0#\"",
                "modem[0].balance_ussd",
                "is not a USSD code",
            ),
            (
                "balance_low = 2.0",
                "modem[0].balance_low",
                "without modem.balance_ussd",
            ),
            (
                "balance_ussd = \"*#10#\"\nbalance_low = -1.0",
                "modem[0].balance_low",
                "from 0 to 1000",
            ),
            (
                "balance_ussd = \"*#10#\"\nbalance_check_hours = 0",
                "modem[0].balance_check_hours",
                "not 1 to 168",
            ),
        ] {
            let got = problems(&with(keys));
            assert_eq!(got.len(), 1, "{keys}: {got:?}");
            assert_eq!(got[0].path, path, "{keys}");
            assert!(got[0].message.contains(says), "{keys}: {}", got[0].message);
        }
    }

    #[test]
    fn the_self_test_is_optional_and_checked() {
        let with = |keys: &str| {
            MINIMAL.replace(
                "port = \"/dev/null\"",
                &format!("port = \"/dev/null\"\n{keys}"),
            )
        };
        let config = parse(
            &with("self_test = { to = \"07700 900999\" }"),
            Path::new("test.toml"),
        )
        .unwrap()
        .config;
        let test = config.modems[0].self_test.clone().unwrap();
        assert_eq!(test.to.as_str(), "+447700900999");
        assert_eq!(test.at, chrono::NaiveTime::from_hms_opt(4, 0, 0).unwrap());
        assert_eq!(test.timeout, std::time::Duration::from_secs(600));
        for (keys, path, says) in [
            ("self_test = { to = \"12\" }", "modem[0].self_test.to", ""),
            (
                "self_test = { to = \"07700900999\", at = \"4am\" }",
                "modem[0].self_test.at",
                "is not a time of day",
            ),
            (
                "self_test = { to = \"07700900999\", timeout_minutes = 0 }",
                "modem[0].self_test.timeout_minutes",
                "is not 1 to 120",
            ),
            (
                "self_test = { to = \"07700900999\", when = \"04:00\" }",
                "modem[0].self_test.when",
                "unknown field",
            ),
        ] {
            let got = problems(&with(keys));
            assert_eq!(got.len(), 1, "{keys}: {got:?}");
            assert_eq!(got[0].path, path, "{keys}");
            assert!(got[0].message.contains(says), "{keys}: {}", got[0].message);
        }
    }

    #[test]
    fn a_modem_may_be_bound_by_usb_serial() {
        let with = |keys: &str| {
            MINIMAL.replace(
                "port = \"/dev/null\"",
                &format!("port = \"/dev/null\"\n{keys}"),
            )
        };
        let config = parse(
            &with("usb_serial = \"0123456789ABCDEF\""),
            Path::new("t.toml"),
        )
        .unwrap()
        .config;
        assert_eq!(
            config.modems[0].usb_serial.as_deref(),
            Some("0123456789ABCDEF")
        );
        // Two modems bound by USB serial may leave `port` at its default; not one serial twice.
        let two = format!(
            "{}\n[[modem]]\nid = \"b\"\nusb_serial = \"0123456789ABCDEF\"\n",
            with("usb_serial = \"0123456789ABCDEE\"").replace("port = \"/dev/null\"\n", "")
        );
        assert_eq!(
            parse(&two, Path::new("t.toml"))
                .unwrap()
                .config
                .modems
                .len(),
            2
        );
        let same = two.replace("ABCDEE", "ABCDEF");
        let got = problems(&same);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].path, "modem[1].usb_serial");
        for bad in ["", "has space", &"x".repeat(65)] {
            let got = problems(&with(&format!("usb_serial = {bad:?}")));
            assert_eq!(got.len(), 1, "{bad}: {got:?}");
            assert_eq!(got[0].path, "modem[0].usb_serial");
            assert!(
                got[0].message.contains("textback modem list"),
                "{}",
                got[0].message
            );
        }
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
    fn call_back_gather_is_per_recipient_and_named_when_wrong() {
        let recipients = r#"
[[profile.recipient]]
name = "Owner"
sms = "+447700900456"

[[profile.recipient]]
name = "Office"
email = "office@acme.example"
call_back_gather = "0s"
"#;
        let config = parse(&format!("{MINIMAL}{recipients}"), Path::new("test.toml"))
            .unwrap()
            .config;
        let gathers: Vec<u64> = config.profiles[0]
            .recipients
            .iter()
            .map(|r| r.call_back_gather.as_secs())
            .collect();
        assert_eq!(gathers, [300, 0]);
        let got = problems(&format!(
            "{MINIMAL}{}",
            recipients.replace("\"0s\"", "\"5 minutes\"")
        ));
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0].path, "profile[0].recipient[1].call_back_gather");
        assert!(got[0].message.contains("\"5m\""), "{}", got[0].message);
    }

    #[test]
    fn the_morning_summary_has_a_uk_time_of_day() {
        let with = |summary: &str| {
            format!(
                "{MINIMAL}\n[[profile.recipient]]\nname = \"Owner\"\nemail = \"owner@acme.example\"\n\n[profile.summary]\n{summary}\n"
            )
        };
        let config = parse(&with("at = \"07:30\""), Path::new("test.toml"))
            .unwrap()
            .config;
        assert_eq!(
            config.profiles[0].summary,
            Some(Summary {
                at: chrono::NaiveTime::from_hms_opt(7, 30, 0).unwrap(),
                sms: false
            })
        );
        assert_eq!(
            parse(MINIMAL, Path::new("test.toml"))
                .unwrap()
                .config
                .profiles[0]
                .summary,
            None
        );
        let got = problems(&with("at = \"7.30am\"\nsms = true"));
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0].path, "profile[0].summary.at");
        assert!(got[0].message.contains("HH:MM"), "{}", got[0].message);
        let got = problems(&with("at = \"07:30\"\nemail = true"));
        assert!(got[0].message.contains("email"), "{got:#?}");
        // Nobody to send it to: a warning naming the section.
        let loaded = parse(
            &format!("{MINIMAL}\n[profile.summary]\nat = \"07:30\"\n"),
            Path::new("test.toml"),
        )
        .unwrap();
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.path == "profile[0].summary"),
            "{:#?}",
            loaded.warnings
        );
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
            include_str!("../../config/textback.example.toml"),
            Path::new("example"),
        )
        .unwrap();
        assert!(!loaded.config.profiles.is_empty());
    }

    #[test]
    fn demo_config_parses_without_warnings_about_length() {
        let loaded = parse(include_str!("../../config/demo.toml"), Path::new("demo")).unwrap();
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
