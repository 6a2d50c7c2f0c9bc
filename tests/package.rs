//! The installer's kit as built: the .deb made with cargo-deb from this build's binary, its files
//! checked against README's table, lintian and shellcheck on it, then installed, set up as
//! README's install section says (step by step, `textback init` typed in a real terminal),
//! upgraded with the edited config, removed and purged in a throwaway Debian root, never on
//! this machine. In that root, systemd checks the unit (`systemd-analyze verify`, and `security`,
//! whose figure README gives) and udev checks the rules (`udevadm verify`).
//!
//! The root is a minimal Debian made by mmdebstrap from Debian's packages, cached as a tarball
//! under ~/.cache/textback (made once, a few minutes, 170 MB; unpacked for each run in seconds) and
//! entered with chroot inside a private mount namespace (unshare), so nothing it mounts outlives
//! the command. This needs root, as CI and the development machines run. scripts/test.sh installs
//! cargo-deb, lintian, shellcheck, mmdebstrap and tmux.
//!
//! The package holds the binary `cargo test` built (the dev profile, stripped by cargo-deb): the
//! same code as `cargo deb`'s release build, without a second full build in the suite.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::terminal::Terminal;

/// The Debian release of the throwaway root: the current stable, whose udev has `udevadm verify`.
const SUITE: &str = "trixie";
/// What the root holds besides the minimal base: systemd and udev (they check the unit and the
/// rules), the package's dependency usb-modeswitch (so installing needs no network), and what
/// README's steps use (sudo, adduser).
const ROOT_PACKAGES: &str = "systemd,udev,adduser,usb-modeswitch,sudo";
/// The unit and the rules where the package puts them.
const UNIT: &str = "/usr/lib/systemd/system/textback.service";
const RULES: &str = "/usr/lib/udev/rules.d/99-textback.rules";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a host command; returns its output, stdout and stderr together as text.
fn run(command: &mut Command) -> (Output, String) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("running {command:?}: {err}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

fn succeed(command: &mut Command) -> String {
    let description = format!("{command:?}");
    let (output, text) = run(command);
    assert!(output.status.success(), "{description} failed:\n{text}");
    text
}

/// The two packages: the version being installed, and the same one a revision later for the
/// upgrade. Built once for all tests of this file.
struct Debs {
    first: PathBuf,
    second: PathBuf,
}

fn debs() -> &'static Debs {
    static DEBS: OnceLock<Debs> = OnceLock::new();
    DEBS.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        // cargo-deb reads the assets from target/<profile>/ of the target directory this binary
        // was built in.
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_textback"));
        let target_dir = binary
            .parent()
            .and_then(Path::parent)
            .expect("the binary is in <target>/debug/");
        let version = env!("CARGO_PKG_VERSION");
        let build = |revision: &str| -> PathBuf {
            let file = out.join(format!("textback_{version}-{revision}_amd64.deb"));
            succeed(
                Command::new("cargo")
                    .args(["deb", "--no-build", "--profile", "dev", "--strip", "--fast"])
                    .args(["--deb-version", &format!("{version}-{revision}")])
                    .arg("--output")
                    .arg(&file)
                    .env("CARGO_TARGET_DIR", target_dir)
                    .current_dir(manifest_dir()),
            );
            assert!(file.exists(), "cargo deb made no {}", file.display());
            file
        };
        Debs {
            first: build("1"),
            second: build("2"),
        }
    })
}

/// The paths in README's table of what the package installs (a path ending in / stands for
/// every file under it).
fn readme_paths() -> Vec<String> {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    let section = readme
        .split("\n## Install")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has an Install section");
    section
        .lines()
        .filter(|line| line.starts_with("| `/"))
        .filter_map(|line| line.split('`').nth(1).map(str::to_string))
        .collect()
}

/// The files (not folders) in a .deb, as absolute paths.
fn package_files(deb: &Path) -> Vec<String> {
    let listing = succeed(Command::new("dpkg-deb").arg("--contents").arg(deb));
    listing
        .lines()
        .filter(|line| !line.starts_with('d'))
        .filter_map(|line| {
            let path = match line.find(" -> ") {
                Some(at) => line[..at].split_whitespace().last(),
                None => line.split_whitespace().last(),
            }?;
            Some(path.trim_start_matches('.').to_string())
        })
        .collect()
}

