//! `textback init`: writes a first config by asking the installer the few things that matter,
//! and for each way leads leave the box what that way needs (the SMTP relay for email, the URL for
//! a webhook), a SIP account for a business with a trunk or PBX, and at the end a test email and a
//! test SMS. Every question has a flag, so a scripted install asks nothing (`--yes` takes the
//! defaults for the rest). The result is validated with the same code as `config check` before
//! it is written, and written readable by the service only (it may hold passwords).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::config::{self, Config};
use crate::domain::E164;

/// The example config the package installs as /etc/textback/textback.toml: init replaces it
/// without --force, since nobody has edited it yet.
const PACKAGED_EXAMPLE: &str = include_str!("../../config/textback.example.toml");

/// How long the test SMS waits for its delivery report.
const TEST_SMS_WAIT: Duration = Duration::from_secs(60);
/// How long each step of the test email may take.
const TEST_EMAIL_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the config.
    #[arg(long, short, default_value = crate::cli::args::DEFAULT_CONFIG)]
    output: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    force: bool,
    /// Ask nothing: take the defaults for what the flags do not give.
    #[arg(long, short)]
    yes: bool,
    /// The business name callers know.
    #[arg(long)]
    business: Option<String>,
    /// A business phone number whose missed calls come here (repeat for several).
    #[arg(long = "number")]
    numbers: Vec<String>,
    /// A question to ask callers, in order (repeat; default: name, then reason).
    #[arg(long = "question")]
    questions: Vec<String>,
    /// Email address that receives leads.
    #[arg(long)]
    email: Option<String>,
    /// The SMTP server lead emails leave through (your provider's, or a relay on the LAN).
    #[arg(long)]
    smtp_host: Option<String>,
    /// How the SMTP connection is protected: starttls (587), tls (465) or none (a relay on this
    /// box or the LAN, 25).
    #[arg(long)]
    smtp_security: Option<String>,
    /// The SMTP port (default: the usual one for --smtp-security).
    #[arg(long)]
    smtp_port: Option<u16>,
    /// The SMTP login's user name (none: the relay needs no login).
    #[arg(long)]
    smtp_username: Option<String>,
    /// The SMTP login's password.
    #[arg(long, env = "TEXTBACK_SMTP_PASSWORD", hide_env_values = true)]
    smtp_password: Option<String>,
    /// The sender of lead emails, "Name <address>" or an address the SMTP server accepts.
    #[arg(long)]
    email_from: Option<String>,
    /// Mobile number that receives leads by SMS.
    #[arg(long)]
    sms: Option<String>,
    /// A URL that receives each lead as a signed JSON POST.
    #[arg(long)]
    webhook: Option<String>,
    /// The SIP registrar of the business's trunk or PBX (host or host:port); with it, textback
    /// registers as an extension that unanswered calls are diverted to.
    #[arg(long)]
    sip_registrar: Option<String>,
    /// The SIP account's user name.
    #[arg(long)]
    sip_username: Option<String>,
    /// The SIP account's password.
    #[arg(long, env = "TEXTBACK_SIP_PASSWORD", hide_env_values = true)]
    sip_password: Option<String>,
    /// The modem's AT port (default: the one found on USB, else /dev/textback-modem).
    #[arg(long)]
    modem_port: Option<PathBuf>,
    /// The SIM's PIN, if it has one.
    #[arg(long)]
    pin: Option<String>,
    /// The database path.
    #[arg(long, default_value_os_t = config::defaults::database())]
    database: PathBuf,
    /// After writing, send a test email to the lead address (asked when interactive).
    #[arg(long)]
    test_email: bool,
    /// After writing, send a test SMS through the modem to this number (asked when interactive).
    #[arg(long)]
    test_sms: Option<String>,
}

/// How the SMTP connection is protected, as `notify.email.security` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    Tls,
    None,
}

