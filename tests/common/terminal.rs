//! A real terminal for the binary: tmux (Debian's package; scripts/test.sh installs it) runs the
//! command in a pane, `send-keys` types each answer as a person would, `capture-pane` reads the
//! screen back. Each terminal has its own tmux server (its own socket), so tests do not meet.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a screen may take to show what is waited for: only reached when something is broken.
const WAIT: Duration = Duration::from_secs(60);

pub struct Terminal {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Terminal {
    /// Starts `command` (one shell command line) in a 160x50 terminal. When it ends, the pane
    /// shows `[exited N]` and stays, so that its last screen can be read.
    pub fn start(command: &str, cwd: &Path) -> Terminal {
        let dir = tempfile::tempdir().expect("a directory for the tmux socket");
        let socket = dir.path().join("tmux.sock");
        let wrapped = format!("{command}; printf '\\n[exited %s]\\n' \"$?\"; exec cat");
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "50",
            ])
            .arg("-c")
            .arg(cwd)
            .arg(wrapped)
            .env_remove("TMUX")
            .env_remove("TEXTBACK_CONFIG")
            .status()
            .expect("start tmux (Debian package tmux; scripts/test.sh installs it)");
        assert!(status.success(), "tmux new-session failed");
        let terminal = Terminal { socket, _dir: dir };
        terminal.tmux(&["set-option", "-g", "history-limit", "10000"]);
        terminal
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Everything the pane has shown, its scroll-back included, lines joined where they wrapped.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-10000"])
    }

    /// The last line with something on it: where the cursor waits for an answer.
    fn last_line(&self) -> String {
        self.screen()
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or_default()
            .to_string()
    }

    /// Types `text` and Enter, as a person would.
    pub fn type_line(&self, text: &str) {
        if !text.is_empty() {
            self.tmux(&["send-keys", "-l", text]);
        }
        self.tmux(&["send-keys", "Enter"]);
    }

    /// Waits until the last line on screen (the prompt) contains `prompt`, then types `answer`.
    pub fn answer(&self, prompt: &str, answer: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.last_line().contains(prompt) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no prompt {prompt:?}; the screen:\n{}",
                self.screen()
            );
            // A bounded poll of a screen another process draws.
            std::thread::sleep(Duration::from_millis(50));
        }
        self.type_line(answer);
    }

    /// Waits until the screen contains `text`; returns the screen.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never showed; the screen:\n{screen}"
            );
            // A bounded poll of a screen another process draws.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the command to end; returns its exit code and the screen.
    pub fn wait_exit(&self) -> (i32, String) {
        let screen = self.wait_for("[exited ");
        let code = screen
            .rsplit("[exited ")
            .next()
            .and_then(|rest| rest.split(']').next())
            .and_then(|code| code.trim().parse().ok())
            .unwrap_or(-1);
        (code, screen)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}