#[test]
fn the_package_holds_what_readme_lists_and_passes_lintian_and_shellcheck() {
    let deb = &debs().first;
    let files = package_files(deb);
    let listed = readme_paths();
    assert!(listed.len() >= 4, "README's table: {listed:?}");
    let covers = |listed: &str, file: &str| {
        listed == file || (listed.ends_with('/') && file.starts_with(listed))
    };
    for path in &listed {
        assert!(
            files.iter().any(|file| covers(path, file)),
            "README lists {path}, which the package does not hold: {files:#?}"
        );
    }
    for file in &files {
        assert!(
            listed.iter().any(|path| covers(path, file)),
            "the package holds {file}, which README's table does not list"
        );
    }

    // lintian: no error and no warning (each one accepted is overridden, with its reason, in
    // debian/textback.lintian-overrides).
    let (output, report) = run(Command::new("lintian")
        .args(["--fail-on", "error,warning", "--no-tag-display-limit"])
        .arg(deb));
    assert!(output.status.success(), "lintian:\n{report}");
    assert!(
        !report
            .lines()
            .any(|line| line.starts_with("E:") || line.starts_with("W:")),
        "lintian:\n{report}"
    );

    // The maintainer scripts as packaged (cargo-deb put its systemd lines in at #DEBHELPER#).
    let control = tempfile::tempdir().unwrap();
    succeed(
        Command::new("dpkg-deb")
            .arg("--control")
            .arg(deb)
            .arg(control.path()),
    );
    let mut scripts = 0;
    for name in ["preinst", "postinst", "prerm", "postrm"] {
        let script = control.path().join(name);
        if !script.exists() {
            continue;
        }
        scripts += 1;
        let (output, report) = run(Command::new("shellcheck").arg(&script));
        assert!(output.status.success(), "shellcheck {name}:\n{report}");
    }
    assert!(scripts >= 2, "postinst and postrm at least");
}

