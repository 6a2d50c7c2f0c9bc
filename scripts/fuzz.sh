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
#   FUZZ_SECONDS     the most time AFL++ spends on a target (default: no limit). When it stops
#                    short of EXECUTIONS, the rest are run by fuzz/src/bin/mutate.rs outside
#                    AFL++: the same target function on seeded random mutations of what AFL++
#                    found (its queue), without coverage feedback but many times faster than
#                    under AFL++ on a busy machine. Both counts are printed.
#   FUZZ_MUTATE_SECONDS  the most time mutate spends on a target (default: no limit; 0: none)
#   FUZZ_TARGET_DIR  where the build goes (default fuzz/target)
#   FUZZ_TIMEOUT_MS  an execution slower than this is a hang (default 2000; runs take microseconds)
#   FUZZ_QUEUE_DIR   when set, each target's AFL++ queue is copied to FUZZ_QUEUE_DIR/<target>
#                    (to minimize into fuzz/corpus/ with afl-cmin)
#
# Installs what is missing: a C compiler and make (apt-get install build-essential), cargo-afl
# (cargo install cargo-afl), and the AFL++ that cargo-afl ships as source (cargo afl config
# --build). It runs headless, in a temporary output directory that is removed at the end; the
# inputs of any crash or hang are copied to fuzz/findings/<target>/ first. Prints, per target,
# executions (AFL++, mutate), executions per second, paths and edges found, crashes and hangs.
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
seconds_limit="${FUZZ_SECONDS:-0}"
if ! [[ $seconds_limit =~ ^[0-9]+$ ]]; then
    echo "fuzz.sh: FUZZ_SECONDS must be a number of seconds, not '$seconds_limit'" >&2
    exit 2
fi
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

# The longest input AFL++ makes (-G), per target: what reaches every limit of the parser and no
# more (at_lines: past MAX_LINE, where a line is cut); longer inputs only run slower.
# The same as max_len in fuzz/src/bin/mutate.rs.
max_len_of() {
    case "$1" in
        pdu_decode) echo 400 ;;
        at_lines) echo 4400 ;;
        sip_datagram) echo 4096 ;;
        sip_stream) echo 4096 ;;
        config_parse) echo 16384 ;;
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
# Calibrate new paths with fewer runs: the targets are deterministic (stability over 99%).
export AFL_FAST_CAL=1

printf -v header '%-13s %12s %9s %12s %9s %7s %7s %8s %6s %8s' \
    target "AFL++ execs" execs/s "mutate execs" execs/s paths edges crashes hangs seconds
rows=()
failed=0
total_seconds=0
for target in "${targets[@]}"; do
    binary="$target_dir/release/$target"
    out="$work/$target"
    dictionary="$(dictionary_of "$target")"
    args=(-i "$ROOT/fuzz/corpus/$target" -o "$out" -E "$executions" -t "$timeout_ms"
        -G "$(max_len_of "$target")")
    if [[ -n $dictionary ]]; then
        args+=(-x "$dictionary")
    fi
    if [[ $seconds_limit -gt 0 ]]; then
        args+=(-V "$seconds_limit")
    fi
    say "$target: $executions executions"
    started=$SECONDS
    if ! cargo afl fuzz "${args[@]}" -- "$binary" >"$work/$target.log" 2>&1; then
        tail -n 30 "$work/$target.log" >&2
        say "$target: afl-fuzz failed (its log is above)"
        exit 2
    fi
    stats="$out/default/fuzzer_stats"
    afl_executions="$(stat_of "$stats" execs_done)"
    crashes="$(stat_of "$stats" saved_crashes)"
    hangs="$(stat_of "$stats" saved_hangs)"
    if [[ -n ${FUZZ_QUEUE_DIR:-} ]]; then
        mkdir -p "$FUZZ_QUEUE_DIR/$target"
        cp "$out"/default/queue/id:* "$FUZZ_QUEUE_DIR/$target"/
    fi
    # The rest of the executions, when AFL++ stopped at FUZZ_SECONDS.
    mutate_executions=0
    mutate_rate=-
    rest=$((executions - afl_executions))
    if [[ $rest -gt 0 && ${FUZZ_MUTATE_SECONDS:-} != 0 ]]; then
        say "$target: $afl_executions executions under AFL++; $rest more by mutate"
        if mutate_line="$(MUTATE_SECONDS="${FUZZ_MUTATE_SECONDS:-}" \
            "$target_dir/release/mutate" "$target" "$rest" 1 \
            "$ROOT/fuzz/corpus/$target" "$out/default/queue")"; then
            :
        fi
        echo "$mutate_line" >&2
        read -r -a fields <<<"$mutate_line"
        mutate_executions="${fields[2]}"
        mutate_rate="${fields[4]}"
        crashes=$((crashes + fields[8]))
        hangs=$((hangs + fields[10]))
    fi
    seconds=$((SECONDS - started))
    total_seconds=$((total_seconds + seconds))
    printf -v row '%-13s %12s %9s %12s %9s %7s %7s %8s %6s %8s' "$target" \
        "$afl_executions" "$(stat_of "$stats" execs_per_sec)" \
        "$mutate_executions" "$mutate_rate" \
        "$(stat_of "$stats" corpus_count)" "$(stat_of "$stats" edges_found)" \
        "$crashes" "$hangs" "$seconds"
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
