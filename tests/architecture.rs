//! The architecture, checked from the code itself (scripts/test.sh runs this first):
//!
//! - no import cycle between the files of src/, read from their `crate::` and `super::` paths
//!   (test modules aside; a module and the `mod.rs` of its own folder re-exporting it are not a
//!   cycle);
//! - the pure layers (codec/, core/, domain/ and the SIP message layer and core: sip/wire,
//!   framing, digest, identity, msg, transaction, endpoint, register, guard) import nothing but
//!   each other, and do no I/O: no tokio, no files, sockets or processes, no clock, no entropy;
//! - only store/ holds SQL;
//! - every path the code map in src/lib.rs names exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every .rs file under src/, as its module path ("core/slots", "cli" for cli/mod.rs, "lib").
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read src/")
            .map(|e| e.expect("an entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path
                    .strip_prefix(base)
                    .expect("under src/")
                    .with_extension("");
                let mut parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect();
                if parts.last().is_some_and(|p| p == "mod") {
                    parts.pop();
                }
                let name = if parts.is_empty() {
                    "lib".to_string()
                } else {
                    parts.join("/")
                };
                out.insert(name, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &src(), &mut out);
    out
}

/// A file's code without its test modules and comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read a source file");
    let text = match text.find("#[cfg(test)]") {
        // Test modules sit at the end of each file.
        Some(at) if text[at..].contains("mod ") => text[..at].to_string(),
        _ => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The longest module path that `segments` starts with.
fn resolve(modules: &BTreeMap<String, PathBuf>, segments: &[&str]) -> Option<String> {
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("/"))
        .find(|candidate| modules.contains_key(candidate))
}

/// Identifier runs following `prefix` ("crate::core::slots::name" -> ["core", "slots", "name"]),
/// with grouped imports (`crate::{a::b, c}`) expanded.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(found) = code[at..].find(prefix) {
        let start = at + found;
        let before = start.checked_sub(1).map(|i| bytes[i]);
        at = start + prefix.len();
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let rest = &code[at..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let part = part.split(" as ").next().unwrap_or("");
                let segments: Vec<String> = part
                    .split("::")
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_'))
                    .collect();
                if !segments.is_empty() {
                    out.push(segments);
                }
            }
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let segments: Vec<String> = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if !segments.is_empty() {
            out.push(segments);
        }
    }
    out
}