impl SmtpSecurity {
    fn parse(text: &str) -> Option<SmtpSecurity> {
        match text.trim().to_ascii_lowercase().as_str() {
            "starttls" | "587" => Some(SmtpSecurity::StartTls),
            "tls" | "ssl" | "465" => Some(SmtpSecurity::Tls),
            "none" | "plain" | "25" => Some(SmtpSecurity::None),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SmtpSecurity::StartTls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::None => "none",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::StartTls => config::defaults::smtp_port(),
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

/// The SMTP server lead emails leave through (`[notify.email]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// The login, if the server wants one: (user name, password).
    pub login: Option<(String, String)>,
    pub from: String,
}

/// A SIP account on the business's trunk or PBX (`[[sip]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAnswers {
    pub registrar: String,
    pub username: String,
    pub password: String,
}

/// What the config will say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub business: String,
    pub numbers: Vec<String>,
    pub questions: Vec<String>,
    pub email: Option<String>,
    /// How lead emails leave the box; `None` with an email recipient leaves them pending.
    pub relay: Option<Relay>,
    pub sms: Option<String>,
    pub webhook: Option<String>,
    /// The key webhook requests are signed with, made here when a webhook is given.
    pub webhook_secret: Option<String>,
    pub sip: Option<SipAnswers>,
    pub modem_port: PathBuf,
    pub pin: Option<String>,
    pub database: PathBuf,
}

/// The tests to run once the config is written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Tests {
    email: bool,
    sms: Option<String>,
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    if args.output.exists() && !args.force && !is_packaged_example(&args.output) {
        bail!(
            "{} exists already: edit it, or run again with --force to replace it",
            args.output.display()
        );
    }
    let interactive = !args.yes && std::io::stdin().is_terminal();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut prompter = Prompter {
        interactive,
        input: &mut input,
    };
    let answers = gather(&args, &mut prompter)?;
    let text = render(&answers);
    // The same validation as `config check` and the daemon.
    let loaded = config::parse(&text, &args.output)
        .context("the config init would write does not validate")?;
    write_config(&args.output, &text)?;
    println!("wrote {}", args.output.display());
    for warning in &loaded.warnings {
        println!("warning: {warning}");
    }
    if let Some(secret) = &answers.webhook_secret {
        println!(
            "webhook requests are signed with notify.webhook.secret = {secret} (in {}): give it to whoever receives them, so they can check X-Textback-Signature",
            args.output.display()
        );
    }
    let tests = ask_tests(&args, &answers, &mut prompter)?;
    let mut tests_passed = true;
    if tests.email || tests.sms.is_some() {
        let runtime = super::runtime()?;
        if tests.email {
            tests_passed &= runtime.block_on(test_email(&loaded.config, &args.output));
        }
        if let Some(to) = &tests.sms {
            tests_passed &= runtime.block_on(test_sms(&loaded.config, to));
        }
    }
    println!(
        "next: `sudo -u textback textback doctor --config {}` checks the box, then `sudo systemctl enable --now textback`",
        args.output.display()
    );
    if !tests_passed {
        println!(
            "(a test above did not pass: the config is written; fix what it says, then try again with `textback init --force`, or edit {})",
            args.output.display()
        );
    }
    Ok(())
}

/// Whether `path` is the example config exactly as the package installed it.
fn is_packaged_example(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text == PACKAGED_EXAMPLE)
}

/// Writes the config readable by its owner and group only (it may hold the SMTP and SIP
/// passwords); as root, owned by root and group textback, as the package sets it, so that the
/// service can read it.
fn write_config(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o640))
        .with_context(|| format!("making {} readable by its group only", path.display()))?;
    // SAFETY: geteuid(2) only reads this process's effective user id; it cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root && let Some(gid) = group_id("textback") {
        std::os::unix::fs::fchown(&file, Some(0), Some(gid))
            .with_context(|| format!("giving {} to group textback", path.display()))?;
    }
    Ok(())
}

/// The id of a group from /etc/group (where the package's system group is).
fn group_id(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name))
            .then(|| fields.nth(1).and_then(|gid| gid.parse().ok()))
            .flatten()
    })
}

/// Asks the installer, or takes the defaults when nobody is there to ask.
pub struct Prompter<'a, R: BufRead> {
    pub interactive: bool,
    pub input: &'a mut R,
}

