#!/usr/bin/env bash
# Fuzzes every parser that reads outside input, under AFL++ through cargo-afl, on stable Rust:
#
#   pdu_decode    codec::pdu::decode, the SMS PDUs a modem prints
#   at_lines      codec::at, the modem's byte stream cut into lines and classified
#   sip_datagram  sip::wire::parse on a UDP datagram, then the SIP core and caller-id reading
#   sip_stream    sip::framing::StreamFramer on a TCP stream cut into reads anywhere
#   config_parse  config::parse on a config file's text
#
# The targets are in fuzz/ (a crate of its own, outside the main build); fuzz/src/lib.rs says
# what each checks besides "does not panic". Seeds are fuzz/corpus/<target>/, dictionaries
# fuzz/dict/.
#
# Usage: scripts/fuzz.sh [EXECUTIONS] [TARGET...]
#   EXECUTIONS  per target (default $FUZZ_EXECUTIONS, else 10000000); e.g. 100000 for a check
#   TARGET      any of the five above (default all), run one after another
# Environment:
#   FUZZ_TARGET_DIR  where the instrumented build goes (default fuzz/target)
#   FUZZ_TIMEOUT_MS  an execution slower than this is a hang (default 2000; runs take microseconds)
#
# Installs what is missing: a C compiler and make (apt-get install build-essential), cargo-afl
# (cargo install cargo-afl), and the AFL++ that cargo-afl ships as source (cargo afl config
# --build). It runs headless, in a temporary output directory that is removed at the end; the
# inputs of any crash or hang are copied to fuzz/findings/<target>/ first. Prints, per target,
# executions, executions per second, paths and edges found, crashes and hangs.
#
# Exit status: 0 when no target crashed or hung, 1 otherwise, 2 on a usage or setup error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ALL_TARGETS=(pdu_decode at_lines sip_datagram sip_stream config_parse)
# cargo-afl and the afl crate must be the same version (fuzz/Cargo.lock).
CARGO_AFL_VERSION=0.18.2

executions="${FUZZ_EXECUTIONS:-10000000}"
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    executions="$1"
    shift
fi
if ! [[ $executions =~ ^[0-9]+$ ]] || [[ $executions -eq 0 ]]; then
    echo "fuzz.sh: EXECUTIONS must be a positive number, not '$executions'" >&2
    exit 2
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${ALL_TARGETS[@]}")
fi
for target in "${targets[@]}"; do
    if [[ ! " ${ALL_TARGETS[*]} " =~ " $target " ]]; then
        echo "fuzz.sh: no target '$target'; the targets are: ${ALL_TARGETS[*]}" >&2
        exit 2
    fi
done
timeout_ms="${FUZZ_TIMEOUT_MS:-2000}"
target_dir="${FUZZ_TARGET_DIR:-$ROOT/fuzz/target}"

say() { echo "fuzz.sh: $*" >&2; }

# --- what is missing ------------------------------------------------------------------------

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if ! command -v cc >/dev/null || ! command -v make >/dev/null; then
    say "installing a C compiler and make (build-essential), to build AFL++"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null
fi

if [[ $(cargo afl --version 2>/dev/null) != "cargo-afl $CARGO_AFL_VERSION"* ]]; then
    say "installing cargo-afl $CARGO_AFL_VERSION"
    cargo install --locked --force cargo-afl --version "$CARGO_AFL_VERSION"
fi

# The AFL++ runtime and afl-fuzz, built once per Rust version from the source cargo-afl ships.
if ! config_output="$(cargo afl config --build 2>&1)"; then
    if [[ $config_output != *"already built"* ]]; then
        echo "$config_output" >&2
        say "cargo afl config --build failed"
        exit 2
    fi
fi

# --- build ----------------------------------------------------------------------------------

say "building the targets (cargo afl build --release, into $target_dir)"
(cd "$ROOT/fuzz" && CARGO_TARGET_DIR="$target_dir" cargo afl build --release --locked --bins --quiet)

# --- run ------------------------------------------------------------------------------------

dictionary_of() {
    case "$1" in
        sip_datagram | sip_stream) echo "$ROOT/fuzz/dict/sip.dict" ;;
        at_lines) echo "$ROOT/fuzz/dict/at.dict" ;;
        config_parse) echo "$ROOT/fuzz/dict/config.dict" ;;
        *) echo "" ;;
    esac
}

stat_of() { # file key
    sed -n "s/^$2 *: *//p" "$1" | head -n 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/textback-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Stopped by a signal, still remove it (bash runs the EXIT trap only on exit).
trap 'exit 130' INT
trap 'exit 143' TERM

# Headless and unattended: no screen, no questions about CPU scaling or where cores go, and
# no CPU pinning (the machine is shared with builds).
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1

printf -v header '%-13s %12s %9s %7s %7s %12s %8s %6s %8s' \
    target executions execs/s paths edges "edge cover" crashes hangs seconds
rows=()
failed=0
total_seconds=0
for target in "${targets[@]}"; do
    binary="$target_dir/release/$target"
    out="$work/$target"
    dictionary="$(dictionary_of "$target")"
    args=(-i "$ROOT/fuzz/corpus/$target" -o "$out" -E "$executions" -t "$timeout_ms")
    if [[ -n $dictionary ]]; then
        args+=(-x "$dictionary")
    fi
    say "$target: $executions executions"
    started=$SECONDS
    if ! cargo afl fuzz "${args[@]}" -- "$binary" >"$work/$target.log" 2>&1; then
        tail -n 30 "$work/$target.log" >&2
        say "$target: afl-fuzz failed (its log is above)"
        exit 2
    fi
    seconds=$((SECONDS - started))
    total_seconds=$((total_seconds + seconds))
    stats="$out/default/fuzzer_stats"
    crashes="$(stat_of "$stats" saved_crashes)"
    hangs="$(stat_of "$stats" saved_hangs)"
    printf -v row '%-13s %12s %9s %7s %7s %12s %8s %6s %8s' "$target" \
        "$(stat_of "$stats" execs_done)" "$(stat_of "$stats" execs_per_sec)" \
        "$(stat_of "$stats" corpus_count)" "$(stat_of "$stats" edges_found)" \
        "$(stat_of "$stats" bitmap_cvg)" "$crashes" "$hangs" "$seconds"
    rows+=("$row")
    echo "$row" >&2
    if [[ $crashes != 0 || $hangs != 0 ]]; then
        failed=1
        findings="$ROOT/fuzz/findings/$target"
        mkdir -p "$findings"
        cp "$out"/default/crashes/id:* "$out"/default/hangs/id:* "$findings"/ 2>/dev/null || true
        say "$target: $crashes crashes, $hangs hangs; inputs in $findings (replay one with" \
            "'cargo run --release --manifest-path fuzz/Cargo.toml --bin $target -- FILE')"
    fi
done

echo
echo "$header"
printf '%s\n' "${rows[@]}"
echo "total fuzzing time: ${total_seconds} s"
exit "$failed"
