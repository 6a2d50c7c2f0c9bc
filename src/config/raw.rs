//! What serde reads from the config file: raw values, checked by `validate`. Unknown keys are
//! errors everywhere.

use std::path::PathBuf;

use serde::Deserialize;

use super::defaults;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// `[box]` (`box` is a Rust keyword).
    #[serde(default, rename = "box")]
    pub(super) this_box: RawBox,
    #[serde(default)]
    pub(super) storage: RawStorage,
    #[serde(default)]
    pub(super) dashboard: RawDashboard,
    #[serde(default)]
    pub(super) notify: RawNotify,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default, rename = "modem")]
    pub(super) modems: Vec<RawModem>,
    #[serde(default, rename = "sip")]
    pub(super) sip_accounts: Vec<RawSipAccount>,
    #[serde(default, rename = "profile")]
    pub(super) profiles: Vec<RawProfile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBox {
    /// Default: the system's host name ([`defaults::box_name`]).
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    #[serde(default = "defaults::database")]
    pub(super) database: PathBuf,
    #[serde(default = "defaults::retention_days")]
    pub(super) retention_days: u32,
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
pub(super) struct RawDashboard {
    #[serde(default = "defaults::dashboard_listen")]
    pub(super) listen: String,
    #[serde(default)]
    pub(super) public_url: Option<String>,
    #[serde(default)]
    pub(super) trusted_proxy: Option<String>,
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
pub(super) struct RawLimits {
    #[serde(default = "defaults::box_texts_per_hour")]
    pub(super) texts_per_hour: u32,
    #[serde(default = "defaults::box_texts_per_day")]
    pub(super) texts_per_day: u32,
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
pub(super) struct RawNotify {
    #[serde(default = "defaults::link_valid_days")]
    pub(super) link_valid_days: u32,
    #[serde(default = "defaults::give_up_after_hours")]
    pub(super) give_up_after_hours: u32,
    #[serde(default = "defaults::late_replies")]
    pub(super) late_replies: bool,
    #[serde(default)]
    pub(super) email: Option<RawEmail>,
    #[serde(default)]
    pub(super) whatsapp: Option<RawWhatsApp>,
    #[serde(default)]
    pub(super) webhook: RawWebhook,
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
pub(super) struct RawEmail {
    pub(super) host: String,
    #[serde(default)]
    pub(super) port: Option<u16>,
    #[serde(default = "defaults::smtp_security")]
    pub(super) security: String,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) password: Option<String>,
    pub(super) from: String,
    /// A PEM file of certificate authorities to trust besides the built-in ones (a relay on the
    /// LAN with its own certificate).
    #[serde(default)]
    pub(super) ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWhatsApp {
    pub(super) phone_number_id: String,
    pub(super) token: String,
    #[serde(default)]
    pub(super) template: Option<String>,
    #[serde(default = "defaults::whatsapp_language")]
    pub(super) language: String,
    #[serde(default = "defaults::whatsapp_base_url")]
    pub(super) base_url: String,
    #[serde(default = "defaults::whatsapp_api_version")]
    pub(super) api_version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    #[serde(default)]
    pub(super) secret: Option<String>,
    #[serde(default = "defaults::http_timeout_seconds")]
    pub(super) timeout_seconds: u32,
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
pub(super) struct RawModem {
    pub(super) id: String,
    #[serde(default = "defaults::modem_port")]
    pub(super) port: PathBuf,
    #[serde(default)]
    pub(super) pin: Option<String>,
    #[serde(default)]
    pub(super) profile: Option<String>,
    #[serde(default)]
    pub(super) smsc: Option<String>,
    #[serde(default = "defaults::baud")]
    pub(super) baud: u32,
    #[serde(default = "defaults::hangup_after_rings")]
    pub(super) hangup_after_rings: u32,
    #[serde(default = "defaults::status_reports")]
    pub(super) status_reports: bool,
    #[serde(default = "defaults::recipient_cap")]
    pub(super) recipient_cap: u32,
    #[serde(default = "defaults::refused_recheck_minutes")]
    pub(super) refused_recheck_minutes: u32,
    #[serde(default = "defaults::off_network_minutes")]
    pub(super) off_network_minutes: u32,
    #[serde(default)]
    pub(super) imei: Option<String>,
    #[serde(default)]
    pub(super) iccid: Option<String>,
    #[serde(default)]
    pub(super) balance_ussd: Option<String>,
    #[serde(default)]
    pub(super) balance_low: Option<f64>,
    #[serde(default = "defaults::balance_check_hours")]
    pub(super) balance_check_hours: u32,
    #[serde(default)]
    pub(super) self_test: Option<RawSelfTest>,
    #[serde(default)]
    pub(super) usb_serial: Option<String>,
}

/// `[modem.self_test]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelfTest {
    pub(super) to: String,
    #[serde(default = "defaults::self_test_at")]
    pub(super) at: String,
    #[serde(default = "defaults::self_test_timeout_minutes")]
    pub(super) timeout_minutes: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSipAccount {
    pub(super) name: String,
    pub(super) registrar: String,
    pub(super) username: String,
    pub(super) password: String,
    #[serde(default)]
    pub(super) domain: Option<String>,
    #[serde(default = "defaults::sip_port")]
    pub(super) local_port: u16,
    #[serde(default)]
    pub(super) profile: Option<String>,
    #[serde(default = "defaults::sip_listen")]
    pub(super) listen: Vec<String>,
    #[serde(default = "defaults::sip_register")]
    pub(super) register: bool,
    #[serde(default = "defaults::sip_transport")]
    pub(super) transport: String,
    #[serde(default)]
    pub(super) outbound_proxy: Option<String>,
    #[serde(default)]
    pub(super) auth_username: Option<String>,
    #[serde(default)]
    pub(super) contact_user: Option<String>,
    #[serde(default = "defaults::sip_expires")]
    pub(super) expires: u32,
    #[serde(default = "defaults::sip_keepalive")]
    pub(super) keepalive: String,
    #[serde(default = "defaults::sip_keepalive_seconds")]
    pub(super) keepalive_seconds: u32,
    #[serde(default)]
    pub(super) allow: Vec<String>,
    #[serde(default = "defaults::sip_max_ring_seconds")]
    pub(super) max_ring_seconds: u32,
    #[serde(default = "defaults::sip_final_response")]
    pub(super) final_response: u16,
    #[serde(default = "defaults::sip_max_requests_per_second")]
    pub(super) max_requests_per_second: u32,
    #[serde(default = "defaults::sip_max_invites_per_second")]
    pub(super) max_invites_per_second: u32,
    #[serde(default = "defaults::sip_max_ringing_calls")]
    pub(super) max_ringing_calls: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub(super) id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) numbers: Vec<String>,
    #[serde(default)]
    pub(super) default: bool,
    #[serde(default)]
    pub(super) modem: Option<String>,
    #[serde(default = "defaults::first_message")]
    pub(super) first_message: String,
    #[serde(default = "defaults::closing_message")]
    pub(super) closing_message: String,
    #[serde(default = "defaults::opt_out_message")]
    pub(super) opt_out_message: String,
    #[serde(default = "defaults::opt_in_message")]
    pub(super) opt_in_message: String,
    #[serde(default = "defaults::text_kinds")]
    pub(super) text_kinds: Vec<String>,
    #[serde(default)]
    pub(super) allow_numbers: Vec<String>,
    #[serde(default)]
    pub(super) staff_numbers: Vec<String>,
    #[serde(default = "defaults::cooldown_hours")]
    pub(super) cooldown_hours: u32,
    /// Seconds to hold the first text, for a business that wants to call back first.
    #[serde(default)]
    pub(super) first_text_delay_seconds: u32,
    /// The optional local model that reads replies.
    #[serde(default)]
    pub(super) llm: Option<super::llm::LlmConfig>,
    #[serde(default)]
    pub(super) texts_per_hour: Option<u32>,
    #[serde(default)]
    pub(super) texts_per_day: Option<u32>,
    /// How to reach the business, for HELP.
    #[serde(default)]
    pub(super) contact: Option<String>,
    #[serde(default)]
    pub(super) hours: Option<RawHours>,
    #[serde(default)]
    pub(super) out_of_hours_message: Option<String>,
    #[serde(default)]
    pub(super) max_questions_per_message: Option<usize>,
    #[serde(default)]
    pub(super) max_turns: Option<u32>,
    #[serde(default)]
    pub(super) silence_minutes: Option<u32>,
    #[serde(default, rename = "answer")]
    pub(super) answers: Vec<RawCanned>,
    #[serde(default, rename = "question")]
    pub(super) questions: Option<Vec<RawQuestion>>,
    #[serde(default, rename = "recipient")]
    pub(super) recipients: Vec<RawRecipient>,
    /// The morning summary of yesterday, off without this section.
    #[serde(default)]
    pub(super) summary: Option<RawSummary>,
}

/// `[profile.summary]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSummary {
    /// UK local time of day, "HH:MM".
    pub(super) at: String,
    /// Also by SMS to recipients with an `sms` channel.
    #[serde(default)]
    pub(super) sms: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuestion {
    pub(super) id: String,
    pub(super) ask: String,
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) options: Vec<String>,
    #[serde(default = "default_true")]
    pub(super) required: bool,
}

pub(super) fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHours {
    #[serde(default)]
    pub(super) monday: Option<String>,
    #[serde(default)]
    pub(super) tuesday: Option<String>,
    #[serde(default)]
    pub(super) wednesday: Option<String>,
    #[serde(default)]
    pub(super) thursday: Option<String>,
    #[serde(default)]
    pub(super) friday: Option<String>,
    #[serde(default)]
    pub(super) saturday: Option<String>,
    #[serde(default)]
    pub(super) sunday: Option<String>,
    #[serde(default)]
    pub(super) holidays: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanned {
    pub(super) keywords: Vec<String>,
    pub(super) answer: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecipient {
    pub(super) name: String,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) sms: Option<String>,
    #[serde(default)]
    pub(super) whatsapp: Option<String>,
    #[serde(default)]
    pub(super) webhook: Option<String>,
    #[serde(default)]
    pub(super) when: Option<RawRoute>,
    /// `false`: not told of replies after the lead, whatever `notify.late_replies` says.
    #[serde(default)]
    pub(super) late_replies: Option<bool>,
    /// How long a call-back notice gathers more calls ("5m", "90s", "0s": each call at once).
    #[serde(default = "defaults::call_back_gather")]
    pub(super) call_back_gather: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) question: String,
    pub(super) contains: Vec<String>,
}
