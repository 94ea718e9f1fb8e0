"""Notebook plumbing: one set-up call, a byte-stable figure saver, repo paths, records.

Every numbered notebook starts with::

    from llm_auction_utils.notebook import setup_notebook, save_figure, data_path
    setup_notebook("01-token-auction-model", seed=SEED)

and saves each figure with ``save_figure(fig, "name")``, which writes
``figures/<notebook-stem>/<name>.png`` and ``.svg``.  Both files are
byte-identical across runs (fixed ``svg.hashsalt``, no dates in metadata, fixed
DPI), so re-running the main job leaves ``git status`` clean.  Files are written
to a temporary name and renamed, so an interrupted run never leaves a
half-written figure.

The main job (:mod:`llm_auction_utils.runner`) sets the environment variable
``LLM_AUCTION_FIGURE_LOG``; each saved path is appended there so the run's
summary can count the figures a notebook wrote.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

from ..files import atomic_write

__all__ = [
    "FIGURES_DIR_ENV",
    "FIGURE_LOG_ENV",
    "HEADLESS_ENV",
    "RECORDS_ENV",
    "REPO_ROOT_ENV",
    "current_notebook",
    "data_path",
    "figures_dir",
    "format_estimate",
    "headless",
    "interval_table",
    "progress",
    "read_records",
    "record",
    "recorded",
    "records_path",
    "repo_root",
    "save_figure",
    "seed_everything",
    "setup_notebook",
    "watermark",
]

FIGURE_LOG_ENV = "LLM_AUCTION_FIGURE_LOG"
REPO_ROOT_ENV = "LLM_AUCTION_REPO_ROOT"
FIGURES_DIR_ENV = "LLM_AUCTION_FIGURES_DIR"
_FIGURE_DPI = 100
_SVG_HASHSALT = "llm-auction-workbook"
_STEM_PATTERN = re.compile(r"^[0-9]{2}-[a-z0-9][a-z0-9-]*$")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

_current_notebook: str | None = None


def repo_root(start: str | os.PathLike[str] | None = None) -> Path:
    """Return the workbook's root folder, from any working directory.

    The root is the nearest folder (from ``start``, default the working
    directory, then this package's own location) that holds both
    ``pyproject.toml`` and ``llm_auction_utils/``.  The environment variable
    ``LLM_AUCTION_REPO_ROOT`` overrides the search.
    """
    override = os.environ.get(REPO_ROOT_ENV)
    if override:
        root = Path(override).expanduser().resolve()
        if not (root / "pyproject.toml").is_file():
            raise FileNotFoundError(f"{REPO_ROOT_ENV}={override!r} does not point to the workbook root (no pyproject.toml)")
        return root
    candidates = [Path(start) if start is not None else Path.cwd(), Path(__file__).resolve().parent]
    for candidate in candidates:
        for folder in [candidate.resolve(), *candidate.resolve().parents]:
            if (folder / "pyproject.toml").is_file() and (folder / "llm_auction_utils").is_dir():
                return folder
    raise FileNotFoundError(
        "could not find the workbook root (a folder with pyproject.toml and llm_auction_utils/); "
        f"set {REPO_ROOT_ENV} to point to it"
    )


def data_path(*parts: str) -> Path:
    """Path inside the workbook's ``data/`` folder, e.g. ``data_path("scenarios", "hawaii.yaml")``."""
    return repo_root().joinpath("data", *parts)


def figures_dir(notebook: str | None = None) -> Path:
    """The folder ``figures/<notebook-stem>/`` where a notebook's figures go.

    The runner points ``LLM_AUCTION_FIGURES_DIR`` elsewhere when notebooks run
    with changed parameters, so such runs never overwrite the committed figures.
    """
    stem = notebook if notebook is not None else current_notebook()
    base = os.environ.get(FIGURES_DIR_ENV)
    return (Path(base) if base else repo_root() / "figures") / stem


def current_notebook() -> str:
    """Stem of the notebook registered by :func:`setup_notebook`."""
    if _current_notebook is None:
        raise RuntimeError("no notebook registered: call setup_notebook('NN-name') first")
    return _current_notebook


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


def setup_notebook(notebook: str, seed: int = 0, *, context: str = "notebook") -> None:
    """Prepare a notebook: register its stem, seed everything, set the plot style.

    - registers ``notebook`` (e.g. ``"01-token-auction-model"``) for :func:`save_figure`;
    - seeds ``random``, NumPy and torch with ``seed``;
    - seaborn theme (``whitegrid``, colour-blind palette), inline figures as PNG
      (SVG inline never compares equal under nbval), fixed ``svg.hashsalt``;
    - silences warnings from third-party libraries that would make outputs
      differ between runs (warnings of this package still show).
    """
    global _current_notebook
    if not isinstance(notebook, str) or not _STEM_PATTERN.match(notebook):
        raise ValueError(f"notebook must be a stem like '01-token-auction-model', got {notebook!r}")
    seed_everything(seed)
    _current_notebook = notebook

    import matplotlib
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context=context, style="whitegrid", palette="colorblind")
    matplotlib.rcParams.update(
        {
            "svg.hashsalt": _SVG_HASHSALT,
            "svg.fonttype": "path",
            "figure.dpi": _FIGURE_DPI,
            "savefig.dpi": _FIGURE_DPI,
            "figure.figsize": (7.0, 4.0),
            "figure.autolayout": False,
        }
    )
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            shell.run_line_magic("matplotlib", "inline")
            set_matplotlib_formats("png")
    except ImportError:  # pragma: no cover - IPython comes with the kernel
        pass
    plt.close("all")
    try:  # wide tables in one block, floats without reprs
        import pandas as pd

        pd.set_option("display.width", 250)
        pd.set_option("display.max_columns", 60)
        pd.set_option("display.max_colwidth", 120)
    except ImportError:  # pragma: no cover - pandas is a hard dependency
        pass
    for module in ("transformers", "torch", "huggingface_hub", "accelerate", "gguf", "tqdm"):
        warnings.filterwarnings("ignore", module=module)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def save_figure(fig: Any, name: str, *, notebook: str | None = None, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``figures/<notebook-stem>/<name>.<fmt>`` for each format, byte-stably.

    PNG and SVG carry no date; SVG ids come from the fixed ``svg.hashsalt``;
    PDF (if asked for) gets ``CreationDate=None``.  Each file is written to a
    temporary name and renamed.  Returns the written paths.
    """
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(f"figure name must be letters, digits, '_', '-', '.', got {name!r}")
    folder = figures_dir(notebook)
    metadata_by_format: dict[str, dict[str, Any]] = {
        "png": {"Software": None},
        "svg": {"Date": None, "Creator": None},
        "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
    }
    import matplotlib

    written: list[Path] = []
    with matplotlib.rc_context({"svg.hashsalt": _SVG_HASHSALT}):
        for fmt in formats:
            if fmt not in metadata_by_format:
                raise ValueError(f"unsupported figure format {fmt!r}; choose from {sorted(metadata_by_format)}")
            target = folder / f"{name}.{fmt}"
            atomic_write(
                target,
                lambda tmp, fmt=fmt: fig.savefig(
                    tmp, format=fmt, dpi=_FIGURE_DPI, bbox_inches="tight", metadata=metadata_by_format[fmt]
                ),
            )
            written.append(target)
    log = os.environ.get(FIGURE_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            for path in written:
                handle.write(f"{path}\n")
    return written


RECORDS_ENV = "LLM_AUCTION_RECORDS"
"""Set by the runner to a JSON-lines file that collects the run's records."""

_RECORDS: dict[str, Any] = {}


def record(name: str, value: Any) -> None:
    """Record a JSON-serialisable result of the notebook (a small stand-in for scrapbook's ``glue``).

    Nothing is displayed: the value goes to the file named by ``$LLM_AUCTION_RECORDS`` (set by the
    runner, which saves the run's records beside the executed notebook as ``<notebook>.records.json``,
    where :func:`read_records` and the batch runner find them) and to :func:`recorded` in the
    kernel.  A pandas DataFrame is stored as a list of row dicts.  Values follow the notebooks'
    rounding rule (CONTRIBUTING.md): round them to the precision the computation guarantees.
    """
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(f"record name must be letters, digits, '_', '-', '.', got {name!r}")
    import json

    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        value = value.to_dict(orient="records")
    try:
        line = json.dumps({"name": name, "value": value}, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"record {name!r}: value is not JSON-serialisable without NaN ({exc})") from None
    _RECORDS[name] = json.loads(line)["value"]
    target = os.environ.get(RECORDS_ENV)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def recorded() -> dict[str, Any]:
    """The values recorded so far in this kernel, by name."""
    return dict(_RECORDS)


def records_path(notebook_path: str | os.PathLike[str]) -> Path:
    """Where the runner saves an executed notebook's records: ``<notebook>.records.json`` beside it."""
    path = Path(notebook_path)
    return path.with_name(path.name + ".records.json") if path.suffix != ".ipynb" else path.with_suffix(".records.json")


def read_records(notebook_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The values recorded with :func:`record` by a run of the notebook (``{}`` when it recorded none)."""
    import json

    path = records_path(notebook_path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


# --------------------------------------------------------------------------- progress bars and watermark

HEADLESS_ENV = "LLM_AUCTION_HEADLESS"
"""Set to ``1`` by the main job and the test command: notebooks then draw no progress bars, so the
stored outputs hold no half-finished bar and nbval has nothing to compare."""


def headless() -> bool:
    """True when the notebook runs under the main job or the test command (``LLM_AUCTION_HEADLESS=1``)."""
    return os.environ.get(HEADLESS_ENV, "") not in ("", "0")


def format_estimate(estimate: Any, standard_error: Any) -> Any:
    """A Monte Carlo estimate as text, to the precision its standard error allows (CONTRIBUTING.md).

    The last printed decimal is the first one whose unit is at least the standard error, so no digit
    finer than the error is shown: ``format_estimate(0.21234, 0.0006)`` is ``"0.212"``,
    ``format_estimate(0.0112, 0.0001)`` is ``"0.0112"``.  A standard error of 0 (an estimate without
    spread, such as a frequency of 0) prints the value as it is (``"0"``).  Broadcasts; returns a ``str``
    for scalars, else a numpy array of ``str`` (ready for a table column).
    """
    import numpy as np

    est, se = np.broadcast_arrays(np.asarray(estimate, dtype=float), np.asarray(standard_error, dtype=float))
    if not (np.isfinite(est).all() and np.isfinite(se).all() and (se >= 0).all()):
        raise ValueError("estimate and standard_error must be finite, standard_error >= 0")
    decimals = (-np.ceil(np.log10(np.where(se > 0, se, 1.0)) - 1e-12)).clip(0, 12).astype(int)
    text = np.array([f"{round(float(e), int(d)) + 0.0:.{d}f}" if s > 0 else f"{float(e) + 0.0:g}"
                     for e, s, d in zip(est.ravel(), se.ravel(), decimals.ravel())])
    text = text.reshape(est.shape)
    return str(text) if text.ndim == 0 else text


def interval_table(frame: Any, index: Any, columns: Any, *, decimals: int = 2, missing: str = "not ranked",
                   signed: bool = True) -> Any:
    """A pivot table of estimates with 95% intervals as text, ``"+0.12 [+0.05, +0.20]"``, to a fixed
    number of ``decimals`` (so round-off such as ``-1.9e-18`` prints as ``+0.00``); a difference whose
    ``verdict`` is ``"indistinguishable"`` is marked ``~0``; a cell with no row says ``missing``.

    ``frame`` has the columns ``estimate``, ``ci_low``, ``ci_high`` (and optionally ``verdict``) and
    the ``index`` and ``columns`` keys of the pivot; ``signed``: print a ``+`` before positive
    numbers (differences), not for levels."""
    sign = "+" if signed else ""

    def text(e: float, lo: float, hi: float, verdict: str) -> str:
        cell = f"{e + 0.0:{sign}.{decimals}f} [{lo + 0.0:{sign}.{decimals}f}, {hi + 0.0:{sign}.{decimals}f}]"
        return cell + (" ~0" if verdict == "indistinguishable" else "")

    verdicts = frame["verdict"] if "verdict" in frame else [""] * len(frame)
    cells = frame.assign(value=[text(round(e, decimals), round(lo, decimals), round(hi, decimals), v)
                                for e, lo, hi, v in zip(frame["estimate"], frame["ci_low"], frame["ci_high"], verdicts)])
    table = cells.pivot_table(index=index, columns=columns, values="value", aggfunc="first", sort=False)
    return table.fillna(missing)


def progress(iterable: Any = None, **kwargs: Any) -> Any:
    """A ``tqdm`` progress bar for interactive runs (JupyterLab); silent under the main job and the tests."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=headless(), **kwargs)


_WATERMARK_PACKAGES = ("numpy", "scipy", "pandas", "torch", "transformers", "matplotlib", "seaborn")


def watermark(*, seed: int | None = None, model: Any = None) -> None:
    """One line of versions of the key packages (from the lock), the Python minor version, and
    the model and seed the notebook ran with; printed by the closing cell of every notebook."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str:
        try:
            return version(name).split("+")[0]
        except PackageNotFoundError:  # pragma: no cover - every package is in the lock
            return "absent"

    parts = [f"python {'.'.join(platform.python_version_tuple()[:2])}"]
    parts += [f"{p} {ver(p)}" for p in _WATERMARK_PACKAGES]
    parts.append(f"llm-auction-utils {ver('llm-auction-utils')}")
    line = " | ".join(parts)
    extra = []
    if model is not None:
        extra.append(f"model {getattr(model, 'name', model)}"
                     + (f" ({str(model.dtype).replace('torch.', '')} on {model.device.type})" if hasattr(model, "device") else ""))
    if seed is not None:
        extra.append(f"seed {seed}")
    print(line + ("\n" + " | ".join(extra) if extra else ""))