impl<R: BufRead> Prompter<'_, R> {
    /// One line; the default when blank (or when not interactive).
    pub fn ask(&mut self, question: &str, default: &str) -> anyhow::Result<String> {
        if !self.interactive {
            return Ok(default.to_string());
        }
        let mut stderr = std::io::stderr();
        if default.is_empty() {
            write!(stderr, "{question}: ")?;
        } else {
            write!(stderr, "{question} [{default}]: ")?;
        }
        stderr.flush()?;
        let mut line = String::new();
        self.input.read_line(&mut line)?;
        let line = line.trim();
        Ok(if line.is_empty() {
            default.to_string()
        } else {
            line.to_string()
        })
    }

    /// A password: not echoed when typed on a terminal.
    fn ask_secret(&mut self, question: &str) -> anyhow::Result<String> {
        use nix::sys::termios::{self, LocalFlags, SetArg};
        if !self.interactive {
            return Ok(String::new());
        }
        eprint!("{question} (not shown): ");
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok();
        if let Some(saved) = &saved {
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
        }
        let mut line = String::new();
        let read = self.input.read_line(&mut line);
        if let Some(saved) = &saved {
            let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, saved);
        }
        eprintln!();
        read.context("reading the password")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// A yes or no; `default` when blank (or when not interactive).
    fn confirm(&mut self, question: &str, default: bool) -> anyhow::Result<bool> {
        if !self.interactive {
            return Ok(default);
        }
        loop {
            let mut stderr = std::io::stderr();
            write!(
                stderr,
                "{question} [{}]: ",
                if default { "Y/n" } else { "y/N" }
            )?;
            stderr.flush()?;
            let mut line = String::new();
            self.input.read_line(&mut line)?;
            match line.trim().to_ascii_lowercase().as_str() {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => eprintln!("  please answer y or n"),
            }
        }
    }

    /// An optional answer: `None` when blank.
    fn optional(&mut self, question: &str) -> anyhow::Result<Option<String>> {
        Ok(Some(self.ask(question, "")?).filter(|a| !a.is_empty()))
    }
}

/// Fills in what the flags did not give, asking when interactive.
pub fn gather<R: BufRead>(
    args: &InitArgs,
    prompter: &mut Prompter<'_, R>,
) -> anyhow::Result<Answers> {
    let interactive = prompter.interactive;
    let business = match &args.business {
        Some(business) => business.clone(),
        None => loop {
            let answer = prompter.ask("Business name, as callers know it", "")?;
            if !answer.is_empty() {
                break answer;
            }
            if !interactive {
                bail!("--business is needed with --yes (the name every text starts with)");
            }
        },
    };
    let numbers = if !args.numbers.is_empty() {
        args.numbers.clone()
    } else {
        loop {
            let answer = prompter.ask(
                "The business's phone number(s), comma-separated (blank if none)",
                "",
            )?;
            let numbers: Vec<String> = answer
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect();
            match numbers.iter().find_map(|n| E164::parse(n).err()) {
                Some(err) if interactive => eprintln!("  {err}"),
                _ => break numbers,
            }
        }
    };
    let questions = if !args.questions.is_empty() {
        args.questions.clone()
    } else {
        let mut questions = Vec::new();
        if interactive {
            eprintln!(
                "Questions to ask callers, one per line; a blank line ends (blank at once: name, then reason)."
            );
            loop {
                let answer = prompter.ask(&format!("  question {}", questions.len() + 1), "")?;
                if answer.is_empty() {
                    break;
                }
                questions.push(answer);
            }
        }
        if questions.is_empty() {
            questions = config::defaults::questions()
                .iter()
                .map(|(_, q)| q.to_string())
                .collect();
        }
        questions
    };
    let email = match &args.email {
        Some(email) => Some(email.clone()),
        None => prompter.optional("Email address for leads (blank for none)")?,
    };
    let relay = match &email {
        Some(email) => gather_relay(args, prompter, &business, email)?,
        None => None,
    };
    let sms = match &args.sms {
        Some(sms) => Some(sms.clone()),
        None => prompter.optional("Mobile number for leads by SMS (blank for none)")?,
    };
    let webhook = match &args.webhook {
        Some(url) => Some(url.clone()),
        None => prompter.optional(
            "Web address (URL) that receives each lead as a JSON POST, e.g. a CRM's webhook (blank for none)",
        )?,
    };
    let webhook_secret = match &webhook {
        Some(_) => Some(
            crate::web::auth::random_token(24)
                .context("reading /dev/urandom for the webhook's signing key")?,
        ),
        None => None,
    };
    let sip = gather_sip(args, prompter)?;
    let found = find_modem_port();
    let modem_port = match &args.modem_port {
        Some(port) => port.clone(),
        None => {
            let default = found.clone().unwrap_or_else(config::defaults::modem_port);
            if interactive {
                match &found {
                    Some(port) => eprintln!("Found a modem port: {}", port.display()),
                    None => eprintln!(
                        "No USB GSM dongle is plugged in now; once it is, the package's udev rules name it /dev/textback-modem."
                    ),
                }
            }
            PathBuf::from(prompter.ask("Modem AT port", &default.to_string_lossy())?)
        }
    };
    let pin = match &args.pin {
        Some(pin) => Some(pin.clone()),
        None => prompter.optional("SIM PIN (blank if the SIM has none)")?,
    };
    Ok(Answers {
        business,
        numbers,
        questions,
        email,
        relay,
        sms,
        webhook,
        webhook_secret,
        sip,
        modem_port,
        pin,
        database: args.database.clone(),
    })
}

