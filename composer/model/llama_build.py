"""What the installed llama.cpp was compiled for, and whether that runs on any x86-64 CPU.

requirements.txt builds llama-cpp-python for one portable baseline (AVX2, FMA, F16C, BMI2; no
AVX-512, no AMX, no -march=native). This module reads back what the installed library says it
was built with (its feature line and the options its CMake files record), so that a test fails
on any machine - one without AMX included - when the build options are lost (a cached native
wheel, an edited requirements.txt, a user's own CMAKE_ARGS).
"""
from __future__ import annotations

import re
from pathlib import Path

# The instruction sets the portable build may use: x86-64 baseline up to Haswell / Zen 1.
PORTABLE = frozenset({"SSE3", "SSSE3", "SSE42", "AVX", "AVX2", "F16C", "FMA", "BMI2"})
# Flags in llama.cpp's feature list that are not instruction sets (libraries, kernels, options).
NOT_ISA = frozenset({"LLAMAFILE", "OPENMP", "REPACK", "ACCELERATE", "KLEIDIAI", "CPU_ALL_VARIANTS"})


def system_info() -> str:
    """llama.cpp's own summary line: "CPU : SSE3 = 1 | AVX2 = 1 | ... |"."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace")


def compiled_features(info: str) -> set[str]:
    """The flags reported as 1 in a system-info line."""
    return {name.upper() for name, value in re.findall(r"([A-Za-z0-9_]+)\s*=\s*(\d+)", info) if value != "0"}


def installed_cmake_files() -> list[Path]:
    """The CMake package files llama-cpp-python installs beside its libraries (lib/cmake/ggml/...):
    they record the options llama.cpp was configured with."""
    from importlib import metadata

    try:
        files = metadata.files("llama-cpp-python") or []
    except metadata.PackageNotFoundError:
        return []
    return [Path(str(f.locate())) for f in files if str(f).endswith("-config.cmake")]


def cmake_options(paths: list[Path]) -> dict[str, str]:
    """`set(GGML_NATIVE "OFF")` lines of those files, as {"GGML_NATIVE": "OFF"}."""
    options: dict[str, str] = {}
    for path in paths:
        text = path.read_text(errors="replace")
        for name, value in re.findall(r'set\(\s*(GGML_[A-Z0-9_]+)\s+"?([^")\s]*)"?\s*\)', text):
            options[name] = value
    return options


ON = frozenset({"ON", "1", "TRUE", "YES", "Y"})
# Options that make a build run only on CPUs like the one it was built on.
UNPORTABLE_OPTIONS = ("GGML_NATIVE", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16", "GGML_AVX512")


def portability_problems(info: str, cmake_files: list[Path]) -> list[str]:
    """Why this build would not run on every x86-64 CPU of the last ten years; empty if it would."""
    problems = []
    isa = compiled_features(info) - NOT_ISA
    beyond = sorted(isa - PORTABLE)
    if beyond:
        problems.append(f"compiled for instructions beyond the portable baseline: {', '.join(beyond)}")
    options = cmake_options(cmake_files)
    problems += [f"configured with {name}={options[name]}" for name in UNPORTABLE_OPTIONS
                 if options.get(name, "").upper() in ON]
    return problems
