//! `textback demo --serve` as a newcomer uses it: the story, then the dashboard kept up with a
//! one-time login link, clicked through in a real headless Chromium (the lead, its transcript,
//! the calls, the modem), the story's transcript link opened without a login, and Ctrl-C, after
//! which nothing is left on disk: the demo wrote only inside its temporary folder.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::webdriver::Browser;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The files and folders directly in `dir`.
fn entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_its_dashboard_until_ctrl_c_and_leaves_nothing_behind() {
    // Where the demo could write: its temporary folder (TMPDIR), a home, the working directory.
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_textback"))
        .args(["demo", "--serve"])
        .env("TMPDIR", tmp.path())
        .env("HOME", home.path())
        .env_remove("TEXTBACK_CONFIG")
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("run textback demo --serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut story = String::new();
    let link = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            story.push_str(&line);
            story.push('\n');
            if let Some(at) = line.find("http://127.0.0.1:")
                && line.contains("/login/link/")
            {
                return line[at..].trim().to_string();
            }
        }
        panic!("the demo ended without a login link:\n{story}");
    })
    .await
    .expect("a login link within 2 minutes");
    assert!(
        story.contains("lead 1 for Brightwater Plumbing (complete)"),
        "{story}"
    );
    let base = link
        .split("/login/link/")
        .next()
        .unwrap_or_default()
        .to_string();
    let transcript_link = story
        .split_whitespace()
        .find(|word| word.starts_with(&format!("{base}/t/")))
        .unwrap_or_else(|| panic!("a transcript link in the lead summary:\n{story}"))
        .to_string();

    // While it serves, everything it keeps is in one folder in TMPDIR, and nothing elsewhere.
    assert_eq!(entries(tmp.path()).len(), 1, "{:?}", entries(tmp.path()));
    assert!(
        entries(home.path()).is_empty(),
        "{:?}",
        entries(home.path())
    );
    assert!(entries(cwd.path()).is_empty(), "{:?}", entries(cwd.path()));

    let browser = Browser::start().await;
    // The link logs in and lands on the leads page.
    browser.goto(&link).await;
    let landing = browser.text("h1").await;
    let leads = browser.text("#leads").await;
    assert!(leads.contains("Dave Smith"), "{landing}: {leads}");
    browser.click("#leads a").await;
    browser.wait_url(|url| url.contains("/leads/")).await;
    let transcript = browser.text("#transcript").await;
    for expected in [
        "Dave Smith",
        "The boiler is leaking under the kitchen sink",
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
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-serve-lead.png"),
        &png,
    );

    browser.goto(&format!("{base}/calls")).await;
    let calls = browser.text("#calls").await;
    for expected in ["07700 900123", "texted", "withheld", "020 7946 0018"] {
        assert!(calls.contains(expected), "{expected:?} in:\n{calls}");
    }
    browser.goto(&format!("{base}/status")).await;
    let modems = browser.text("#modems").await;
    assert!(modems.contains("demo"), "{modems}");
    assert!(modems.contains("ready"), "{modems}");

    // The login link works once: a browser without the session is refused, in words.
    browser.delete_cookies().await;
    browser.goto(&link).await;
    assert_eq!(browser.text("h1").await, "This login link does not work");
    // The transcript link from the story opens its lead without a login.
    browser.goto(&transcript_link).await;
    assert!(browser.text("#transcript").await.contains("SW11 4AB"));
    browser.quit().await;

    // Ctrl-C: the demo stops, exits 0, and its temporary folder is gone.
    let pid = nix::unistd::Pid::from_raw(child.id().expect("the demo's pid") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the demo stops within 30 s of Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status:?}\n{rest}");
    assert!(
        rest.contains("Demo stopped and its temporary folder is deleted"),
        "{rest}"
    );
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    assert!(
        entries(home.path()).is_empty(),
        "{:?}",
        entries(home.path())
    );
    assert!(entries(cwd.path()).is_empty(), "{:?}", entries(cwd.path()));
}
