//! `[[profile]]`: the business, its numbers and policy, its questions and texts, its hours; the
//! recipients are in `recipients.rs`.

use super::recipients::recipients;
use super::*;

pub(super) fn profiles(
    check: &mut Checker,
    raw: &[RawProfile],
    limits: &RawLimits,
    ids: &[Option<ProfileId>],
    known: &Known<'_>,
    notify: &Notify,
) -> Vec<Profile> {
    let mut profiles = Vec::new();
    let mut number_owner: HashMap<E164, String> = HashMap::new();
    for (i, (profile, id)) in raw.iter().zip(ids).enumerate() {
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
                box_hour: Some(limits.texts_per_hour),
                box_day: Some(limits.texts_per_day),
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
            Some(raw) => match super::super::llm::LlmSettings::from_config(raw) {
                Ok(settings) => Some(settings),
                Err(super::super::llm::LlmConfigError { key, problem }) => {
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
            Some(name) if !known.modems.contains(&name.as_str()) => {
                check.error(
                    path("modem"),
                    format!(
                        "no modem has id {name:?}; the modems are: {}",
                        quoted(&known.modems)
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
            warn_length(check, &path("first_message"), &sample);
        }
        for (j, question) in questions.iter().enumerate() {
            warn_length(
                check,
                &format!("profile[{i}].question[{j}].ask"),
                &question.ask,
            );
        }

        let recipients = recipients(check, i, profile, &questions, notify);
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
                check,
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
            let summary = summary(check, i, profile, &recipients);
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
                summary,
            });
        }
    }

    profiles
}

/// `[profile.summary]`: its time of day, and a warning when nobody would get it.
fn summary(
    check: &mut Checker,
    i: usize,
    profile: &RawProfile,
    recipients: &[Recipient],
) -> Option<Summary> {
    let raw = profile.summary.as_ref()?;
    let Ok(at) = chrono::NaiveTime::parse_from_str(raw.at.trim(), "%H:%M") else {
        check.error(
            format!("profile[{i}].summary.at"),
            format!(
                "{:?} is not a time of day: write HH:MM in UK time, e.g. \"07:30\"",
                raw.at
            ),
        );
        return None;
    };
    let reached = recipients.iter().any(|recipient| {
        recipient.channels.iter().any(|channel| match channel {
            Channel::Email(_) => true,
            Channel::Sms(_) => raw.sms,
            Channel::WhatsApp(_) | Channel::Webhook(_) => false,
        })
    });
    if !reached {
        check.warn(
            format!("profile[{i}].summary"),
            "no recipient of this profile has an email channel (or an sms one, with sms = true): nobody gets the summary",
        );
    }
    Some(Summary { at, sms: raw.sms })
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
