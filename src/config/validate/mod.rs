//! Validates the raw config into [`Config`], one section per module: every value checked,
//! every reference between sections resolved, each problem reported under its key path.

use std::collections::HashMap;

use super::raw::*;
use super::*;
use crate::core::template::Template;
use crate::domain::{E164, ModemId, ProfileId, QuestionId, Secret};

mod dashboard;
mod modems;
mod notify;
mod profiles;
mod recipients;
mod sip_accounts;
mod this_box;

pub use profiles::sample_first_message;

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

/// The ids each section declares, for the references between sections.
struct Known<'a> {
    profiles: Vec<&'a str>,
    modems: Vec<&'a str>,
}

impl Known<'_> {
    /// The profile a `profile = "..."` key names, if there is one by that id.
    fn profile(
        &self,
        check: &mut Checker,
        path: String,
        name: &Option<String>,
    ) -> Option<ProfileId> {
        let name = name.as_ref()?;
        if !self.profiles.contains(&name.as_str()) {
            check.error(
                path,
                format!(
                    "no profile has id {name:?}; the profiles are: {}",
                    quoted(&self.profiles)
                ),
            );
            return None;
        }
        ProfileId::parse(name).ok()
    }
}

pub(super) fn validate(raw: RawConfig) -> Result<Loaded, Vec<Problem>> {
    let mut check = Checker::default();
    let box_name = this_box::box_name(&mut check, raw.this_box.name);
    let (listen, public_url, trusted_proxy) = dashboard::dashboard(&mut check, &raw.dashboard);
    let notify = notify::notify(&mut check, raw.notify);
    dashboard::storage(&mut check, &raw.storage);

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

    let known = Known {
        profiles: raw.profiles.iter().map(|p| p.id.as_str()).collect(),
        modems: raw.modems.iter().map(|m| m.id.as_str()).collect(),
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

    // A modem bound by USB serial is found under any name: its `port` (often left at the default)
    // is only a first guess, and two such modems may share it.
    let ports: Vec<String> = raw
        .modems
        .iter()
        .enumerate()
        .map(|(i, m)| match &m.usb_serial {
            Some(_) => format!("\u{0}usb_serial {i}"),
            None => m.port.to_str().unwrap_or("").to_string(),
        })
        .collect();
    duplicates(
        &mut check,
        "modem",
        "port",
        ports.iter().map(String::as_str),
    );
    let serials: Vec<String> = raw
        .modems
        .iter()
        .enumerate()
        .map(|(i, m)| match &m.usb_serial {
            Some(serial) => serial.clone(),
            None => format!("\u{0}no serial {i}"),
        })
        .collect();
    duplicates(
        &mut check,
        "modem",
        "usb_serial",
        serials.iter().map(String::as_str),
    );

    let modems = modems::modems(&mut check, &raw.modems, &modem_ids, &known);
    let sip_accounts = sip_accounts::sip_accounts(&mut check, &raw.sip_accounts, &known);
    let profiles = profiles::profiles(
        &mut check,
        &raw.profiles,
        &raw.limits,
        &profile_ids,
        &known,
        &notify,
    );

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