/// A throwaway Debian root, unpacked from the cached tarball.
struct Root {
    dir: tempfile::TempDir,
    /// The script that enters it (outside the root).
    enter: PathBuf,
    _scripts: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        let tarball = cached_root();
        let dir = tempfile::Builder::new()
            .prefix("textback-root-")
            .tempdir()
            .unwrap();
        succeed(
            Command::new("tar")
                .arg("-C")
                .arg(dir.path())
                .arg("-xf")
                .arg(&tarball),
        );
        let scripts = tempfile::tempdir().unwrap();
        let enter = scripts.path().join("enter.sh");
        // Runs inside `unshare --mount --propagation private`: these mounts vanish with it.
        std::fs::write(
            &enter,
            r#"set -e
root="$1"
mount -t proc proc "$root/proc"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
mount --bind "$root/dev/pts/ptmx" "$root/dev/ptmx"
exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    TERM="${TERM:-xterm}" LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive /bin/sh -c "$2"
"#,
        )
        .unwrap();
        Root {
            dir,
            enter,
            _scripts: scripts,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A host path for a path inside the root.
    fn file(&self, inside: &str) -> PathBuf {
        self.path().join(inside.trim_start_matches('/'))
    }

    fn command(&self, script: &str) -> Command {
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--fork", "/bin/sh"])
            .arg(&self.enter)
            .arg(self.path())
            .arg(script);
        command
    }

    /// The shell command line that runs `script` in the root, for a terminal.
    fn command_line(&self, script: &str) -> String {
        format!(
            "unshare --mount --propagation private --fork /bin/sh {} {} {}",
            quote(&self.enter.to_string_lossy()),
            quote(&self.path().to_string_lossy()),
            quote(script)
        )
    }

    /// Runs `script` in the root; returns whether it succeeded and what it printed.
    fn run(&self, script: &str) -> (bool, String) {
        let (output, text) = run(&mut self.command(script));
        (output.status.success(), text)
    }

    /// Runs `script` in the root, which must succeed; returns what it printed.
    fn ok(&self, script: &str) -> String {
        let (ok, text) = self.run(script);
        assert!(ok, "in the root: {script}\n{text}");
        text
    }

    /// `stat` of a path in the root: "owner:group mode".
    fn owner_and_mode(&self, inside: &str) -> String {
        self.ok(&format!("stat -c '%U:%G %a' {inside}"))
            .trim()
            .to_string()
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The tarball of the minimal root, made once with mmdebstrap and kept under ~/.cache/textback.
fn cached_root() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let cache = home.join(".cache/textback");
    std::fs::create_dir_all(&cache).unwrap();
    let name = format!(
        "debian-{SUITE}-{}.tar",
        ROOT_PACKAGES.replace([',', '-'], "")
    );
    let tarball = cache.join(name);
    if tarball.is_file() {
        return tarball;
    }
    // Made under a name of its own, then renamed: a run stopped halfway leaves no tarball that
    // looks whole. The name does not end in .tar, so the format is given (mmdebstrap would
    // otherwise make a directory).
    let partial = cache.join(format!("{}.partial", std::process::id()));
    let (output, text) = run(Command::new("mmdebstrap")
        .args(["--variant=minbase", "--format=tar", "--quiet"])
        .arg(format!("--include={ROOT_PACKAGES}"))
        .arg(SUITE)
        .arg(&partial));
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        panic!("mmdebstrap {SUITE} failed:\n{text}");
    }
    std::fs::rename(&partial, &tarball).unwrap();
    tarball
}

#[test]
fn readme_install_steps_then_upgrade_remove_and_purge_in_a_throwaway_root() {
    let debs = debs();
    let root = Root::new();
    let work = root.file("/root/textback/target/debian");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(&debs.first, work.join(debs.first.file_name().unwrap())).unwrap();

    // README: "sudo apt install ./target/debian/textback_*.deb", from the source folder.
    root.ok("cd /root/textback && sudo apt install ./target/debian/textback_*.deb");

    // The textback user, in dialout; its data folder; the config a conffile for it alone.
    let user = root.ok("getent passwd textback");
    assert!(user.contains(":/var/lib/textback:"), "{user}");
    let groups = root.ok("id -nG textback");
    assert!(
        groups.split_whitespace().any(|group| group == "dialout"),
        "{groups}"
    );
    assert_eq!(
        root.owner_and_mode("/var/lib/textback"),
        "textback:textback 750"
    );
    assert_eq!(root.owner_and_mode("/etc/textback"), "root:textback 750");
    assert_eq!(
        root.owner_and_mode("/etc/textback/textback.toml"),
        "root:textback 640"
    );
    let conffiles = root.ok("dpkg-query -W -f='${Conffiles}' textback");
    assert!(
        conffiles.contains("/etc/textback/textback.toml"),
        "{conffiles}"
    );
    root.ok("setpriv --reuid=textback --regid=textback --init-groups cat /etc/textback/textback.toml >/dev/null");
    let (read, why) = root.run(
        "setpriv --reuid=nobody --regid=nogroup --clear-groups cat /etc/textback/textback.toml",
    );
    assert!(!read, "another user read the config: {why}");
    assert!(why.contains("Permission denied"), "{why}");

    // The unit, as systemd of that root reads it, and its exposure, as README gives it.
    let verify = root.ok(&format!("systemd-analyze verify {UNIT}"));
    assert!(
        !verify.contains("textback.service"),
        "systemd-analyze verify:\n{verify}"
    );
    let security = root.ok(&format!("systemd-analyze security --offline=true {UNIT}"));
    let score = security
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for textback.service: ")
                .nth(1)
        })
        .unwrap_or_else(|| panic!("no exposure level:\n{security}"));
    let mut words = score.split_whitespace();
    let (figure, verdict) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let value: f64 = figure.parse().unwrap_or(10.0);
    assert!(value <= 2.0 && verdict == "OK", "{security}");
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("exposure level {figure} {verdict}")),
        "README should give the unit's exposure as \"exposure level {figure} {verdict}\":\n{security}"
    );
    // Each exposure left open (a line "✗ Setting=... description figure") is in README's table of
    // what it is for, named by its setting.
    let sandbox = readme
        .split("### The unit's sandbox")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a section \"The unit's sandbox\"");
    let mut left_open = 0;
    for line in security.lines() {
        let Some(open) = line.trim_start().strip_prefix("✗ ") else {
            continue;
        };
        let setting = open.split('=').next().unwrap_or(open);
        left_open += 1;
        assert!(
            sandbox.contains(&format!("`{setting}=")),
            "README's sandbox table does not say what {setting}= is left open for:\n{security}"
        );
    }
    assert!(left_open > 0, "no exposure line read:\n{security}");
    // The udev rules, as udev of that root reads them.
    let rules = root.ok(&format!("udevadm verify {RULES}"));
    assert!(rules.contains("Success: 1"), "{rules}");

    // README step 2: `sudo textback init`, typed in a terminal. The config the package installed
    // is still the example, so init replaces it without --force.
    let terminal = Terminal::start(&root.command_line("sudo textback init"), root.path());
    terminal.answer("Business name", "Harbour Locksmiths");
    terminal.answer("phone number(s)", "0161 496 0000");
    terminal.answer("question 1", "");
    terminal.answer("Email address for leads", "jo@harbour.example");
    terminal.answer("SMTP server", "");
    terminal.answer("Mobile number for leads by SMS", "07700 900789");
    terminal.answer("Web address (URL)", "");
    terminal.answer("SIP trunk or a phone system", "n");
    terminal.answer("Modem AT port", "");
    terminal.answer("SIM PIN", "");
    terminal.answer("Send a test SMS through the dongle", "n");
    let (code, screen) = terminal.wait_exit();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("wrote /etc/textback/textback.toml"),
        "{screen}"
    );
    assert!(
        screen.contains("run `textback init` again to be asked for them"),
        "the email warning ends its sentence:\n{screen}"
    );
    assert_eq!(
        root.owner_and_mode("/etc/textback/textback.toml"),
        "root:textback 640"
    );
    let config = std::fs::read_to_string(root.file("/etc/textback/textback.toml")).unwrap();
    assert!(config.contains("Harbour Locksmiths"), "{config}");
    root.ok("sudo -u textback textback config check /etc/textback/textback.toml");

    // Step 3: doctor, as the service user: everything but the dongle.
    let (healthy, doctor) = root.run("sudo -u textback textback doctor");
    assert!(!healthy, "no dongle, so doctor fails:\n{doctor}");
    assert!(doctor.contains("ok       config"), "{doctor}");
    assert!(
        doctor.contains("/var/lib/textback/textback.db will be created when textback first starts"),
        "{doctor}"
    );
    assert!(
        doctor.contains("no dongle at /dev/textback-modem: plug the dongle in"),
        "{doctor}"
    );

    // Step 4: enable and start. A chroot runs no systemd: the unit is enabled, and systemctl
    // refuses the start half (--now) for that reason only.
    let (_, enabled) = root.run("sudo systemctl enable --now textback");
    assert!(
        enabled.contains("Created symlink")
            && (enabled.contains("systemd is not running") || !enabled.contains("refusing")),
        "{enabled}"
    );
    let wants = root.file("/etc/systemd/system/multi-user.target.wants/textback.service");
    assert!(wants.is_symlink(), "textback is enabled");

    // Data: the dashboard password goes into the database the service will use.
    root.ok(
        "echo 'harbour-dashboard-1' | sudo -u textback textback dashboard set-password --stdin",
    );
    let database = root.owner_and_mode("/var/lib/textback/textback.db");
    assert!(database.starts_with("textback:textback "), "{database}");

    // Upgrade: the edited config, the data, the user and the enabled unit all stay.
    std::fs::copy(&debs.second, work.join(debs.second.file_name().unwrap())).unwrap();
    root.ok(&format!(
        "cd /root/textback && apt-get install -y ./target/debian/{}",
        debs.second.file_name().unwrap().to_string_lossy()
    ));
    let version = root.ok("dpkg-query -W -f='${Version}' textback");
    assert!(version.trim().ends_with("-2"), "{version}");
    assert_eq!(
        std::fs::read_to_string(root.file("/etc/textback/textback.toml")).unwrap(),
        config,
        "the upgrade kept the edited config"
    );
    assert!(root.file("/var/lib/textback/textback.db").exists());
    assert!(wants.is_symlink(), "still enabled after the upgrade");
    let leftovers = root.ok("ls -A /etc/textback");
    assert_eq!(leftovers.trim(), "textback.toml", "{leftovers}");
    root.ok("sudo -u textback textback config check /etc/textback/textback.toml");

    // Remove keeps the data and the config; purge deletes both.
    root.ok("apt-get remove -y textback");
    assert!(!root.file("/usr/bin/textback").exists());
    assert!(
        root.file("/var/lib/textback/textback.db").exists(),
        "remove keeps the data"
    );
    assert!(
        root.file("/etc/textback/textback.toml").exists(),
        "remove keeps the config"
    );
    root.ok("apt-get purge -y textback");
    assert!(
        !root.file("/var/lib/textback").exists(),
        "purge deletes the data"
    );
    assert!(
        !root.file("/etc/textback").exists(),
        "purge deletes the config"
    );
    let (listed, status) = root.run("dpkg-query -W -f='${db:Status-Abbrev}' textback");
    assert!(
        !listed || !status.starts_with('i') && !status.starts_with("rc"),
        "{status}"
    );
}
