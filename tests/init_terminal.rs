//! `textback init` as a person runs it: in a real terminal (tmux), each answer typed at its
//! prompt, the screen read back. The config it writes passes `config check`, `doctor` on it says
//! in plain words that the dongle is missing, the test email reaches a real SMTP server on
//! loopback, and the test SMS reaches the virtual modem on a real pseudo-terminal.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::servers::SmtpSink;
use common::terminal::Terminal;
use textback::modem::virtual_modem::{Options, VirtualModem};

const BIN: &str = env!("CARGO_BIN_EXE_textback");

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_installer_answers_init_in_a_terminal_and_doctor_names_the_missing_dongle() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(dir.path()).await;
    let config = dir.path().join("textback.toml");
    let database = dir.path().join("textback.db");
    // No dongle here: the port the installer accepts is one that is not there.
    let absent = dir.path().join("textback-modem");
    let terminal = Terminal::start(
        &format!(
            "{} init --output {} --database {}",
            BIN,
            shell_quote(&config.to_string_lossy()),
            shell_quote(&database.to_string_lossy())
        ),
        dir.path(),
    );
    terminal.answer("Business name", "Brightwater Plumbing");
    terminal.answer("phone number(s)", "01632 960123");
    terminal.answer("question 1", "Who am I speaking to?");
    terminal.answer("question 2", "What's the job, and where is it?");
    terminal.answer("question 3", "");
    terminal.answer("Email address for leads", "owner@brightwater.example");
    // A mail relay on the LAN (here the SMTP server on loopback): no encryption, no login.
    terminal.answer("SMTP server", "127.0.0.1");
    terminal.answer("Security:", "none");
    terminal.answer("SMTP port [25]", &smtp.port.to_string());
    terminal.answer("SMTP login user name", "");
    terminal.answer(
        "Sender of lead emails",
        "Brightwater leads <leads@brightwater.example>",
    );
    terminal.answer("Mobile number for leads by SMS", "07700 900456");
    terminal.answer("Web address (URL)", "");
    terminal.answer("SIP trunk or a phone system", "y");
    terminal.answer("SIP registrar", "pbx.brightwater.example");
    terminal.answer("SIP user name", "201");
    terminal.answer("SIP password", "pbx-secret-9431");
    terminal.answer("Modem AT port", &absent.to_string_lossy());
    terminal.answer("SIM PIN", "");
    terminal.answer("Send a test email to owner@brightwater.example", "");
    terminal.answer("Send a test SMS through the dongle to 07700 900456", "y");
    let (code, screen) = terminal.wait_exit();
    assert_eq!(code, 0, "{screen}");
    assert!(
        !screen.contains("pbx-secret-9431"),
        "the SIP password was shown:\n{screen}"
    );
    assert!(
        screen.contains(&format!("wrote {}", config.display())),
        "{screen}"
    );
    assert!(
        screen.contains("test email: the SMTP server took it"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!(
            "test SMS: not sent, no dongle at {}",
            absent.display()
        )),
        "{screen}"
    );
    assert!(screen.contains("Plug the USB GSM dongle in"), "{screen}");

    // The test email reached the relay, from the sender given, to the lead address.
    let messages = smtp.wait_messages(1).await;
    assert_eq!(messages.len(), 1, "one test email");
    let email = String::from_utf8_lossy(&messages[0]);
    assert!(
        email.contains("Subject: textback test email for Brightwater Plumbing"),
        "{email}"
    );
    assert!(email.contains("leads@brightwater.example"), "{email}");
    assert!(email.contains("owner@brightwater.example"), "{email}");

    // The config: readable by its owner and group only, and it says what was answered.
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the config holds passwords");
    let written = std::fs::read_to_string(&config).unwrap();
    for expected in [
        "[notify.email]",
        &format!("port = {}", smtp.port),
        "security = \"none\"",
        "[[sip]]",
        "registrar = \"pbx.brightwater.example\"",
        "sms = \"07700 900456\"",
    ] {
        assert!(written.contains(expected), "{expected:?} in\n{written}");
    }

    // `config check` passes on it: no error, the missing dongle only a warning.
    let check = Command::new(BIN)
        .args(["config", "check"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains("ok (1 profile, 1 modem, 1 SIP account"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("notify.email"),
        "email is set up: {stdout}"
    );

    // doctor, in the terminal as the installer would run it next, names the missing dongle in
    // words (and fails, since no text can go out without it).
    let doctor = Terminal::start(
        &format!(
            "{BIN} doctor --config {}",
            shell_quote(&config.to_string_lossy())
        ),
        dir.path(),
    );
    let (code, screen) = doctor.wait_exit();
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("FAILED   modem main"), "{screen}");
    assert!(
        screen.contains(&format!(
            "no dongle at {}: plug the dongle in (the USB GSM stick, with its SIM)",
            absent.display()
        )),
        "{screen}"
    );
    assert!(screen.contains("textback modem list"), "{screen}");
    assert!(screen.contains("ok       config"), "{screen}");
    assert!(
        screen.contains("will be created when textback first starts"),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_sends_a_test_sms_through_the_dongle_it_was_given() {
    let modem = VirtualModem::start(Options::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("textback.toml");
    let terminal = Terminal::start(
        &format!(
            "{BIN} init --output {} --database {} --business 'Acme Plumbing' --number '020 7946 0018' --modem-port {}",
            shell_quote(&config.to_string_lossy()),
            shell_quote(&dir.path().join("t.db").to_string_lossy()),
            shell_quote(&modem.path().to_string_lossy()),
        ),
        dir.path(),
    );
    terminal.answer("question 1", "");
    terminal.answer("Email address for leads", "");
    terminal.answer("Mobile number for leads by SMS", "07700900456");
    terminal.answer(
        "Web address (URL)",
        "https://crm.acme.example/hooks/textback",
    );
    terminal.answer("SIP trunk or a phone system", "");
    terminal.answer("SIM PIN", "");
    // The dongle is there, so the test SMS is offered with yes as the default.
    terminal.answer(
        "Send a test SMS through the dongle to 07700900456 now? [Y/n]",
        "",
    );
    let (code, screen) = terminal.wait_exit();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("test SMS: sent"), "{screen}");
    assert!(
        screen.contains("webhook requests are signed with notify.webhook.secret"),
        "{screen}"
    );
    let sent = modem.wait_sent(1, Duration::from_secs(20)).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, "+447700900456");
    assert!(
        sent[0]
            .text
            .starts_with("Acme Plumbing: a test text from textback."),
        "{:?}",
        sent[0].text
    );
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains("webhook = \"https://crm.acme.example/hooks/textback\""),
        "{written}"
    );
    modem.stop().await;
}