/// How lead emails leave the box: the SMTP server, its security and port, the login, the sender.
fn gather_relay<R: BufRead>(
    args: &InitArgs,
    prompter: &mut Prompter<'_, R>,
    business: &str,
    recipient: &str,
) -> anyhow::Result<Option<Relay>> {
    let host = match &args.smtp_host {
        Some(host) => host.clone(),
        None => {
            if prompter.interactive {
                eprintln!(
                    "  Lead emails leave this box through an SMTP server: your email provider's (e.g. smtp.gmail.com, smtp.office365.com) or a mail relay on your network."
                );
            }
            prompter.ask("  SMTP server (blank to set notify.email later)", "")?
        }
    };
    if host.is_empty() {
        return Ok(None);
    }
    let security = match &args.smtp_security {
        Some(text) => SmtpSecurity::parse(text).with_context(|| {
            format!("--smtp-security {text:?}: use starttls (587), tls (465) or none (a relay on this box or the LAN)")
        })?,
        None => loop {
            let answer = prompter.ask(
                "  Security: starttls (port 587), tls (port 465) or none (a relay on this box or the LAN, port 25)",
                "starttls",
            )?;
            match SmtpSecurity::parse(&answer) {
                Some(security) => break security,
                None => eprintln!("  {answer:?}: type starttls, tls or none"),
            }
        },
    };
    let port = match args.smtp_port {
        Some(port) => port,
        None => loop {
            let default = security.default_port().to_string();
            let answer = prompter.ask("  SMTP port", &default)?;
            match answer.parse::<u16>() {
                Ok(port) if port > 0 => break port,
                _ => eprintln!("  {answer:?} is not a port number (1 to 65535)"),
            }
        },
    };
    let username = match &args.smtp_username {
        Some(username) => Some(username.clone()),
        None if security == SmtpSecurity::None && args.smtp_password.is_none() => {
            prompter.optional("  SMTP login user name (blank: the relay needs no login)")?
        }
        None => prompter.optional("  SMTP login user name (often the mailbox's address)")?,
    };
    let login = match username {
        Some(username) => {
            let password = match &args.smtp_password {
                Some(password) => password.clone(),
                None => loop {
                    let password = prompter.ask_secret("  SMTP password")?;
                    if !password.is_empty() || !prompter.interactive {
                        break password;
                    }
                    eprintln!(
                        "  a login needs its password (an app password for Gmail or Microsoft 365)"
                    );
                },
            };
            if password.is_empty() {
                bail!("--smtp-username needs --smtp-password (or TEXTBACK_SMTP_PASSWORD)");
            }
            Some((username, password))
        }
        None => None,
    };
    let sender = login
        .as_ref()
        .map(|(username, _)| username.as_str())
        .filter(|username| username.contains('@'))
        .unwrap_or(recipient);
    let from = match &args.email_from {
        Some(from) => from.clone(),
        None => prompter.ask(
            "  Sender of lead emails (an address the SMTP server lets you send from)",
            &format!("{} leads <{sender}>", business.replace(['<', '>', '"'], "")),
        )?,
    };
    Ok(Some(Relay {
        host,
        port,
        security,
        login,
        from,
    }))
}

