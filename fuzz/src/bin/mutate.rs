//! A seeded random fuzzer outside AFL++: the complement to AFL++ for the targets that run slowly
//! under it on a busy machine (each execution there is a round trip between two processes). It
//! runs a target of `textback_fuzz` (the same function, with
//! the same checks, that AFL++ runs) on inputs made by mutating the seeds, with AFL-like havoc
//! steps (bit flips, random and interesting bytes, deletions, duplications, dictionary tokens,
//! splices) drawn from a seeded xorshift generator. No coverage feedback: what it adds is volume,
//! on inputs that stay near the seeds (pass an AFL++ queue as well as the corpus to start from
//! what coverage guidance found).
//!
//!     mutate TARGET EXECUTIONS [SEED] [DIR...]
//!
//! With MUTATE_SECONDS set it stops there if the executions are not done, and says how many ran.
//!
//! DIRs default to fuzz/corpus/TARGET; the dictionary is fuzz/dict/ as in scripts/fuzz.sh. A panic
//! is a crash: its input is written to fuzz/findings/TARGET/ and counted; an execution slower than
//! a second is a hang, kept the same way. Prints executions, execs/s, crashes, hangs, and exits 1
//! when there was any.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest input made, per target: as long as the longest seed an input needs to reach the
/// parser's limits, no longer (the AFL++ runs use the same, through `-G`).
fn max_len(target: &str) -> usize {
    match target {
        "pdu_decode" => 400,
        "at_lines" => 4_400,
        "sip_datagram" => 4_096,
        "sip_stream" => 4_096,
        "config_parse" => 16_384,
        _ => 4_096,
    }
}

fn dictionary_file(target: &str) -> Option<&'static str> {
    match target {
        "sip_datagram" | "sip_stream" => Some("sip.dict"),
        "at_lines" => Some("at.dict"),
        "config_parse" => Some("config.dict"),
        _ => None,
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: [u8; 9] = [0, 1, 0x7f, 0x80, 0xff, b'\r', b'\n', b' ', b'0'];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>], dict: &[Vec<u8>], most: usize) {
    let steps = 1 << rng.below(4);
    for _ in 0..steps {
        let len = input.len();
        match rng.below(11) {
            0 if len > 0 => {
                let at = rng.below(len);
                input[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                input[at] = rng.next() as u8;
            }
            2 if len > 0 => {
                let at = rng.below(len);
                input[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            3 if len > 1 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(32));
                input.drain(at..at + n);
            }
            4 if len > 0 => {
                let from = rng.below(len);
                let n = 1 + rng.below((len - from).min(64));
                let chunk = input[from..from + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            5 | 6 if !dict.is_empty() => {
                let token = &dict[rng.below(dict.len())];
                let at = rng.below(len + 1);
                if rng.below(2) == 0 || at + token.len() > len {
                    input.splice(at..at, token.iter().copied());
                } else {
                    input[at..at + token.len()].copy_from_slice(token);
                }
            }
            7 if !seeds.is_empty() => {
                // Splice: this input's head, another seed's tail.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let cut = rng.below(len + 1);
                    let from = rng.below(other.len());
                    input.truncate(cut);
                    input.extend_from_slice(&other[from..]);
                }
            }
            8 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let byte = rng.next() as u8;
                input.splice(at..at, std::iter::repeat_n(byte, n));
            }
            9 if len > 1 => {
                // Arithmetic on a byte, as for lengths and counts in binary fields.
                let at = rng.below(len);
                let delta = 1 + rng.below(35) as u8;
                input[at] = if rng.below(2) == 0 {
                    input[at].wrapping_add(delta)
                } else {
                    input[at].wrapping_sub(delta)
                };
            }
            _ => {
                let at = rng.below(len + 1);
                input.truncate(at);
            }
        }
        input.truncate(most);
    }
}

/// The tokens of an AFL++ dictionary: `"..."` or `name="..."` with `\xNN`, `\\` and `\"`.
fn read_dictionary(path: &Path) -> Vec<Vec<u8>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut tokens = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let (Some(open), Some(close)) = (line.find('"'), line.rfind('"')) else {
            continue;
        };
        if close <= open {
            continue;
        }
        let body = line[open + 1..close].as_bytes();
        let mut token = Vec::new();
        let mut i = 0;
        while i < body.len() {
            if body[i] == b'\\' && i + 1 < body.len() {
                if body[i + 1] == b'x' && i + 3 < body.len() {
                    let hex = std::str::from_utf8(&body[i + 2..i + 4]).unwrap_or("");
                    if let Ok(byte) = u8::from_str_radix(hex, 16) {
                        token.push(byte);
                        i += 4;
                        continue;
                    }
                }
                token.push(body[i + 1]);
                i += 2;
            } else {
                token.push(body[i]);
                i += 1;
            }
        }
        if !token.is_empty() {
            tokens.push(token);
        }
    }
    tokens
}

