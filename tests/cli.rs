//! The built `textback` binary, run as an installer would run it.

mod common;

use std::process::{Command, Output};

use tokio::io::AsyncBufReadExt;

use common::{Harness, WAIT};

fn textback(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(args)
        .env_remove("TEXTBACK_CONFIG")
        .output()
        .expect("run textback")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const GOOD: &str = r#"
[notify.email]
host = "smtp.example.com"
username = "leads@acme.example"
password = "app-password"
from = "Acme leads <leads@acme.example>"

[[modem]]
id = "main"
port = "/dev/null"

[[profile]]
id = "acme"
name = "Acme Plumbing"
numbers = ["020 7946 0018"]

[[profile.recipient]]
name = "Owner"
email = "owner@acme.example"

[[sip]]
name = "trunk"
registrar = "sip.example.net"
username = "441632960123"
password = "secret"
keepalive = "crlf"
final_response = 480
allow = ["192.0.2.0/24"]
expires = 300
"#;

/// Each bad config, the key path its error must name, and words the message must contain.
const BAD: &[(&str, &str, &str, &str)] = &[
    (
        "first text held too long",
        "numbers = [\"020 7946 0018\"]",
        "numbers = [\"020 7946 0018\"]\nfirst_text_delay_seconds = 7200",
        "profile[0].first_text_delay_seconds: 7200 is out of range: 0 (no delay) to 1800 seconds",
    ),
    (
        "a relative CA file for the mail relay",
        "from = \"Acme leads <leads@acme.example>\"",
        "from = \"Acme leads <leads@acme.example>\"\nca_file = \"relay-ca.pem\"",
        "notify.email.ca_file: relay-ca.pem is relative: give the full path of the PEM file",
    ),
    (
        "first text held past the silence limit",
        "numbers = [\"020 7946 0018\"]",
        "numbers = [\"020 7946 0018\"]\nfirst_text_delay_seconds = 600\nsilence_minutes = 5",
        "profile[0].first_text_delay_seconds: 600 s is not shorter than silence_minutes (5 min)",
    ),
    (
        "a local model that is not local",
        "[[profile.recipient]]",
        "[profile.llm]\nbase_url = \"http://llm.example.com:8080\"\nmodel = \"m\"\nflavour = \"ollama\"\n\n[[profile.recipient]]",
        "profile[0].llm.base_url: \"http://llm.example.com:8080\" is not on this machine",
    ),
    (
        "a local model waited on too long",
        "[[profile.recipient]]",
        "[profile.llm]\nbase_url = \"http://127.0.0.1:8080\"\nmodel = \"m\"\nflavour = \"llama_server\"\ntimeout_ms = 60000\n\n[[profile.recipient]]",
        "profile[0].llm.timeout_ms: is 60000; use 100 to 30000",
    ),
    (
        "an unknown model server",
        "[[profile.recipient]]",
        "[profile.llm]\nbase_url = \"http://127.0.0.1:8080\"\nmodel = \"m\"\nflavour = \"vllm\"\n\n[[profile.recipient]]",
        "profile[0].llm.flavour",
    ),
    (
        "SIP final response",
        "final_response = 480",
        "final_response = 200",
        "sip[0].final_response: 200 is not one of 480 (no answer), 486 (busy) or 603 (declined)",
    ),
    (
        "SIP keep-alive",
        "keepalive = \"crlf\"",
        "keepalive = \"stun\"",
        "sip[0].keepalive: \"stun\" is not one of \"crlf\", \"options\", \"off\"",
    ),
    (
        "SIP allow range",
        "allow = [\"192.0.2.0/24\"]",
        "allow = [\"192.0.2.0/24\", \"192.0.2.0/40\"]",
        "sip[0].allow[1]: \"192.0.2.0/40\": the prefix length must be 0 to 32",
    ),
    (
        "SIP expires",
        "expires = 300",
        "expires = 5",
        "sip[0].expires: 5 seconds is outside 60..=86400",
    ),
    (
        "SIP rate limits",
        "expires = 300",
        "expires = 300\nmax_requests_per_second = 10\nmax_invites_per_second = 20",
        "sip[0].max_requests_per_second: 10 is below max_invites_per_second (20): every INVITE is a request too",
    ),
    (
        "SIP rate limits on a shared port",
        "expires = 300",
        "expires = 300\n\n[[sip]]\nname = \"second\"\nregistrar = \"sip.example.net\"\nusername = \"441632960999\"\npassword = \"secret\"\nmax_invites_per_second = 20",
        "sip[1].max_invites_per_second: 20 differs from sip[0].max_invites_per_second (2000), which uses the same local_port 5060",
    ),
    (
        "SIP calls ringing at once",
        "expires = 300",
        "expires = 300\nmax_ringing_calls = 0",
        "sip[0].max_ringing_calls: 0 is outside 1..=40000",
    ),
    (
        "SIP transport",
        "expires = 300",
        "expires = 300\ntransport = \"tls\"",
        "sip[0].transport: \"tls\" is not one of \"udp\", \"tcp\" (TLS is not supported yet)",
    ),
    (
        "SIP unknown key",
        "expires = 300",
        "expires = 300\ntransprt = \"udp\"",
        "sip[0].transprt: unknown field `transprt`",
    ),
    (
        "unknown key",
        "name = \"Acme Plumbing\"",
        "nmae = \"Acme Plumbing\"",
        "profile[0].nmae: unknown field `nmae`",
    ),
    (
        "wrong type",
        "port = \"/dev/null\"",
        "port = \"/dev/null\"\nbaud = \"fast\"",
        "modem[0].baud: invalid type: string \"fast\"",
    ),
    ("TOML syntax", "[[modem]]", "[[modem]\n", "TOML syntax"),
    (
        "bad phone number",
        "\"020 7946 0018\"",
        "\"020 7946 001\"",
        "profile[0].numbers[0]: \"020 7946 001\"",
    ),
    (
        "missing modem",
        "numbers = [",
        "modem = \"spare\"\nnumbers = [",
        "profile[0].modem: no modem has id \"spare\"; the modems are: \"main\"",
    ),
    (
        "duplicate numbers",
        "numbers = [\"020 7946 0018\"]",
        "numbers = [\"020 7946 0018\", \"+44 20 7946 0018\"]",
        "profile[0].numbers[1]: +442079460018 is already listed at profile[0].numbers[0]",
    ),
    (
        "unknown template field",
        "numbers = [",
        "first_message = \"Hi from {busines}\"\nnumbers = [",
        "profile[0].first_message: unknown field {busines}; this message can use {business}, {time}, {day}, {question}",
    ),
    (
        "bad SIM PIN",
        "port = \"/dev/null\"",
        "port = \"/dev/null\"\npin = \"12\"",
        "modem[0].pin: a SIM PIN is 4 to 8 digits",
    ),
    (
        "relative modem port",
        "port = \"/dev/null\"",
        "port = \"ttyUSB2\"",
        "modem[0].port: \"ttyUSB2\" is not an absolute path",
    ),
    (
        "recipient without channel",
        "email = \"owner@acme.example\"",
        "",
        "profile[0].recipient[0]: has no channel",
    ),
    (
        "bad email",
        "owner@acme.example",
        "owner-at-acme",
        "profile[0].recipient[0].email: \"owner-at-acme\" is not an email address",
    ),
    (
        "a trusted proxy that is not an address",
        "[[modem]]",
        "[dashboard]\ntrusted_proxy = \"nginx\"\n\n[[modem]]",
        "dashboard.trusted_proxy: \"nginx\" is not an IP address",
    ),
    (
        "bad dashboard address",
        "[[modem]]",
        "[dashboard]\nlisten = \"localhost\"\n\n[[modem]]",
        "dashboard.listen: \"localhost\" is not an address and port",
    ),
    (
        "no modem",
        "[[modem]]\nid = \"main\"\nport = \"/dev/null\"\n",
        "",
        "modem: no [[modem]]",
    ),
    (
        "missing required key",
        "name = \"Acme Plumbing\"\n",
        "",
        "profile[0]: missing field `name`",
    ),
    (
        "empty first message",
        "numbers = [",
        "first_message = \"\"\nnumbers = [",
        "profile[0].first_message: is empty",
    ),
    (
        "no questions",
        "numbers = [",
        "question = []\nnumbers = [",
        "profile[0].question: no questions",
    ),
    (
        "hang up after 1 ring",
        "port = \"/dev/null\"",
        "port = \"/dev/null\"\nhangup_after_rings = 1",
        "modem[0].hangup_after_rings: 1 hangs up before the caller's number arrives",
    ),
    (
        "relative database",
        "[[modem]]",
        "[storage]\ndatabase = \"textback.db\"\n\n[[modem]]",
        "storage.database: \"textback.db\" is not an absolute path",
    ),
    (
        "two modems on one port",
        "[[profile]]",
        "[[modem]]\nid = \"spare\"\nport = \"/dev/null\"\n\n[[profile]]",
        "modem[1].port: \"/dev/null\" is already the port of modem[0]",
    ),
    (
        "unknown SMTP security",
        "host = \"smtp.example.com\"",
        "host = \"smtp.example.com\"\nsecurity = \"ssl3\"",
        "notify.email.security: \"ssl3\" is not one of \"starttls\" (port 587), \"tls\" (port 465), \"none\"",
    ),
    (
        "email sender that is not an address",
        "from = \"Acme leads <leads@acme.example>\"",
        "from = \"Acme leads\"",
        "notify.email.from: \"Acme leads\" is not an address",
    ),
    (
        "route on a question the profile does not ask",
        "email = \"owner@acme.example\"",
        "email = \"owner@acme.example\"\n[profile.recipient.when]\nquestion = \"job_type\"\ncontains = [\"boiler\"]",
        "profile[0].recipient[0].when.question: \"job_type\" is not one of this profile's questions",
    ),
    (
        "unknown kind of number to text",
        "numbers = [\"020 7946 0018\"]",
        "numbers = [\"020 7946 0018\"]\ntext_kinds = [\"uk_mobile\", \"premium\"]",
        "profile[0].text_kinds[1]: \"premium\" is not a kind of number",
    ),
    (
        "a staff number that is not a number",
        "numbers = [\"020 7946 0018\"]",
        "numbers = [\"020 7946 0018\"]\nstaff_numbers = [\"the boss\"]",
        "profile[0].staff_numbers[0]",
    ),
    (
        "short webhook secret",
        "[[modem]]",
        "[notify.webhook]\nsecret = \"abc\"\n\n[[modem]]",
        "notify.webhook.secret: is shorter than 16 characters",
    ),
    (
        "WhatsApp phone number instead of its id",
        "[[modem]]",
        "[notify.whatsapp]\nphone_number_id = \"+447700900123\"\ntoken = \"t\"\ntemplate = \"new_lead\"\n\n[[modem]]",
        "notify.whatsapp.phone_number_id: \"+447700900123\" is not a phone number id",
    ),
];

#[test]
fn config_check_accepts_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.toml");
    std::fs::write(&path, GOOD).unwrap();
    let out = textback(&["config", "check", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ok (1 profile, 1 modem, 1 SIP account)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn config_check_and_run_name_each_bad_config_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert!(BAD.len() >= 8);
    for (kind, from, to, expected) in BAD {
        assert!(
            GOOD.contains(from),
            "{kind}: the test's pattern {from:?} is not in the good config"
        );
        let bad = GOOD.replacen(from, to, 1);
        let path = dir.path().join(format!("{}.toml", kind.replace(' ', "-")));
        std::fs::write(&path, &bad).unwrap();
        for args in [
            vec!["config", "check", path.to_str().unwrap()],
            vec!["run", "--config", path.to_str().unwrap()],
        ] {
            let out = textback(&args);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{kind} via {args:?}: {stderr}");
            assert!(
                stderr.contains(expected),
                "{kind} via {args:?}: expected {expected:?} in:\n{stderr}"
            );
            assert!(
                stderr.contains(&path.display().to_string()),
                "{kind}: the file is named: {stderr}"
            );
        }
    }
}

#[test]
fn config_check_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.toml");
    let bad = GOOD
        .replace("port = \"/dev/null\"", "port = \"/dev/null\"\npin = \"1\"")
        .replace("\"020 7946 0018\"", "\"12345\"")
        .replace("owner@acme.example", "nobody");
    std::fs::write(&path, bad).unwrap();
    let out = textback(&["config", "check", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("has 3 problems"), "{stderr}");
    for key in [
        "modem[0].pin",
        "profile[0].numbers[0]",
        "profile[0].recipient[0].email",
    ] {
        assert!(stderr.contains(key), "{key} in {stderr}");
    }
}

/// Type errors and unknown keys used to stop `config check` at the first one: the installer fixed
/// it and met the next. Now they come in one run with the value problems, each at its key path.
#[test]
fn config_check_reports_type_errors_and_unknown_keys_with_the_rest_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("five.toml");
    let bad = GOOD
        .replace(
            "port = \"/dev/null\"",
            "port = \"/dev/null\"\nbaud = \"fast\"\npin = \"1\"",
        )
        .replace(
            "name = \"Acme Plumbing\"",
            "name = \"Acme Plumbing\"\ncolour = \"red\"",
        )
        .replace("expires = 300", "expires = \"300\"")
        .replace("\"020 7946 0018\"", "\"020 7946 001\"");
    std::fs::write(&path, bad).unwrap();
    let out = textback(&["config", "check", path.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("has 5 problems"), "{stderr}");
    for expected in [
        "modem[0].baud: invalid type: string \"fast\"",
        "modem[0].pin: a SIM PIN is 4 to 8 digits",
        "profile[0].colour: unknown field `colour`",
        "sip[0].expires: invalid type: string \"300\"",
        // Counts the digits after the 0 and says what is wrong: one digit short.
        "profile[0].numbers[0]: \"020 7946 001\" has 9 digits after the leading 0, one too few; \
         a UK number has 10 after the 0",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in:\n{stderr}");
    }
    // Each line of a type error or unknown key says where it is in the file.
    assert!(stderr.contains("(line "), "{stderr}");
}

#[test]
fn the_shipped_configs_pass_config_check() {
    for file in ["config/textback.example.toml", "config/demo.toml"] {
        let out = textback(&["config", "check", file]);
        assert!(
            out.status.success(),
            "{file}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

#[test]
fn init_writes_a_config_that_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etc/textback.toml");
    let p = path.to_str().unwrap();
    let out = textback(&[
        "init",
        "--yes",
        "--output",
        p,
        "--business",
        "Acme Locks",
        "--number",
        "01632 960123",
        "--question",
        "Who am I speaking to?",
        "--question",
        "Are you locked out now?",
        "--sms",
        "07700 900456",
        "--modem-port",
        "/dev/ttyUSB2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let check = textback(&["config", "check", p]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("name = \"Acme Locks\""), "{written}");
    // It does not overwrite without --force.
    let again = textback(&["init", "--yes", "--output", p, "--business", "X"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("--force"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn demo_runs_end_to_end_and_exits_0() {
    let out = textback(&["demo"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for expected in [
        "missed call from 07700 900123",
        "Hi, it's Brightwater Plumbing",
        "reply from 07700 900123: Dave Smith",
        "What do you need help with?",
        "lead 1 for Brightwater Plumbing (complete)",
        "no text: the caller's number was withheld",
        "not a UK mobile",
        "postcode: SW11 4AB",
        "Demo finished",
        "textback demo --serve",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_a_modem_and_watch_follows_a_call() {
    let harness = Harness::new();
    let config_path = harness.write_config();
    let config = config_path.to_str().unwrap().to_string();

    // Before the daemon ever ran: the modem answers, the database will be created.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["doctor", "--config", &config])
        .output()
        .await
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("ok       config"), "{stdout}");
    assert!(
        stdout.contains("will be created when textback first starts"),
        "{stdout}"
    );
    assert!(stdout.contains("modem main"), "{stdout}");
    assert!(stdout.contains("huawei E3372"), "{stdout}");
    assert!(stdout.contains("signal -77 dBm, operator EE"), "{stdout}");

    // The go-live check: the daemon runs, the installer rings, doctor --watch follows the call.
    let running = harness.start().await;
    assert!(
        harness
            .wait_count("SELECT count(*) FROM sqlite_master", 1)
            .await
            > 0
    );
    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["doctor", "--config", &config, "--watch", "--timeout", "30"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // doctor checks first (the modem is in use by the daemon), then says when to ring.
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut before = String::new();
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("doctor said when to ring");
        before.push_str(&line);
        before.push('\n');
        if line.starts_with("Now ring") {
            break;
        }
    }
    assert!(before.contains("is in use"), "{before}");
    harness.modem.call(Some(common::CALLER_NATIONAL), 2).await;
    let mut after = String::new();
    while let Some(line) = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        after.push_str(&line);
        after.push('\n');
    }
    let status = watch.wait().await.unwrap();
    running.stop().await.unwrap();
    let stdout = format!("{before}{after}");
    assert!(status.success(), "{stdout}");
    for expected in [
        "Now ring 01632 960123",
        "missed call from 07700 900123",
        "profile plumbing",
        "text the caller",
        "accepted by the network",
        "All steps passed",
    ] {
        assert!(
            stdout.contains(expected),
            "doctor --watch lacks {expected:?}:\n{stdout}"
        );
    }
}

#[test]
fn doctor_fails_with_what_to_do_when_the_modem_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    let config = GOOD
        .replace("/dev/null", "/dev/textback-no-such-modem")
        .replace(
            "[[modem]]",
            &format!(
                "[storage]\ndatabase = \"{}\"\n\n[[modem]]",
                dir.path().join("t.db").display()
            ),
        );
    std::fs::write(&path, config).unwrap();
    let out = textback(&["doctor", "--config", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED   modem main"), "{stdout}");
    assert!(stdout.contains("plug the dongle in"), "{stdout}");
}

async fn textback_async(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(args)
        .env_remove("TEXTBACK_CONFIG")
        .output()
        .await
        .expect("run textback")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modem_info_at_and_divert_guide_talk_to_the_modem() {
    let harness = Harness::new();
    let port = harness.modem.path().to_str().unwrap().to_string();

    let out = textback_async(&["modem", "info", "--port", &port]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for expected in [
        "model         huawei E3372",
        "IMEI          867530012345678",
        "IMSI          234300123456789",
        "ICCID         8944110068912345678",
        "SIM messages  0 of 30",
        "own number    +447700900999",
        "signal        -77 dBm (4/5 bars)",
        "network       registered (home network)",
        "operator      EE",
        "SMSC          +447785016005",
    ] {
        assert!(
            stdout.contains(expected),
            "modem info lacks {expected:?}:\n{stdout}"
        );
    }
    let json = textback_async(&["modem", "info", "--port", &port, "--json"]).await;
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["imei"], "867530012345678");
    assert_eq!(value["rssi"], 18);

    let out = textback_async(&["modem", "at", "--port", &port, "AT+CSQ"]).await;
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "+CSQ: 18,99\nOK\n");
    let out = textback_async(&["modem", "at", "--port", &port, "AT+NOSUCH"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("modem replied ERROR to AT+NOSUCH"),
        "{}",
        text(&out.stdout)
    );

    let config_path = harness.write_config();
    let out = textback_async(&["divert-guide", "--config", config_path.to_str().unwrap()]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("The dongle's SIM number is 07700 900999"),
        "{stdout}"
    );
    assert!(stdout.contains("**61*+447700900999**20#"), "{stdout}");
}

#[test]
fn modem_list_runs_without_a_modem() {
    let out = textback(&["modem", "list", "--json"]);
    assert!(out.status.success());
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        value["ports"].is_array() && value["unusable"].is_array(),
        "{value}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_send_encode_and_decode() {
    let harness = Harness::new();
    let port = harness.modem.path().to_str().unwrap().to_string();
    let out = textback_async(&[
        "sms",
        "send",
        "--port",
        &port,
        "--to",
        "07700 900123",
        "--wait",
        "20",
        "Test from textback",
    ])
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("1 part to +447700900123"), "{stdout}");
    assert!(
        stdout.contains("accepted by the network: reference [1]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("reference 1: "),
        "the delivery report is shown: {stdout}"
    );
    let sent = harness.modem.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text, "Test from textback");

    let encoded = textback_async(&[
        "sms",
        "encode",
        "--to",
        "+447700900123",
        "Test from textback",
    ])
    .await;
    let encoded = text(&encoded.stdout);
    let hex = encoded.lines().nth(3).unwrap().trim().to_string();
    let decoded = textback_async(&["sms", "decode", "--json", &hex]).await;
    let value: serde_json::Value = serde_json::from_slice(&decoded.stdout).unwrap();
    assert_eq!(value["type"], "SMS-SUBMIT");
    assert_eq!(value["recipient"]["number"], "+447700900123");
    assert_eq!(value["text"], "Test from textback");
    let bad = textback_async(&["sms", "decode", "00zz"]).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(!text(&bad.stderr).is_empty());
}

#[test]
fn dialogue_replay_reports_slots_and_outcomes_as_json() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues");
    // The first three cases of the plumber's file, which the engine gets right.
    let plumber = std::fs::read_to_string(root.join("plumber.toml")).unwrap();
    let first_three: String = plumber
        .split("[[case]]")
        .take(4)
        .collect::<Vec<_>>()
        .join("[[case]]");
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("plumber.toml");
    std::fs::write(&cases, first_three).unwrap();
    let out = textback(&[
        "dialogue",
        "replay",
        cases.to_str().unwrap(),
        "--profiles",
        root.join("profiles").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 3);
    let first = &lines[0];
    assert_eq!(first["case"], "several answers in one message");
    assert_eq!(first["outcome"], "complete");
    assert_eq!(first["slots"]["name"], "Dave");
    assert_eq!(first["slots"]["postcode"], "SW11 4AB");
    assert_eq!(first["slots"]["urgency"], "high");
    assert_eq!(first["as_expected"], true);

    // A case whose expectation the engine does not meet: reported, and exit 1.
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("case.toml");
    std::fs::write(
        &case,
        r#"
[[case]]
name = "wrong on purpose"
profile = "vet"
caller = "+447700901001"
messages = ["Jo here, my cat is limping"]
[case.expect]
outcome = "complete"
slots = { name = "Someone else" }
"#,
    )
    .unwrap();
    let out = textback(&[
        "dialogue",
        "replay",
        case.to_str().unwrap(),
        "--profiles",
        root.join("profiles").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(line["as_expected"], false);
    assert_eq!(line["slots"]["name"], "Jo");
}

#[test]
fn dialogue_try_plays_the_caller_against_the_configs_profile() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("textback.toml");
    std::fs::write(
        &config,
        GOOD.replace(
            "[[profile.recipient]]",
            "[[profile.question]]\nid = \"name\"\nask = \"Who am I speaking to?\"\n\n\
             [[profile.question]]\nid = \"reason\"\nask = \"What can we help with?\"\n\n\
             [[profile.question]]\nid = \"postcode\"\nask = \"And the postcode?\"\n\n\
             [[profile.recipient]]",
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["dialogue", "try", "--profile", "acme", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all("Dave here, boiler leaking 😩\n/slots\nSW11 4AB\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("business> Hi, it's Acme Plumbing."),
        "{stdout}"
    );
    assert!(
        stdout.contains("business> ") && stdout.contains("And the postcode?"),
        "{stdout}"
    );
    // /slots prints what the engine has so far, as JSON.
    assert!(stdout.contains("\"value\": \"Dave\""), "{stdout}");
    assert!(stdout.contains("(lead sent: complete)"), "{stdout}");
    assert!(stdout.contains("  postcode: SW11 4AB"), "{stdout}");

    // A profile that is not in the config: named, with the ones that are.
    let out = textback(&[
        "dialogue",
        "try",
        "--profile",
        "plumbing",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no profile \"plumbing\" in the config; its profiles are: acme"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_asks_each_profiles_local_model() {
    let (url, requests) = common::llm::scripted_server(
        r#"{"slots": {"name": "Sam Smith"}, "intent": "answer", "question_topic": null, "reply_to_caller": null}"#,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let write = |base_url: &str| {
        let path = dir.path().join("t.toml");
        let config = GOOD
            .replace(
                "[[modem]]",
                &format!(
                    "[storage]\ndatabase = \"{}\"\n\n[[modem]]",
                    dir.path().join("t.db").display()
                ),
            )
            .replace(
                "[[profile.recipient]]",
                &format!(
                    "[profile.llm]\nbase_url = \"{base_url}\"\nmodel = \"smollm2\"\nflavour = \"llama_server\"\ntimeout_ms = 2000\n\n[[profile.recipient]]"
                ),
            );
        std::fs::write(&path, config).unwrap();
        path
    };
    let path = write(&url);
    let out = textback_async(&["doctor", "--config", path.to_str().unwrap()]).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ok       model for acme") && stdout.contains("answered a sample reply in"),
        "{stdout}"
    );
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Nothing listening: a warning that says the engine carries on, not a failure.
    let port = common::llm::free_port();
    let path = write(&format!("http://127.0.0.1:{port}"));
    let out = textback_async(&["doctor", "--config", path.to_str().unwrap()]).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("warning  model for acme"), "{stdout}");
    assert!(
        stdout.contains("could not reach the model server")
            && stdout.contains("the built-in engine reads replies alone"),
        "{stdout}"
    );
}
