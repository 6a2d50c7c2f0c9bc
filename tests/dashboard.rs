//! The dashboard over real HTTP, and in a real headless Chromium: logging in, a lead and its
//! transcript, a transcript link without logging in, and refusals of everything else.

mod common;

use std::process::Stdio;

use common::Harness;
use common::webdriver::Browser;
use textback::leads::token::TranscriptToken;
use textback::modem::virtual_modem::Options;
use tokio::io::AsyncWriteExt;

const PASSWORD: &str = "correct horse battery";

/// Runs the binary with the harness's config; returns stdout.
async fn textback(harness: &Harness, args: &[&str], stdin: Option<&str>) -> String {
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
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn key(harness: &Harness) -> Vec<u8> {
    let connection = textback::store::open_read_only(&harness.database()).unwrap();
    textback::store::Tx::reader(&connection)
        .setting(textback::leads::deliver::LINK_KEY_SETTING)
        .unwrap()
        .expect("a link key")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of a cookie a response sets, and the whole Set-Cookie line.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|line| {
            let value = line
                .split(';')
                .next()
                .unwrap_or("")
                .trim_start_matches(&format!("{name}="))
                .to_string();
            (value, line.to_string())
        })
}

/// A hidden `csrf` input's value in a page.
fn csrf_in(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lets_in_only_a_session_or_a_signed_link() {
    let harness = Harness::with_extra(
        Options::default(),
        "\n[notify.webhook]\nsecret = \"s3cret-webhook-key-0123456789\"\n",
    );
    let running = harness.start().await;
    harness.lead_from_a_conversation().await;
    textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let token = textback(&harness, &["dashboard", "api-token"], None).await;
    let token = token.trim();
    let base = format!("http://{}", running.dashboard);
    let http = client();

    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Nothing readable without a session.
    for path in ["/", "/leads/1", "/calls", "/status", "/opt-outs", "/config"] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/login", "{path}");
    }
    for path in [
        "/api/v1/leads",
        "/api/v1/leads/1",
        "/api/v1/calls",
        "/api/v1/status",
        "/metrics",
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path} with a wrong token");
    }

    // Logging in: the form's cookie and field must match (a form posted from elsewhere fails).
    let form = http.get(format!("{base}/login")).send().await.unwrap();
    let (nonce, _) = set_cookie(&form, "textback_login").expect("a login cookie");
    let login = |password: &str, cookie: &str| {
        http.post(format!("{base}/login"))
            .header("cookie", format!("textback_login={cookie}"))
            .form(&[("password", password), ("csrf", nonce.as_str())])
            .send()
    };
    assert_eq!(login(PASSWORD, "forged").await.unwrap().status(), 403);
    assert_eq!(login("wrong password", &nonce).await.unwrap().status(), 401);
    let ok = login(PASSWORD, &nonce).await.unwrap();
    assert_eq!(ok.status(), 303);
    let (session, line) = set_cookie(&ok, "textback_session").expect("a session cookie");
    assert!(line.contains("HttpOnly"), "{line}");
    assert!(line.contains("SameSite=Strict"), "{line}");
    // Served over plain HTTP here (public_url http://...): no Secure flag, or the browser would
    // drop the cookie.
    assert!(!line.contains("Secure"), "{line}");
    let cookie = format!("textback_session={session}");

    let page = http
        .get(format!("{base}/leads/1"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "Sarah Jones",
        "Boiler leaking in the loft",
        "SW11 4AB",
        "Who am I speaking to?",
        "href=\"tel:+447700900123\"",
    ] {
        assert!(page.contains(expected), "{expected:?} in the lead page");
    }
    let list = http
        .get(format!("{base}/leads?q=07700900123&state=complete"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("href=\"/leads/1\""),
        "the search finds the lead"
    );
    let none = http
        .get(format!("{base}/leads?q=07700900999"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(none.contains("No leads match"));
    let config = http
        .get(format!("{base}/config"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(config.contains("Brightwater Plumbing"));
    assert!(
        !config.contains("s3cret-webhook-key"),
        "a secret on the config page"
    );
    assert!(config.contains("**REDACTED**"));

    // A form without its CSRF token is refused; with it, the opt-out is recorded.
    let opt_outs = http
        .get(format!("{base}/opt-outs"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&opt_outs);
    let refused = http
        .post(format!("{base}/opt-outs"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged"), ("number", "07700 900555")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let added = http
        .post(format!("{base}/opt-outs"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("number", "07700 900555")])
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 303);
    assert_eq!(
        harness.query_strings("SELECT number || ' ' || source FROM opt_outs"),
        ["+447700900555 dashboard"]
    );
    let removed = http
        .post(format!("{base}/opt-outs/remove"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("number", "+447700900555")])
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 303);
    assert_eq!(harness.query_i64("SELECT count(*) FROM opt_outs"), 0);

    // Signed transcript links: one lead, read-only, no login; a bad or expired one is refused.
    let key = key(&harness);
    let now = chrono::Utc::now().timestamp();
    let good = TranscriptToken::issue(&key, 1, now + 3600);
    let response = http.get(format!("{base}/t/{good}")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let page = response.text().await.unwrap();
    assert!(page.contains("Boiler leaking in the loft"));
    assert!(
        !page.contains("/logout"),
        "no navigation for a link visitor"
    );
    let expired = TranscriptToken::issue(&key, 1, now - 1);
    assert_eq!(
        http.get(format!("{base}/t/{expired}"))
            .send()
            .await
            .unwrap()
            .status(),
        410
    );
    let forged = TranscriptToken::issue(b"some other key", 1, now + 3600);
    assert_eq!(
        http.get(format!("{base}/t/{forged}"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        http.get(format!("{base}/t/garbage"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // The API and /metrics with the token.
    let leads: serde_json::Value = http
        .get(format!("{base}/api/v1/leads"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(leads[0]["id"], 1);
    assert_eq!(leads[0]["caller"], "+447700900123");
    let lead: serde_json::Value = http
        .get(format!("{base}/api/v1/leads/1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(lead["transcript"].as_array().is_some_and(|t| t.len() >= 7));
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "textback_missed_calls_total{decision=\"text\"} 1",
        "textback_replies_total 3",
        "textback_leads_total{state=\"complete\"} 1",
        "textback_lead_deliveries_total{channel=\"email\",state=\"pending\"} 1",
        "textback_modem_up{modem=\"main\"} 1",
        "textback_missed_call_to_sms_seconds_count 1",
        "textback_missed_call_to_sms_seconds_bucket{le=\"+Inf\"} 1",
    ] {
        assert!(metrics.contains(expected), "{expected:?} in:\n{metrics}");
    }
    // Which box this is, for a Prometheus that scrapes several (box.name: the host name here).
    let info = format!(
        "textback_box_info{{box=\"{}\",version=\"{}\"}} 1",
        harness.config.box_name,
        env!("CARGO_PKG_VERSION")
    );
    assert!(metrics.contains(&info), "{info:?} in:\n{metrics}");

    // Login attempts are limited per address.
    let form = http.get(format!("{base}/login")).send().await.unwrap();
    let (nonce, _) = set_cookie(&form, "textback_login").unwrap();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = http
            .post(format!("{base}/login"))
            .header("cookie", format!("textback_login={nonce}"))
            .form(&[("password", "guess"), ("csrf", nonce.as_str())])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    // The login above cleared the earlier failure: five 401s, then 429, even for the right one.
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    let right = http
        .post(format!("{base}/login"))
        .header("cookie", format!("textback_login={nonce}"))
        .form(&[("password", PASSWORD), ("csrf", nonce.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 429);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_owner_reads_a_lead_in_a_real_browser() {
    let harness = Harness::with_options(Options::default());
    let running = harness.start().await;
    harness.lead_from_a_conversation().await;
    textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let base = format!("http://{}", running.dashboard);
    let browser = Browser::start().await;

    // Not logged in: sent to the login page.
    browser.goto(&format!("{base}/leads/1")).await;
    browser.wait_url(|u| u.ends_with("/login")).await;
    browser.type_into("#password", "wrong password").await;
    browser.click("#login").await;
    assert_eq!(
        browser.text("#problem").await,
        "That password is not right."
    );
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login").await;
    let home = format!("{base}/");
    browser.wait_url(|u| u == home).await;
    let cookies = browser.cookies().await;
    let session = cookies
        .iter()
        .find(|c| c["name"] == "textback_session")
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");

    // The stylesheet applies under the Content-Security-Policy (the header's colour).
    assert_eq!(
        browser.css("header", "background-color").await,
        "rgba(15, 61, 62, 1)"
    );

    // The leads list, then the lead and its transcript.
    let leads = browser.text("#leads").await;
    assert!(leads.contains("Sarah Jones"), "{leads}");
    browser.click("#leads a").await;
    let lead = format!("{base}/leads/1");
    browser.wait_url(|u| u == lead).await;
    let transcript = browser.text("#transcript").await;
    for expected in [
        "Who am I speaking to?",
        "Sarah Jones",
        "What do you need help with?",
        "Boiler leaking in the loft",
        "SW11 4AB",
        "delivered",
    ] {
        assert!(
            transcript.contains(expected),
            "{expected:?} in:\n{transcript}"
        );
    }
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"));
    // Kept for people to look at (the closing note describes it).
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-lead.png"),
        &png,
    );

    // A transcript link from a lead summary, in a browser with no session.
    browser.delete_cookies().await;
    let key = key(&harness);
    let now = chrono::Utc::now().timestamp();
    browser
        .goto(&format!(
            "{base}/t/{}",
            TranscriptToken::issue(&key, 1, now + 3600)
        ))
        .await;
    assert!(
        browser
            .text("#transcript")
            .await
            .contains("Boiler leaking in the loft")
    );
    // ... which opens that lead only: the rest still wants a login.
    browser.goto(&format!("{base}/calls")).await;
    browser.wait_url(|u| u.ends_with("/login")).await;
    // A bad and an expired link are refused, in words.
    browser
        .goto(&format!("{base}/t/AQAAAAAAAAABAAAAAGstCOo.forged"))
        .await;
    assert_eq!(browser.text("h1").await, "This link is not valid");
    browser
        .goto(&format!(
            "{base}/t/{}",
            TranscriptToken::issue(&key, 1, now - 60)
        ))
        .await;
    assert_eq!(browser.text("h1").await, "This link has expired");
    browser.quit().await;
    running.stop().await.unwrap();
}

/// Checks the headers every dashboard response carries; `what` names the response.
fn assert_security_headers(response: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name} header"))
            .to_string()
    };
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(
            policy.contains(directive),
            "{what}: {directive} in {policy}"
        );
    }
    assert!(
        !policy.contains("unsafe-inline") && !policy.contains("script-src"),
        "{what}: no inline styles or scripts allowed: {policy}"
    );
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("cache-control"), "no-store", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_response_carries_the_security_headers() {
    let harness = Harness::new();
    let running = harness.start().await;
    harness.lead_from_a_conversation().await;
    textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let token = textback(&harness, &["dashboard", "api-token"], None).await;
    let token = token.trim();
    let base = format!("http://{}", running.dashboard);
    let http = client();

    let form = http.get(format!("{base}/login")).send().await.unwrap();
    assert_security_headers(&form, "the login page");
    let (nonce, _) = set_cookie(&form, "textback_login").expect("a login cookie");
    let login = |password: &str| {
        http.post(format!("{base}/login"))
            .header("cookie", format!("textback_login={nonce}"))
            .form(&[("password", password), ("csrf", nonce.as_str())])
            .send()
    };
    assert_security_headers(&login("wrong password").await.unwrap(), "a wrong password");
    let ok = login(PASSWORD).await.unwrap();
    assert_security_headers(&ok, "the login redirect");
    let (session, _) = set_cookie(&ok, "textback_session").expect("a session cookie");
    let cookie = format!("textback_session={session}");

    for path in [
        "/",
        "/leads/1",
        "/leads/999",
        "/calls",
        "/status",
        "/opt-outs",
        "/config",
        "/no-such-page",
    ] {
        let response = http
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert!(response.status().as_u16() < 500, "{path}");
        assert_security_headers(&response, path);
    }
    // The status page says whether notices (call backs, alerts, summaries) got through.
    let status = http
        .get(format!("{base}/status"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        status.contains("<h2>Notices not delivered</h2>"),
        "{status}"
    );
    for path in ["/", "/healthz", "/t/garbage"] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_security_headers(&response, &format!("{path} without a session"));
    }
    let link = TranscriptToken::issue(&key(&harness), 1, chrono::Utc::now().timestamp() + 3600);
    let response = http.get(format!("{base}/t/{link}")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_security_headers(&response, "a transcript link");
    for path in ["/api/v1/leads", "/api/v1/leads/1", "/metrics"] {
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_security_headers(&response, path);
        let refused = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_security_headers(&refused, &format!("{path} without a token"));
    }
    running.stop().await.unwrap();
}

/// A login form's nonce (cookie and field), fetched by `http`.
async fn login_nonce(http: &reqwest::Client, base: &str) -> String {
    let form = http.get(format!("{base}/login")).send().await.unwrap();
    set_cookie(&form, "textback_login")
        .expect("a login cookie")
        .0
}

/// Posts the login form with `password`; returns the response.
async fn post_login(
    http: &reqwest::Client,
    base: &str,
    nonce: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = http
        .post(format!("{base}/login"))
        .header("cookie", format!("textback_login={nonce}"))
        .form(&[("password", password), ("csrf", nonce)]);
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.unwrap()
}

/// A client whose connections come from `address` (any 127.x.y.z is this box's loopback).
fn client_from(address: std::net::Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::V4(address))
        .build()
        .unwrap()
}

/// Every password check used to run at once, each holding about 19 MiB that was not given back:
/// 300 wrong passwords from 300 addresses took the daemon to 3.7 GB. Checks now run one at a
/// time on one thread that reuses its memory, with a short queue (503 beyond it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_from_200_addresses_at_once_keep_the_daemon_under_100_mb() {
    const CLIENTS: u32 = 200;
    const LIMIT_MIB: f64 = 100.0;
    let harness = Harness::new();
    textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let daemon = common::process::DaemonProcess::spawn(&harness.write_config()).await;
    let base = format!("http://{}", daemon.dashboard);
    let started = daemon.memory();
    for round in 1..=2 {
        // Each client from its own address (127.0.1.1 ...), its form fetched first, then all
        // the wrong passwords posted at once.
        let mut clients = Vec::new();
        for n in 0..CLIENTS {
            let address = std::net::Ipv4Addr::new(127, 0, 1 + (n / 250) as u8, 1 + (n % 250) as u8);
            let http = client_from(address);
            let nonce = login_nonce(&http, &base).await;
            clients.push((http, nonce));
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(clients.len()));
        let mut attempts = tokio::task::JoinSet::new();
        for (http, nonce) in clients {
            let base = base.clone();
            let barrier = barrier.clone();
            attempts.spawn(async move {
                barrier.wait().await;
                post_login(&http, &base, &nonce, &format!("guess {round}"), None)
                    .await
                    .status()
                    .as_u16()
            });
        }
        let mut statuses = std::collections::BTreeMap::new();
        while let Some(status) = attempts.join_next().await {
            *statuses.entry(status.unwrap()).or_insert(0) += 1;
        }
        let memory = daemon.memory();
        eprintln!(
            "round {round}: {CLIENTS} wrong passwords at once: {statuses:?}; daemon RSS {:.1} MiB (peak {:.1} MiB, {:.1} MiB at start)",
            memory.rss_mib(),
            memory.peak_mib(),
            started.rss_mib()
        );
        assert!(
            statuses.keys().all(|s| [401, 429, 503].contains(s)),
            "{statuses:?}"
        );
        assert!(statuses.get(&401).is_some_and(|n| *n >= 1), "{statuses:?}");
        assert!(
            memory.peak_mib() < LIMIT_MIB,
            "peak {:.1} MiB",
            memory.peak_mib()
        );
        assert!(memory.rss_mib() < LIMIT_MIB, "{:.1} MiB", memory.rss_mib());
    }
    // The owner still gets in (from the box itself).
    let http = client();
    let nonce = login_nonce(&http, &base).await;
    assert_eq!(
        post_login(&http, &base, &nonce, PASSWORD, None)
            .await
            .status(),
        303
    );
    daemon.stop().await;
}

/// The count is taken before each check: 200 attempts at once from one address got 20 passwords
/// checked; now exactly five are, and the rest are refused unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_five_passwords_checked_however_many_it_sends_at_once() {
    let harness = Harness::new();
    let running = harness.start().await;
    textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let base = format!("http://{}", running.dashboard);
    let http = client_from(std::net::Ipv4Addr::new(127, 0, 0, 9));
    let nonce = login_nonce(&http, &base).await;
    let mut attempts = tokio::task::JoinSet::new();
    for n in 0..200 {
        let (http, base, nonce) = (http.clone(), base.clone(), nonce.clone());
        attempts.spawn(async move {
            post_login(&http, &base, &nonce, &format!("guess {n}"), None)
                .await
                .status()
                .as_u16()
        });
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(status) = attempts.join_next().await {
        *statuses.entry(status.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(
        statuses,
        std::collections::BTreeMap::from([(401, 5), (429, 195)])
    );
    // Locked: even the right password is not checked now.
    assert_eq!(
        post_login(&http, &base, &nonce, PASSWORD, None)
            .await
            .status(),
        429
    );
    running.stop().await.unwrap();
}

/// Behind a reverse proxy every client arrived from the proxy's address, so anyone could lock
/// the owner out. With `dashboard.trusted_proxy`, the client is the address that proxy put last
/// in X-Forwarded-For, and nobody else's X-Forwarded-For is believed. A limit on checks a
/// minute for the whole box stops a spray of addresses; the box itself is exempt from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_clients_are_limited_apart_and_the_box_itself_always_gets_in() {
    const CHECKS_PER_MINUTE: usize = 20;
    let harness = Harness::with_edit(Options::default(), "", |text| {
        text.replace(
            "public_url = \"http://127.0.0.1:8080\"",
            "public_url = \"http://127.0.0.1:8080\"\ntrusted_proxy = \"127.0.0.1\"",
        )
    });
    let running = harness.start().await;
    textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let base = format!("http://{}", running.dashboard);
    // The proxy (127.0.0.1) forwards one client five times: locked.
    let proxy = client();
    let nonce = login_nonce(&proxy, &base).await;
    let started = std::time::Instant::now();
    let mut checks = 0;
    for _ in 0..5 {
        let status = post_login(&proxy, &base, &nonce, "guess", Some("192.0.2.1"))
            .await
            .status();
        assert_eq!(status, 401);
        checks += 1;
    }
    assert_eq!(
        post_login(&proxy, &base, &nonce, PASSWORD, Some("192.0.2.1"))
            .await
            .status(),
        429
    );
    // Another client behind the proxy is not locked; a client's own X-Forwarded-For entry is
    // not believed, only the one the proxy added last.
    assert_eq!(
        post_login(
            &proxy,
            &base,
            &nonce,
            "guess",
            Some("192.0.2.1, 198.51.100.9")
        )
        .await
        .status(),
        401
    );
    checks += 1;
    // Not the proxy: its X-Forwarded-For is ignored, and it is judged by its own address.
    let stranger = client_from(std::net::Ipv4Addr::new(127, 0, 0, 2));
    let stranger_nonce = login_nonce(&stranger, &base).await;
    for _ in 0..5 {
        let status = post_login(
            &stranger,
            &base,
            &stranger_nonce,
            "guess",
            Some("192.0.2.77"),
        )
        .await
        .status();
        assert_eq!(status, 401);
    }
    assert_eq!(
        post_login(
            &stranger,
            &base,
            &stranger_nonce,
            "guess",
            Some("192.0.2.78")
        )
        .await
        .status(),
        429,
        "127.0.0.2 is locked, whatever it claims to forward"
    );
    // A spray of addresses behind the proxy: one guess each, until the box's limit a minute.
    let mut refused = 0;
    for n in 1..=30 {
        let client = format!("203.0.113.{n}");
        match post_login(&proxy, &base, &nonce, "guess", Some(&client))
            .await
            .status()
            .as_u16()
        {
            401 => checks += 1,
            429 => refused += 1,
            other => panic!("{client}: {other}"),
        }
    }
    // The limit is a sliding minute: where a busy machine took longer than a minute to get
    // here, each minute begun allows its own share, and no more.
    let minutes = started.elapsed().as_secs() as usize / 60 + 1;
    assert!(
        checks <= CHECKS_PER_MINUTE * minutes,
        "{checks} checks in {minutes} minute(s)"
    );
    assert!(
        refused >= (30 + 6_usize).saturating_sub(CHECKS_PER_MINUTE * minutes),
        "{refused} refused in {minutes} minute(s)"
    );
    // The owner on the box itself (through the proxy, which says so) is not held to the
    // box's limit, and gets in.
    assert_eq!(
        post_login(&proxy, &base, &nonce, PASSWORD, Some("127.0.0.1"))
            .await
            .status(),
        303
    );
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_every_session() {
    let harness = Harness::new();
    let running = harness.start().await;
    textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let base = format!("http://{}", running.dashboard);
    let http = client();
    let nonce = login_nonce(&http, &base).await;
    let ok = post_login(&http, &base, &nonce, PASSWORD, None).await;
    assert_eq!(ok.status(), 303);
    let (session, _) = set_cookie(&ok, "textback_session").expect("a session");
    let cookie = format!("textback_session={session}");
    let page = |cookie: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.get(format!("{base}/calls"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(page(cookie.clone()).await, 200);
    let said = textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some("a new password entirely\n"),
    )
    .await;
    assert!(said.contains("every open session has ended"), "{said}");
    assert_eq!(page(cookie).await, 303, "the old session is over");
    assert_eq!(
        post_login(&http, &base, &nonce, PASSWORD, None)
            .await
            .status(),
        401
    );
    let ok = post_login(&http, &base, &nonce, "a new password entirely", None).await;
    assert_eq!(ok.status(), 303);
    let (session, _) = set_cookie(&ok, "textback_session").expect("a session");
    assert_eq!(page(format!("textback_session={session}")).await, 200);
    running.stop().await.unwrap();
}

/// The owner locked out (or without the password to hand) gets in with a link from the CLI on
/// the box: it opens one session, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_link_from_the_cli_opens_one_session_once_even_when_locked_out() {
    let harness = Harness::new();
    let running = harness.start().await;
    textback(
        &harness,
        &["dashboard", "set-password", "--stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let base = format!("http://{}", running.dashboard);
    let http = client();
    let nonce = login_nonce(&http, &base).await;
    for _ in 0..5 {
        post_login(&http, &base, &nonce, "guess", None).await;
    }
    assert_eq!(
        post_login(&http, &base, &nonce, PASSWORD, None)
            .await
            .status(),
        429
    );

    let printed = textback(&harness, &["dashboard", "login-link"], None).await;
    let link = printed.trim();
    // Printed with dashboard.public_url (http://127.0.0.1:8080 in the test config).
    let path = link
        .strip_prefix("http://127.0.0.1:8080")
        .unwrap_or_else(|| panic!("a link on public_url: {printed}"));
    assert!(path.starts_with("/login/link/"), "{path}");
    let opened = http.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()["location"], "/");
    let (session, line) = set_cookie(&opened, "textback_session").expect("a session");
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    let calls = http
        .get(format!("{base}/calls"))
        .header("cookie", format!("textback_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(calls.status(), 200);
    // Once only.
    let again = http.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(again.status(), 403);
    assert!(set_cookie(&again, "textback_session").is_none());
    // A link that was never issued.
    let forged = http
        .get(format!(
            "{base}/login/link/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    running.stop().await.unwrap();
}

/// Requests whose headers never end, on as many connections as the dashboard takes: hyper
/// buffers about 400 KiB of one request's headers, so 250 of them held 100 MB. A connection is
/// now closed once it has sent 64 KiB without an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_headers_on_many_connections_keep_the_daemon_under_100_mb() {
    use tokio::io::AsyncReadExt;
    const CONNECTIONS: usize = 250;
    const EACH: usize = 350 * 1024;
    let harness = Harness::new();
    let daemon = common::process::DaemonProcess::spawn(&harness.write_config()).await;
    let started = daemon.memory();
    let line = format!("X-Filler: {}\r\n", "y".repeat(1000));
    let mut streams = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut stream = tokio::net::TcpStream::connect(daemon.dashboard)
            .await
            .unwrap();
        let _ = stream
            .write_all(b"POST /login HTTP/1.1\r\nHost: textback\r\n")
            .await;
        streams.push(stream);
    }
    // Each connection sends its share (one the daemon closed stops taking bytes), then waits
    // for its end: closed, or answered 431 and closed. The daemon has then read all it will.
    let mut senders = tokio::task::JoinSet::new();
    for mut stream in streams {
        let line = line.clone();
        senders.spawn(async move {
            let mut sent = 0;
            while sent < EACH {
                if stream.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                sent += line.len();
            }
            let mut answer = Vec::new();
            let ended = tokio::time::timeout(common::WAIT, stream.read_to_end(&mut answer))
                .await
                .is_ok();
            (ended, String::from_utf8_lossy(&answer).into_owned())
        });
    }
    let mut ended = 0;
    while let Some(outcome) = senders.join_next().await {
        let (closed, answer) = outcome.unwrap();
        ended += usize::from(closed);
        assert!(!answer.contains(" 200 "), "{answer}");
    }
    let memory = daemon.memory();
    eprintln!(
        "{CONNECTIONS} connections x {} KiB of headers ({ended} closed): daemon RSS {:.1} MiB (peak {:.1} MiB, {:.1} MiB at start)",
        EACH / 1024,
        memory.rss_mib(),
        memory.peak_mib(),
        started.rss_mib()
    );
    assert!(
        memory.peak_mib() < 100.0,
        "peak {:.1} MiB",
        memory.peak_mib()
    );
    daemon.stop().await;
}
