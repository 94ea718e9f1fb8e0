"""The benchmark scripts run end to end (tiny settings, the tiny random model) and end with the
lines their docstrings promise, so they cannot rot unnoticed.  Their numbers are not checked here:
speed is shown by running them on the real model (README, "Benchmarks")."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
TINY = ["--model", "tiny-random-gemma3", "--device", "cpu"]
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def _run(script: str, *args: str) -> list[str]:
    out = subprocess.run([sys.executable, script, *args], cwd=BENCHMARKS, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout.strip().splitlines()


def test_bench_sweep_ends_with_its_three_lines():
    lines = _run("bench_sweep.py", *TINY, "--tokens", "3", "--repeats", "1", "--auctions", "3")
    rows, ratio, speedup = lines[-3:]
    computed, unshared = map(int, re.fullmatch(r"distinct_rows=([0-9]+)/([0-9]+)", rows).groups())
    assert 0 < computed <= unshared
    assert re.fullmatch(rf"sweep_ratio_vs_hf_generate={NUMBER}", ratio)
    assert re.fullmatch(rf"sweep_speedup={NUMBER}", speedup)
    assert "run_auctions gives the sequential runs' tokens: True" in lines


def test_bench_decoding_ends_with_its_ratio():
    lines = _run("bench_decoding.py", *TINY, "--tokens", "4", "--repeats", "1", "--agents", "2,3")
    assert re.fullmatch(rf"ratio_vs_hf_generate={NUMBER}", lines[-1])
    assert any(line.startswith("| 3 |") for line in lines)


def test_bench_monotonicity_ends_with_its_rate():
    lines = _run("bench_monotonicity.py", "--n-instances", "20", "--large-vocab", "500", "--loop-slice", "5",
                 "--repeats", "1")
    assert re.fullmatch(r"monotonicity_instances_per_second=[0-9]+", lines[-1])


@pytest.mark.parametrize("script", ["bench_sweep.py", "bench_decoding.py"])
def test_benchmarks_refuse_bad_arguments(script):
    out = subprocess.run([sys.executable, script, *TINY, "--tokens", "0"], cwd=BENCHMARKS, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "--tokens" in out.stderr