/// A SIP account, for a business whose trunk or PBX diverts unanswered calls to the box.
fn gather_sip<R: BufRead>(
    args: &InitArgs,
    prompter: &mut Prompter<'_, R>,
) -> anyhow::Result<Option<SipAnswers>> {
    let registrar = match &args.sip_registrar {
        Some(registrar) => registrar.clone(),
        None => {
            if !prompter.confirm(
                "Does the business have a SIP trunk or a phone system (PBX) that can divert unanswered calls to this box?",
                false,
            )? {
                return Ok(None);
            }
            eprintln!(
                "  textback registers as an extension of it that never answers; give it an extension or trunk account."
            );
            prompter.ask(
                "  SIP registrar (host or host:port of the trunk or PBX)",
                "",
            )?
        }
    };
    if registrar.is_empty() {
        return Ok(None);
    }
    let username = match &args.sip_username {
        Some(username) => username.clone(),
        None => loop {
            let answer = prompter.ask("  SIP user name (the extension or account)", "")?;
            if !answer.is_empty() {
                break answer;
            }
            if !prompter.interactive {
                bail!("--sip-registrar needs --sip-username and --sip-password");
            }
        },
    };
    let password = match &args.sip_password {
        Some(password) => password.clone(),
        None => prompter.ask_secret("  SIP password")?,
    };
    if password.is_empty() {
        bail!(
            "the SIP account needs its password (--sip-password or TEXTBACK_SIP_PASSWORD when scripted)"
        );
    }
    Ok(Some(SipAnswers {
        registrar,
        username,
        password,
    }))
}

/// Which tests to run after writing: the flags, else asked.
fn ask_tests<R: BufRead>(
    args: &InitArgs,
    answers: &Answers,
    prompter: &mut Prompter<'_, R>,
) -> anyhow::Result<Tests> {
    let mut tests = Tests {
        email: args.test_email,
        sms: args.test_sms.clone(),
    };
    if !prompter.interactive {
        return Ok(tests);
    }
    if let (Some(email), Some(_), false) = (&answers.email, &answers.relay, tests.email) {
        tests.email = prompter.confirm(&format!("Send a test email to {email} now?"), true)?;
    }
    if tests.sms.is_none() {
        let question = match &answers.sms {
            Some(number) => format!("Send a test SMS through the dongle to {number} now?"),
            None => "Send a test SMS through the dongle to a mobile of yours now?".to_string(),
        };
        if prompter.confirm(&question, answers.modem_port.exists())? {
            tests.sms = match &answers.sms {
                Some(number) => Some(number.clone()),
                None => prompter.optional("  Mobile number to text")?,
            };
        }
    }
    Ok(tests)
}

/// Sends one test email through `[notify.email]`; says what happened and what to do.
async fn test_email(config: &Config, path: &Path) -> bool {
    let to = config
        .profiles
        .iter()
        .flat_map(|p| &p.recipients)
        .flat_map(|r| &r.channels)
        .find_map(|channel| match channel {
            config::Channel::Email(address) => Some(address.clone()),
            _ => None,
        });
    let (Some(settings), Some(to)) = (&config.notify.email, to) else {
        println!("test email: not sent, no [notify.email] or no email recipient in the config");
        return false;
    };
    let business = config
        .profiles
        .first()
        .map(|p| p.name.as_str())
        .unwrap_or("textback");
    println!(
        "test email: sending to {to} through {}:{}...",
        settings.host, settings.port
    );
    match crate::leads::email::send_test(settings, &to, business, TEST_EMAIL_TIMEOUT).await {
        Ok(()) => {
            println!(
                "test email: the SMTP server took it; look for it in {to}'s inbox (and spam folder)"
            );
            true
        }
        Err(err) => {
            println!(
                "test email: FAILED: {err}. Lead emails would wait until this works: fix [notify.email] in {}",
                path.display()
            );
            false
        }
    }
}