/// Which files each file imports.
fn edges(modules: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (name, path) in modules {
        let code = code(path);
        let mut to = BTreeSet::new();
        for segments in paths_after(&code, "crate::") {
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            if let Some(target) = resolve(modules, &segments) {
                to.insert(target);
            }
        }
        let parent: Vec<&str> = name.split('/').collect();
        let base = &parent[..parent.len().saturating_sub(1)];
        for segments in paths_after(&code, "super::") {
            let mut full: Vec<&str> = base.to_vec();
            full.extend(segments.iter().map(String::as_str));
            if let Some(target) = resolve(modules, &full) {
                to.insert(target);
            }
        }
        to.remove(name);
        edges.insert(name.clone(), to);
    }
    edges
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, v: &'a str) {
        state.index.insert(v, state.next);
        state.low.insert(v, state.next);
        state.next += 1;
        state.stack.push(v);
        state.on_stack.insert(v);
        for w in state.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !state.index.contains_key(w) {
                visit(state, w);
                let low = state.low[v].min(state.low[w]);
                state.low.insert(v, low);
            } else if state.on_stack.contains(w) {
                let low = state.low[v].min(state.index[w]);
                state.low.insert(v, low);
            }
        }
        if state.low[v] == state.index[v] {
            let mut component = Vec::new();
            while let Some(w) = state.stack.pop() {
                state.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    // A module and the mod.rs of its own folder (which re-exports it) are not a cycle to name.
    state
        .found
        .into_iter()
        .filter(|component| {
            !(component.len() == 2 && {
                let (a, b) = (&component[0], &component[1]);
                a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
            })
        })
        .collect()
}

/// The pure modules: decisions and formats with no I/O.
fn pure(module: &str) -> bool {
    const PURE_SIP: &[&str] = &[
        "sip/wire",
        "sip/framing",
        "sip/digest",
        "sip/identity",
        "sip/msg",
        "sip/transaction",
        "sip/endpoint",
        "sip/register",
        "sip/guard",
    ];
    module == "codec"
        || module.starts_with("codec/")
        || module == "core"
        || module.starts_with("core/")
        || module == "domain"
        || module.starts_with("domain/")
        || PURE_SIP.contains(&module)
}

#[test]
fn no_import_cycle_between_files() {
    let modules = modules();
    let found = cycles(&edges(&modules));
    assert!(
        found.is_empty(),
        "import cycles between files of src/ (each must be broken: move what both need to a \
         module of its own): {found:#?}"
    );
    // The check sees what it should: src/ has its files and their imports.
    assert!(modules.len() > 50, "{}", modules.len());
    assert!(edges(&modules)["flow/call"].contains("store"));
}

#[test]
fn the_pure_layers_import_only_each_other() {
    let modules = modules();
    let mut leaks = Vec::new();
    for (from, to) in edges(&modules) {
        if !pure(&from) {
            continue;
        }
        for target in to {
            if !pure(&target) {
                leaks.push(format!("{from} imports {target}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "pure modules (codec, core, domain, the SIP message layer and core) import the shell: \
         {leaks:#?}"
    );
}

#[test]
fn the_pure_layers_do_no_io() {
    const IO: &[&str] = &[
        "tokio",
        "std::fs",
        "std::process",
        "std::env",
        "std::thread",
        "UdpSocket",
        "TcpStream",
        "TcpListener",
        "SystemTime::now",
        "Instant::now",
        "Utc::now",
        "Local::now",
        "make_rng",
        "thread_rng",
        "rand::random",
        "OsRng",
        "reqwest",
        "rusqlite",
    ];
    let mut found = Vec::new();
    for (module, path) in modules() {
        if !pure(&module) {
            continue;
        }
        let code = code(&path);
        for (number, line) in code.lines().enumerate() {
            for word in IO {
                if line.contains(word) {
                    found.push(format!("src/{module}.rs:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the pure layers do no I/O and read no clock: the shell passes time and randomness in \
         ({found:#?})"
    );
}

#[test]
fn only_the_store_holds_sql() {
    let mut found = Vec::new();
    for (module, path) in modules() {
        if module == "store" || module.starts_with("store/") {
            continue;
        }
        for (number, line) in code(&path).lines().enumerate() {
            for verb in [
                "\"SELECT ",
                "\"INSERT ",
                "\"UPDATE ",
                "\"DELETE ",
                "\"CREATE ",
                "\"PRAGMA ",
            ] {
                if line.contains(verb) {
                    found.push(format!("src/{module}.rs:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "SQL outside src/store/: {found:#?}");
}

#[test]
fn every_path_the_code_map_names_exists() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("src/lib.rs");
    let map: String = lib
        .lines()
        .take_while(|line| line.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut named = Vec::new();
    for piece in map.split('`').skip(1).step_by(2) {
        if piece.ends_with(".rs") || piece.ends_with('/') {
            named.push(piece.to_string());
        }
    }
    assert!(named.len() >= 15, "the code map names its files: {named:?}");
    // Paths are from src/, or from the repository's root when they start there.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let exists = |path: &String| {
        src().join(path).exists()
            || ((path.starts_with("src/") || path.starts_with("tests/"))
                && root.join(path).exists())
    };
    let missing: Vec<&String> = named.iter().filter(|p| !exists(p)).collect();
    assert!(
        missing.is_empty(),
        "the code map in src/lib.rs names paths that do not exist: {missing:?}"
    );
}
