//! The owner in the loop, through the daemon with real parts: lead states set from the
//! dashboard (a real session and CSRF token), the API (a bearer token) and the CLI (the built
//! binary), each told to a real HTTP server on loopback as a signed `lead.state` webhook.

mod common;

use std::process::Stdio;

use common::Harness;
use common::servers::HttpRecorder;
use textback::leads::webhook;
use textback::modem::virtual_modem::Options;
use tokio::io::AsyncWriteExt;

const PASSWORD: &str = "correct horse battery";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Runs the binary with the harness's config; returns (exit code, stdout, stderr).
async fn textback(harness: &Harness, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let config = harness.write_config();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(args)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run textback");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).await.unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in over HTTP; returns the session cookie header value.
async fn log_in(http: &reqwest::Client, base: &str) -> String {
    let form = http.get(format!("{base}/login")).send().await.unwrap();
    let nonce = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("textback_login="))
        .and_then(|v| v.split(';').next())
        .expect("a login cookie")
        .to_string();
    let ok = http
        .post(format!("{base}/login"))
        .header("cookie", format!("textback_login={nonce}"))
        .form(&[("password", PASSWORD), ("csrf", nonce.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let session = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("textback_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    format!("textback_session={session}")
}

/// A hidden `csrf` input's value in a page.
fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_is_marked_from_the_dashboard_the_api_and_the_cli_and_the_crm_is_told_each_time() {
    let http_server = HttpRecorder::start(Vec::new()).await;
    let harness = Harness::with_extra(
        Options::default(),
        &format!(
            "webhook = \"{}\"\n\n[notify.webhook]\nsecret = \"{SECRET}\"\ntimeout_seconds = 5\n",
            http_server.url("/crm")
        ),
    );
    let running = harness.start().await;
    harness.lead_from_a_conversation().await;
    // The lead's own webhook first.
    assert_eq!(http_server.wait_requests("/crm", 1).await.len(), 1);
    let (code, _, stderr) = textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (_, token, _) = textback(&harness, &["dashboard", "api-token"], None).await;
    let token = token.trim().to_string();
    let base = format!("http://{}", running.dashboard);
    let http = client();

    // New until someone acts on it.
    let (code, list, _) = textback(&harness, &["leads", "list"], None).await;
    assert_eq!(code, 0);
    assert!(list.lines().next().unwrap().ends_with("  new"), "{list}");

    // The dashboard: the lead page shows the state and a button per other state.
    let cookie = log_in(&http, &base).await;
    let page = http
        .get(format!("{base}/leads/1"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("State: <strong class=\"state-new\">new</strong>"),
        "{page}"
    );
    assert!(page.contains("id=\"state-called_back\""), "{page}");
    let csrf = csrf_in(&page);
    // Without the session's CSRF token, or without a session, nothing changes.
    let forged = http
        .post(format!("{base}/leads/1/state"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged"), ("state", "won")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let anonymous = http
        .post(format!("{base}/leads/1/state"))
        .form(&[("csrf", csrf.as_str()), ("state", "won")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/login");
    assert_eq!(harness.query_strings("SELECT state FROM leads"), ["new"]);
    let marked = http
        .post(format!("{base}/leads/1/state"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("state", "called_back")])
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), 303);
    let page = http
        .get(format!("{base}/leads/1"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(">called back</strong>"), "{page}");
    assert!(page.contains("by dashboard"), "{page}");

    // The API, with the bearer token; a state that is not one is refused in words.
    let api = |state: &str, by: Option<&str>| {
        let mut body = serde_json::json!({ "state": state });
        if let Some(by) = by {
            body["by"] = serde_json::json!(by);
        }
        http.post(format!("{base}/api/v1/leads/1/state"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let refused = api("sold", None).await.unwrap();
    assert_eq!(refused.status(), 400);
    let refused: serde_json::Value = refused.json().await.unwrap();
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("new, called_back, won or lost"),
        "{refused}"
    );
    let unauthorised = http
        .post(format!("{base}/api/v1/leads/1/state"))
        .json(&serde_json::json!({"state": "won"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
    let missing = api("won", None).await.unwrap();
    assert_eq!(missing.status(), 200);
    let won: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(won["changed"], true);
    assert_eq!(won["lead"]["state"], "won");
    assert_eq!(won["lead"]["state_by"], "api");
    let again: serde_json::Value = api("won", Some("Sam")).await.unwrap().json().await.unwrap();
    assert_eq!(
        again["changed"], false,
        "the same state twice is one change"
    );
    let no_lead = http
        .post(format!("{base}/api/v1/leads/99/state"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"state": "won"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_lead.status(), 404);

    // The CLI.
    let (code, out, stderr) = textback(
        &harness,
        &["leads", "state", "1", "lost", "--by", "Sam"],
        None,
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("lead 1: lost (by cli: Sam"), "{out}");
    let (code, _, stderr) = textback(&harness, &["leads", "state", "1", "sold"], None).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("not a lead state"), "{stderr}");
    let (code, _, stderr) = textback(&harness, &["leads", "state", "42", "won"], None).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no lead 42"), "{stderr}");
    let (_, list, _) = textback(&harness, &["leads", "list"], None).await;
    assert!(
        list.lines().next().unwrap().contains("  lost (by cli: Sam"),
        "{list}"
    );

    // The CRM heard of each change once, in order, each signed, each with its own key.
    let hooks = http_server.wait_requests("/crm", 4).await;
    assert_eq!(hooks.len(), 4, "the lead and three changes");
    let changes: Vec<(String, String)> = hooks[1..]
        .iter()
        .map(|hook| {
            let body = hook.json();
            assert_eq!(body["event"], "lead.state");
            assert_eq!(body["lead_id"], 1);
            assert_eq!(body["caller"]["name"], "Sarah Jones");
            let timestamp: i64 = hook
                .header(webhook::TIMESTAMP_HEADER)
                .and_then(|t| t.parse().ok())
                .unwrap();
            assert!(webhook::verify(
                SECRET.as_bytes(),
                hook.header(webhook::SIGNATURE_HEADER).unwrap(),
                timestamp,
                &hook.body
            ));
            (
                body["state"]["state"].as_str().unwrap().to_string(),
                body["state"]["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("called_back".to_string(), "dashboard".to_string()),
            ("won".to_string(), "api".to_string()),
            ("lost".to_string(), "cli: Sam".to_string()),
        ]
    );
    let keys: Vec<&str> = hooks[1..]
        .iter()
        .map(|h| h.header(webhook::IDEMPOTENCY_HEADER).unwrap())
        .collect();
    assert!(keys[0].starts_with("lead-1-state-1-"), "{keys:?}");
    assert!(keys[2].starts_with("lead-1-state-3-"), "{keys:?}");
    // The API shows the history.
    let lead: serde_json::Value = http
        .get(format!("{base}/api/v1/leads/1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(lead["state"], "lost");
    assert_eq!(lead["state_history"].as_array().unwrap().len(), 3);
    running.stop().await.unwrap();
}
