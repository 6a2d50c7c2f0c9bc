//! Validates the raw config into [`Config`]: every value checked, every reference between
//! sections resolved, each problem reported under its key path.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::raw::*;
use super::*;
use crate::core::template::Template;
use crate::domain::{E164, ModemId, ProfileId, QuestionId, Secret};

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

pub(super) fn validate(raw: RawConfig) -> Result<Loaded, Vec<Problem>> {
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
    let box_name = validate_box_name(&mut check, raw.this_box.name);
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
        let sip = super::sip::check_account(account_view(account), &path);
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
    for (key, message) in super::sip::check_ports(&sip_accounts) {
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
            Some(raw) => match super::llm::LlmSettings::from_config(raw) {
                Ok(settings) => Some(settings),
                Err(super::llm::LlmConfigError { key, problem }) => {
                    let key = key.strip_prefix("profile.").unwrap_or(key);
                    check.error(format!("profile[{i}].{key}"), problem);
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
            box_name,
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

/// The longest box name: a DNS label's length.
const MAX_BOX_NAME: usize = 63;

/// `box.name`, or the host name: 1 to 63 ASCII letters, digits, '.', '-' and '_', so that it can
/// stand as it is in an idempotency key, a JSON payload and a Prometheus label.
fn validate_box_name(check: &mut Checker, name: Option<String>) -> String {
    let (name, from_host) = match name {
        Some(name) => (name, false),
        None => match defaults::box_name() {
            Some(host) => (host, true),
            None => {
                check.error(
                    "box.name",
                    "not set, and this system's host name cannot be read: set box.name (e.g. \"shop-1\")",
                );
                return String::new();
            }
        },
    };
    let valid = !name.is_empty()
        && name.len() <= MAX_BOX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !valid {
        let what = if from_host {
            format!("not set, and the host name {name:?} cannot name this box")
        } else {
            format!("{name:?} cannot name this box")
        };
        check.error(
            "box.name",
            format!(
                "{what}: use 1 to {MAX_BOX_NAME} letters, digits, '.', '-' or '_' (e.g. \"shop-1\")"
            ),
        );
    }
    name
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
