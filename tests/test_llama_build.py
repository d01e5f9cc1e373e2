"""The installed llama.cpp is the portable build requirements.txt asks for: no AMX, no AVX-512, no
native CPU target. This runs on every machine, so CI without AMX still catches a native build."""
from pathlib import Path

from composer.model.llama_build import compiled_features, installed_cmake_files, portability_problems, system_info


def test_installed_llama_cpp_runs_on_any_x86_64_cpu():
    info = system_info()
    assert "AVX2 = 1" in info, info  # the baseline is there (llama.cpp reports what it was built with)
    cmake = installed_cmake_files()
    assert cmake, "llama-cpp-python installed no ggml-config.cmake to read its build options from"
    assert portability_problems(info, cmake) == [], info


def test_a_native_or_amx_build_is_caught(tmp_path: Path):
    # What the same llama-cpp-python version reports when built -march=native on a Sapphire Rapids Xeon.
    amx = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
           "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | "
           "OPENMP = 1 | REPACK = 1 |")
    problems = portability_problems(amx, [])
    assert len(problems) == 1 and "AMX_INT8" in problems[0] and "AVX512" in problems[0]
    portable = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 |"
    assert compiled_features(portable) >= {"AVX2", "FMA", "LLAMAFILE"}
    assert portability_problems(portable, []) == []
    config = tmp_path / "ggml-config.cmake"  # as a default (native) build installs it
    config.write_text('set(GGML_AMX_INT8 "OFF")\nset(GGML_AVX2 "ON")\nset(GGML_NATIVE "ON")\n')
    assert portability_problems(portable, [config]) == ["configured with GGML_NATIVE=ON"]


def test_requirements_build_llama_cpp_portably():
    """The install command itself carries the build options: no variable for the user to remember."""
    text = (Path(__file__).parent.parent / "requirements.txt").read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("llama-cpp-python"))
    for setting in ("GGML_NATIVE=OFF", "GGML_AMX_TILE=OFF", "GGML_AMX_INT8=OFF", "GGML_AMX_BF16=OFF",
                    "GGML_AVX512=OFF", "GGML_AVX2=ON"):
        assert f"--config-settings=cmake.define.{setting}" in line
