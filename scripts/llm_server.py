"""Runs llama-cpp-python's OpenAI-compatible server (python3 -m llama_cpp.server) with the same
arguments, but with the extra weight buffers that llama.cpp's CPU backend repacks into (AMX tiles
on recent Intel CPUs) turned off. A native build of llama.cpp on a machine whose CPU reports AMX
inside a VM that does not let it be used crashes at its first matrix multiply (seen on this
project's build machines: SIGSEGV in ggml_backend_amx_mul_mat); without those buffers the plain
AVX path is used, which every x86-64 box and the Raspberry Pi's ARM build run alike.

Usage: python3 scripts/llm_server.py --model FILE.gguf --host 127.0.0.1 --port 8081 ...
"""
import runpy

import llama_cpp.llama_cpp as native

_default_params = native.llama_model_default_params


def _without_extra_buffers():
    params = _default_params()
    # Field added in llama.cpp 2025; older builds have no such buffers to turn off.
    if hasattr(params, "use_extra_bufts"):
        params.use_extra_bufts = False
    return params


native.llama_model_default_params = _without_extra_buffers
runpy.run_module("llama_cpp.server", run_name="__main__")