/// Sends one test SMS through the first modem; says what happened and what to do.
async fn test_sms(config: &Config, to: &str) -> bool {
    let to = match E164::parse(to) {
        Ok(to) => to,
        Err(err) => {
            println!("test SMS: not sent: {err}");
            return false;
        }
    };
    let Some(modem) = config.modems.first() else {
        println!("test SMS: not sent, the config has no [[modem]]");
        return false;
    };
    if !modem.port.exists() {
        println!(
            "test SMS: not sent, no dongle at {} yet. Plug the USB GSM dongle in (with its SIM), wait a few seconds, then run: textback sms send --to {} \"textback test\"",
            modem.port.display(),
            to.as_str()
        );
        return false;
    }
    let business = config
        .profiles
        .first()
        .map(|p| p.name.as_str())
        .unwrap_or("textback");
    let text = format!(
        "{business}: a test text from textback. Texts to missed callers will come from this number."
    );
    println!(
        "test SMS: sending to {} through {}...",
        to.as_str(),
        modem.port.display()
    );
    match crate::cli::sms::send(modem.clone(), to.as_str(), &text, TEST_SMS_WAIT).await {
        Ok(true) => {
            println!("test SMS: sent");
            true
        }
        Ok(false) => {
            println!(
                "test SMS: the network reported it undelivered: check the number, and the SIM's credit"
            );
            false
        }
        Err(err) => {
            println!(
                "test SMS: FAILED: {err:#}. `textback doctor` checks the dongle; stop the daemon first if it runs (it holds the dongle)"
            );
            false
        }
    }
}

/// The modem port to suggest: the udev name if present, else the first ttyUSB / ttyACM.
fn find_modem_port() -> Option<PathBuf> {
    let stable = Path::new("/dev/textback-modem");
    if stable.exists() {
        return Some(stable.to_path_buf());
    }
    let mut ports: Vec<PathBuf> = std::fs::read_dir("/dev")
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ttyUSB") || n.starts_with("ttyACM"))
        })
        .collect();
    ports.sort();
    ports.into_iter().next()
}

