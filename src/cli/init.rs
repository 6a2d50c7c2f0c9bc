//! `textback init`: writes a first config by asking the installer the few things that matter. Every
//! question has a flag, so a scripted install asks nothing (`--yes` takes the defaults for the rest).
//! The result is validated with the same code as `config check` before it is written.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::config;
use crate::domain::E164;

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
    /// Mobile number that receives leads by SMS.
    #[arg(long)]
    sms: Option<String>,
    /// The modem's AT port (default: the one found on USB, else /dev/textback-modem).
    #[arg(long)]
    modem_port: Option<PathBuf>,
    /// The SIM's PIN, if it has one.
    #[arg(long)]
    pin: Option<String>,
    /// The database path.
    #[arg(long, default_value_os_t = config::defaults::database())]
    database: PathBuf,
}

/// What the config will say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub business: String,
    pub numbers: Vec<String>,
    pub questions: Vec<String>,
    pub email: Option<String>,
    pub sms: Option<String>,
    pub modem_port: PathBuf,
    pub pin: Option<String>,
    pub database: PathBuf,
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    if args.output.exists() && !args.force {
        bail!(
            "{} exists already: edit it, or run again with --force to replace it",
            args.output.display()
        );
    }
    let interactive = !args.yes && std::io::stdin().is_terminal();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let answers = gather(&args, interactive, &mut input)?;
    let text = render(&answers);
    // The same validation as `config check` and the daemon.
    let loaded = config::parse(&text, &args.output)
        .context("the config init would write does not validate")?;
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&args.output, text)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!("wrote {}", args.output.display());
    for warning in &loaded.warnings {
        println!("warning: {warning}");
    }
    println!(
        "next: `textback doctor --config {}`, then `systemctl restart textback`",
        args.output.display()
    );
    Ok(())
}

/// Fills in what the flags did not give, asking when interactive.
pub fn gather(
    args: &InitArgs,
    interactive: bool,
    input: &mut impl BufRead,
) -> anyhow::Result<Answers> {
    let mut ask = |question: &str, default: &str| -> anyhow::Result<String> {
        if !interactive {
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
        input.read_line(&mut line)?;
        let line = line.trim();
        Ok(if line.is_empty() {
            default.to_string()
        } else {
            line.to_string()
        })
    };

    let business = match &args.business {
        Some(business) => business.clone(),
        None => loop {
            let answer = ask("Business name, as callers know it", "")?;
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
            let answer = ask(
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
                let answer = ask(&format!("  question {}", questions.len() + 1), "")?;
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
        None => {
            Some(ask("Email address for leads (blank for none)", "")?).filter(|e| !e.is_empty())
        }
    };
    let sms = match &args.sms {
        Some(sms) => Some(sms.clone()),
        None => Some(ask("Mobile number for leads by SMS (blank for none)", "")?)
            .filter(|e| !e.is_empty()),
    };
    let found = find_modem_port();
    let modem_port = match &args.modem_port {
        Some(port) => port.clone(),
        None => {
            let default = found.clone().unwrap_or_else(config::defaults::modem_port);
            if interactive {
                match &found {
                    Some(port) => eprintln!("Found a modem port: {}", port.display()),
                    None => eprintln!(
                        "No modem found on USB; udev/99-textback.rules names it /dev/textback-modem once plugged in."
                    ),
                }
            }
            PathBuf::from(ask("Modem AT port", &default.to_string_lossy())?)
        }
    };
    let pin = match &args.pin {
        Some(pin) => Some(pin.clone()),
        None => Some(ask("SIM PIN (blank if the SIM has none)", "")?).filter(|p| !p.is_empty()),
    };
    Ok(Answers {
        business,
        numbers,
        questions,
        email,
        sms,
        modem_port,
        pin,
        database: args.database.clone(),
    })
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
        "database = {}\n\n",
        quote(&answers.database.to_string_lossy())
    ));
    out.push_str("[[modem]]\nid = \"main\"\n");
    out.push_str(&format!(
        "port = {}\n",
        quote(&answers.modem_port.to_string_lossy())
    ));
    if let Some(pin) = &answers.pin {
        out.push_str(&format!("pin = {}\n", quote(pin)));
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
    if answers.email.is_some() || answers.sms.is_some() {
        out.push_str("\n[[profile.recipient]]\nname = \"Owner\"\n");
        if let Some(email) = &answers.email {
            out.push_str(&format!("email = {}\n", quote(email)));
        }
        if let Some(sms) = &answers.sms {
            out.push_str(&format!("sms = {}\n", quote(sms)));
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
            "--modem-port",
            "/dev/ttyUSB2",
        ]);
        let answers = gather(&args, false, &mut std::io::empty()).unwrap();
        let text = render(&answers);
        let loaded = config::parse(&text, Path::new("init.toml")).unwrap();
        let profile = &loaded.config.profiles[0];
        assert_eq!(profile.name, "Acme \"Best\" Plumbing");
        let ids: Vec<&str> = profile.questions.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, vec!["name", "reason", "postcode"]);
        assert_eq!(profile.recipients[0].channels.len(), 1);
    }

    #[test]
    fn interactive_answers_are_read_in_order() {
        let args = args(&[]);
        let typed = "Brightwater Plumbing\n01632 960123\nYour name?\n\nboss@example.com\n\n/dev/ttyUSB3\n\n";
        let answers = gather(&args, true, &mut typed.as_bytes()).unwrap();
        assert_eq!(answers.business, "Brightwater Plumbing");
        assert_eq!(answers.numbers, vec!["01632 960123"]);
        assert_eq!(answers.questions, vec!["Your name?"]);
        assert_eq!(answers.email.as_deref(), Some("boss@example.com"));
        assert_eq!(answers.sms, None);
        assert_eq!(answers.modem_port, PathBuf::from("/dev/ttyUSB3"));
        config::parse(&render(&answers), Path::new("init.toml")).unwrap();
    }

    #[test]
    fn scripted_without_a_business_says_which_flag() {
        let args = args(&["--yes"]);
        let err = gather(&args, false, &mut std::io::empty()).unwrap_err();
        assert!(err.to_string().contains("--business"), "{err}");
    }
}