fn read_seeds(dirs: &[PathBuf], most: usize) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            eprintln!("mutate: cannot read {}", dir.display());
            std::process::exit(2);
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        paths.sort();
        for path in paths {
            if path.is_file()
                && let Ok(mut data) = std::fs::read(&path)
            {
                data.truncate(most);
                seeds.push(data);
            }
        }
    }
    seeds
}

fn keep(findings: &Path, kind: &str, seed: u64, execution: u64, input: &[u8]) {
    let _ = std::fs::create_dir_all(findings);
    let path = findings.join(format!("mutate-{kind}-{seed}-{execution}"));
    if let Err(error) = std::fs::write(&path, input) {
        eprintln!("mutate: cannot write {}: {error}", path.display());
    } else {
        eprintln!("mutate: {kind} kept in {}", path.display());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: mutate TARGET EXECUTIONS [SEED] [DIR...]";
    let (Some(target), Some(executions)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Ok(executions) = executions.parse::<u64>() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs: Vec<PathBuf> = args.iter().skip(3).map(PathBuf::from).collect();
    if dirs.is_empty() {
        dirs.push(fuzz_dir.join("corpus").join(target));
    }
    if !textback_fuzz::run(target, &[]) {
        eprintln!("mutate: no target '{target}'");
        std::process::exit(2);
    }
    let deadline = std::env::var("MUTATE_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse::<u64>().ok())
        .map(Duration::from_secs);
    let most = max_len(target);
    let seeds = read_seeds(&dirs, most);
    if seeds.is_empty() {
        eprintln!("mutate: no seeds");
        std::process::exit(2);
    }
    let dict = dictionary_file(target)
        .map(|name| read_dictionary(&fuzz_dir.join("dict").join(name)))
        .unwrap_or_default();
    let findings = fuzz_dir.join("findings").join(target);

    // A panic is reported by the loop below, with its input; the default hook's message is kept.
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (mut crashes, mut hangs) = (0u64, 0u64);
    let mut slowest = Duration::ZERO;
    let mut input = Vec::with_capacity(most);
    let started = Instant::now();
    let mut last_report = started;
    let mut done = 0;
    for execution in 0..executions {
        input.clear();
        input.extend_from_slice(&seeds[rng.below(seeds.len())]);
        mutate(&mut rng, &mut input, &seeds, &dict, most);
        let before = Instant::now();
        let outcome = std::panic::catch_unwind(|| {
            textback_fuzz::run(target, &input);
        });
        let took = before.elapsed();
        slowest = slowest.max(took);
        if outcome.is_err() {
            crashes += 1;
            if crashes <= 20 {
                keep(&findings, "crash", seed, execution, &input);
            }
        } else if took > Duration::from_secs(1) && {
            // A busy machine can stall any execution past the limit (seven such on a shared
            // machine once, each 2-13 ms when run again): a hang is an input that is slow again.
            let again = Instant::now();
            textback_fuzz::run(target, &input);
            again.elapsed() > Duration::from_secs(1)
        } {
            hangs += 1;
            if hangs <= 20 {
                keep(&findings, "hang", seed, execution, &input);
            }
        }
        done = execution + 1;
        if execution % 1024 == 0 && deadline.is_some_and(|deadline| started.elapsed() > deadline) {
            break;
        }
        if execution % 4096 == 0 && last_report.elapsed() > Duration::from_secs(60) {
            last_report = Instant::now();
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "mutate: {target}: {execution} executions, {:.0}/s, {crashes} crashes, {hangs} hangs",
                execution as f64 / seconds
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{target} executions {} execs/s {:.0} seeds {} crashes {crashes} hangs {hangs} \
         slowest_us {} seconds {:.0} seed {seed}",
        done,
        done as f64 / seconds,
        seeds.len(),
        slowest.as_micros(),
        seconds
    );
    if crashes + hangs > 0 {
        std::process::exit(1);
    }
}