/// A TOML string literal.
fn quote(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// An id for a question from its text: `name` and `reason` for the usual two, `question_N` else.
fn question_id(text: &str, index: usize, taken: &[String]) -> String {
    let lower = text.to_lowercase();
    let guess = if lower.contains("name") || lower.contains("speaking to") || lower.contains("who ")
    {
        "name".to_string()
    } else if lower.contains("help")
        || lower.contains("reason")
        || lower.contains("about")
        || lower.contains("job")
    {
        "reason".to_string()
    } else if lower.contains("postcode") {
        "postcode".to_string()
    } else {
        format!("question_{}", index + 1)
    };
    if taken.contains(&guess) {
        format!("question_{}", index + 1)
    } else {
        guess
    }
}

/// The config text for the answers, commented like the example.
pub fn render(answers: &Answers) -> String {
    let mut out = String::new();
    out.push_str("# textback configuration, written by `textback init`.\n");
    out.push_str("# Every key is explained in /usr/share/doc/textback/textback.example.toml.\n");
    out.push_str(
        "# Check edits with: textback config check; then the box with: textback doctor\n\n",
    );
    out.push_str("[storage]\n");
    out.push_str(&format!(
        "database = {}\n",
        quote(&answers.database.to_string_lossy())
    ));
    if let Some(relay) = &answers.relay {
        out.push_str("\n# The SMTP server lead emails leave through.\n[notify.email]\n");
        out.push_str(&format!("host = {}\n", quote(&relay.host)));
        out.push_str(&format!("port = {}\n", relay.port));
        out.push_str(&format!("security = {}\n", quote(relay.security.name())));
        if let Some((username, password)) = &relay.login {
            out.push_str(&format!("username = {}\n", quote(username)));
            out.push_str(&format!("password = {}\n", quote(password)));
        }
        out.push_str(&format!("from = {}\n", quote(&relay.from)));
    }
    if let Some(secret) = &answers.webhook_secret {
        out.push_str(
            "\n# Webhook requests carry X-Textback-Signature: v1=<hex HMAC-SHA256(secret, \"<timestamp>.<body>\")>.\n[notify.webhook]\n",
        );
        out.push_str(&format!("secret = {}\n", quote(secret)));
    }
    out.push_str("\n[[modem]]\nid = \"main\"\n");
    out.push_str(&format!(
        "port = {}\n",
        quote(&answers.modem_port.to_string_lossy())
    ));
    if let Some(pin) = &answers.pin {
        out.push_str(&format!("pin = {}\n", quote(pin)));
    }
    if let Some(sip) = &answers.sip {
        out.push_str(
            "\n# The business's trunk or PBX: textback registers as an extension that never answers.\n[[sip]]\nname = \"trunk\"\n",
        );
        out.push_str(&format!("registrar = {}\n", quote(&sip.registrar)));
        out.push_str(&format!("username = {}\n", quote(&sip.username)));
        out.push_str(&format!("password = {}\n", quote(&sip.password)));
    }
    out.push_str("\n[[profile]]\nid = \"main\"\n");
    out.push_str(&format!("name = {}\n", quote(&answers.business)));
    let numbers: Vec<String> = answers.numbers.iter().map(|n| quote(n)).collect();
    out.push_str(&format!("numbers = [{}]\n", numbers.join(", ")));
    let mut ids = Vec::new();
    for (index, question) in answers.questions.iter().enumerate() {
        let id = question_id(question, index, &ids);
        out.push_str(&format!(
            "\n[[profile.question]]\nid = {}\nask = {}\n",
            quote(&id),
            quote(question)
        ));
        ids.push(id);
    }
    if answers.email.is_some() || answers.sms.is_some() || answers.webhook.is_some() {
        out.push_str("\n[[profile.recipient]]\nname = \"Owner\"\n");
        if let Some(email) = &answers.email {
            out.push_str(&format!("email = {}\n", quote(email)));
        }
        if let Some(sms) = &answers.sms {
            out.push_str(&format!("sms = {}\n", quote(sms)));
        }
        if let Some(url) = &answers.webhook {
            out.push_str(&format!("webhook = {}\n", quote(url)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: InitArgs,
    }

    fn args(flags: &[&str]) -> InitArgs {
        let mut all = vec!["init"];
        all.extend_from_slice(flags);
        Wrapper::parse_from(all).args
    }

    fn gather_from(args: &InitArgs, interactive: bool, typed: &str) -> anyhow::Result<Answers> {
        let mut input = typed.as_bytes();
        let mut prompter = Prompter {
            interactive,
            input: &mut input,
        };
        gather(args, &mut prompter)
    }

    #[test]
    fn scripted_answers_make_a_valid_config() {
        let args = args(&[
            "--yes",
            "--business",
            "Acme \"Best\" Plumbing",
            "--number",
            "020 7946 0018",
            "--question",
            "Who am I speaking to?",
            "--question",
            "What's the job?",
            "--question",
            "Postcode?",
            "--email",
            "owner@acme.example",
            "--smtp-host",
            "smtp.acme.example",
            "--smtp-username",
            "leads@acme.example",
            "--smtp-password",
            "app password",
            "--webhook",
            "https://crm.acme.example/hooks/textback",
            "--sip-registrar",
            "pbx.acme.example",
            "--sip-username",
            "201",
            "--sip-password",
            "s1p-secret",
            "--modem-port",
            "/dev/ttyUSB2",
        ]);
        let answers = gather_from(&args, false, "").unwrap();
        let text = render(&answers);
        let loaded = config::parse(&text, Path::new("init.toml")).unwrap();
        // Only the dongle, which is not plugged in here, is warned of.
        assert!(
            loaded.warnings.iter().all(|w| w.path == "modem[0].port"),
            "{:?}",
            loaded.warnings
        );
        let config = &loaded.config;
        let profile = &config.profiles[0];
        assert_eq!(profile.name, "Acme \"Best\" Plumbing");
        let ids: Vec<&str> = profile.questions.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, vec!["name", "reason", "postcode"]);
        assert_eq!(profile.recipients[0].channels.len(), 2);
        let email = config.notify.email.as_ref().expect("[notify.email]");
        assert_eq!(email.host, "smtp.acme.example");
        assert_eq!(email.port, 587);
        assert_eq!(email.security, config::EmailSecurity::StartTls);
        assert_eq!(email.username.as_deref(), Some("leads@acme.example"));
        assert_eq!(email.from, "Acme Best Plumbing leads <leads@acme.example>");
        assert!(config.notify.webhook.secret.is_some());
        assert_eq!(config.sip_accounts.len(), 1);
    }

    #[test]
    fn interactive_answers_are_read_in_order() {
        let args = args(&[]);
        let typed = concat!(
            "Brightwater Plumbing\n",
            "01632 960123\n",
            "Your name?\n",
            "\n",
            "boss@example.com\n",
            // The SMTP relay: host, security, port, login, password, sender.
            "mail.example.com\n",
            "tls\n",
            "\n",
            "boss@example.com\n",
            "hunter2-app\n",
            "\n",
            // No SMS, no webhook, no SIP trunk.
            "\n",
            "\n",
            "\n",
            "/dev/ttyUSB3\n",
            "\n",
        );
        let answers = gather_from(&args, true, typed).unwrap();
        assert_eq!(answers.business, "Brightwater Plumbing");
        assert_eq!(answers.numbers, vec!["01632 960123"]);
        assert_eq!(answers.questions, vec!["Your name?"]);
        assert_eq!(answers.email.as_deref(), Some("boss@example.com"));
        let relay = answers.relay.clone().expect("a relay");
        assert_eq!(relay.host, "mail.example.com");
        assert_eq!(relay.security, SmtpSecurity::Tls);
        assert_eq!(relay.port, 465);
        assert_eq!(
            relay.login,
            Some(("boss@example.com".to_string(), "hunter2-app".to_string()))
        );
        assert_eq!(relay.from, "Brightwater Plumbing leads <boss@example.com>");
        assert_eq!(answers.sms, None);
        assert_eq!(answers.webhook, None);
        assert_eq!(answers.sip, None);
        assert_eq!(answers.modem_port, PathBuf::from("/dev/ttyUSB3"));
        config::parse(&render(&answers), Path::new("init.toml")).unwrap();
    }

    #[test]
    fn a_relay_left_for_later_says_how_to_finish_it() {
        let args = args(&["--yes", "--business", "Acme", "--email", "o@acme.example"]);
        let answers = gather_from(&args, false, "").unwrap();
        assert_eq!(answers.relay, None);
        let loaded = config::parse(&render(&answers), Path::new("init.toml")).unwrap();
        let warning = loaded
            .warnings
            .iter()
            .map(|w| w.to_string())
            .find(|w| w.contains("notify.email"))
            .expect("a warning about [notify.email]");
        assert!(warning.contains("textback init"), "{warning}");
        assert!(!warning.ends_with(" are"), "{warning}");
    }

    #[test]
    fn scripted_without_a_business_says_which_flag() {
        let args = args(&["--yes"]);
        let err = gather_from(&args, false, "").unwrap_err();
        assert!(err.to_string().contains("--business"), "{err}");
    }

    #[test]
    fn a_sip_account_without_its_password_says_which_flag() {
        let args = args(&[
            "--yes",
            "--business",
            "Acme",
            "--sip-registrar",
            "pbx.example",
            "--sip-username",
            "201",
        ]);
        let err = gather_from(&args, false, "").unwrap_err();
        assert!(err.to_string().contains("--sip-password"), "{err}");
    }

    #[test]
    fn the_packaged_example_is_replaced_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("textback.toml");
        std::fs::write(&path, PACKAGED_EXAMPLE).unwrap();
        assert!(is_packaged_example(&path));
        std::fs::write(&path, format!("{PACKAGED_EXAMPLE}# edited\n")).unwrap();
        assert!(!is_packaged_example(&path));
    }
}
