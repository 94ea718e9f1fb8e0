"""The main job: execute the numbered notebooks with papermill, headless, in order.

Usage (from the set-up script, or directly inside the virtual environment)::

    python -m llm_auction_utils.workbook.runner                      # every notebooks/NN-*.ipynb, in place
    python -m llm_auction_utils.workbook.runner 01 04-payments       # a selection (number or stem)
    python -m llm_auction_utils.workbook.runner 06 -p SEED 3 -o runs/seed3   # changed parameters, elsewhere
    python -m llm_auction_utils.workbook.runner 06 -f params.yaml -o runs/p

Each notebook runs with the kernel's working directory set to the notebook's own
folder (the same directory nbval uses), so relative paths agree between the two.
Executed notebooks are written to a temporary file and renamed over the target,
with papermill's per-cell metadata, timing metadata and widget state stripped
(widget model ids are renumbered), so re-running without changes leaves the
files byte-identical.  A failing notebook is named with its failing cell; its
partial output goes to ``runs/failed/`` and the committed notebook is left
untouched.  Figures that a notebook no longer writes are removed from
``figures/<stem>/`` after a successful run.  The job ends with a summary table.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..files import atomic_write_json
from .notebook import FIGURE_LOG_ENV, FIGURES_DIR_ENV, HEADLESS_ENV, RECORDS_ENV, records_path, repo_root

__all__ = [
    "NotebookResult",
    "RunnerError",
    "clean_notebook",
    "find_notebooks",
    "load_parameter_file",
    "main",
    "mark_solution_cells",
    "notebook_parameters",
    "run_notebook",
    "run_notebooks",
]

NOTEBOOK_GLOB = "[0-9][0-9]-*.ipynb"
KERNEL_NAME = "python3"


class RunnerError(Exception):
    """A problem with the job's invocation (unknown notebook, bad parameters)."""


@dataclass
class NotebookResult:
    """Outcome of one notebook run."""

    notebook: str
    seconds: float
    status: str
    figures: list[Path] = field(default_factory=list)
    output: Path | None = None
    error: str | None = None


def find_notebooks(selection: Sequence[str] = (), notebooks_dir: Path | None = None) -> list[Path]:
    """The numbered notebooks in order; ``selection`` picks by number (``"06"``), stem or path."""
    folder = notebooks_dir if notebooks_dir is not None else repo_root() / "notebooks"
    available = sorted(folder.glob(NOTEBOOK_GLOB))
    if not selection:
        if not available:
            raise RunnerError(f"no numbered notebooks (NN-name.ipynb) in {folder}")
        return available
    chosen: list[Path] = []
    for item in selection:
        candidate = Path(item)
        if candidate.suffix == ".ipynb" and candidate.is_file():
            chosen.append(candidate.resolve())
            continue
        key = candidate.name.removesuffix(".ipynb")
        matches = [p for p in available if p.stem == key or p.stem.split("-", 1)[0] == key]
        if len(matches) != 1:
            names = ", ".join(p.stem for p in available) or "none"
            raise RunnerError(f"unknown notebook {item!r}; available: {names}")
        chosen.append(matches[0])
    return chosen


def load_parameter_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) mapping of parameter names to values."""
    import yaml

    source = Path(path)
    if not source.is_file():
        raise RunnerError(f"parameter file {str(path)!r} does not exist")
    try:
        loaded = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise RunnerError(f"parameter file {str(path)!r} is not valid YAML: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
        raise RunnerError(f"parameter file {str(path)!r} must hold a mapping of parameter names to values")
    return loaded


def _parse_cli_value(raw: str) -> Any:
    """``-p NAME VALUE``: a Python/YAML literal when it parses as one, else the string."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Parameters declared in the notebook's cell tagged ``parameters`` (name -> default source)."""
    import papermill

    inferred = papermill.inspect_notebook(str(path))
    return {name: info.get("default") for name, info in inferred.items()}


def _check_parameters(path: Path, parameters: dict[str, Any]) -> None:
    if not parameters:
        return
    declared = notebook_parameters(path)
    if not declared:
        raise RunnerError(f"{path.name} has no cell tagged 'parameters'")
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise RunnerError(
            f"unknown parameter(s) {', '.join(unknown)} for {path.name}; it declares: {', '.join(sorted(declared))}"
        )


def _coalesce_streams(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge consecutive outputs of the same stream: how a print is split into messages depends on timing."""
    merged: list[dict[str, Any]] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.get("output_type") == "stream"
            and previous is not None
            and previous.get("output_type") == "stream"
            and previous.get("name") == output.get("name")
        ):
            text = "".join(previous["text"]) + "".join(output.get("text", ""))
            previous["text"] = text.splitlines(keepends=True)
        else:
            if output.get("output_type") == "stream":
                output = dict(output, text="".join(output.get("text", "")).splitlines(keepends=True))
            merged.append(output)
    return merged


SOLUTION_TAG = "solution"


def mark_solution_cells(nb: dict[str, Any]) -> dict[str, Any]:
    """Collapse every cell tagged ``solution`` in JupyterLab (in place; idempotent).

    Sets ``metadata.jupyter.source_hidden`` (the input collapses to a bar showing its first line,
    so a solution cell starts with a neutral line such as ``# Solution to exercise 1``) and, for
    code cells, ``metadata.collapsed`` and ``metadata.jupyter.outputs_hidden`` (the outputs
    collapse).  The site renders the same cells as closed "Show solution" toggles (``docs/conf.py``).
    """
    for cell in nb.get("cells", []):
        meta = cell.setdefault("metadata", {})
        if SOLUTION_TAG not in meta.get("tags", []):
            continue
        jupyter = meta.setdefault("jupyter", {})
        jupyter["source_hidden"] = True
        if cell.get("cell_type") == "code":
            jupyter["outputs_hidden"] = True
            meta["collapsed"] = True
    return nb


def clean_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """Strip papermill/timing metadata and widget state; renumber widget model ids deterministically;
    merge consecutive outputs of the same stream (their split depends on timing); collapse the
    solution cells (:func:`mark_solution_cells`)."""
    metadata = nb.setdefault("metadata", {})
    metadata.pop("papermill", None)
    metadata.pop("widgets", None)
    counter = 0
    for cell in nb.get("cells", []):
        cell_meta = cell.setdefault("metadata", {})
        cell_meta.pop("papermill", None)
        cell_meta.pop("execution", None)
        cell_meta.pop("ExecuteTime", None)
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"] = _coalesce_streams(cell.get("outputs", []))
        for output in cell["outputs"]:
            view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            if isinstance(view, dict) and "model_id" in view:
                counter += 1
                view["model_id"] = f"{counter:032x}"
    return mark_solution_cells(nb)


def _describe_failure(exc: BaseException, executed: Path) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = str(getattr(exc, "evalue", exc)).strip().splitlines()
    message = evalue[-1] if evalue else ""
    cell_index = getattr(exc, "cell_index", None)
    if cell_index is None and executed.is_file():
        try:
            nb = json.loads(executed.read_text(encoding="utf-8"))
            for index, cell in enumerate(nb.get("cells", [])):
                if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                    cell_index = index
                    break
        except (OSError, json.JSONDecodeError):
            pass
    where = f"cell {cell_index}" if cell_index is not None else "an unknown cell"
    exec_count = getattr(exc, "exec_count", None)
    if exec_count is not None:
        where += f" [execution count {exec_count}]"
    return f"{where}: {ename}: {message}"


def run_notebook(
    path: Path,
    *,
    output: Path | None = None,
    parameters: dict[str, Any] | None = None,
    progress_bar: bool = True,
    kernel_name: str = KERNEL_NAME,
) -> NotebookResult:
    """Execute one notebook with papermill (cwd = its folder) and write it atomically."""
    import papermill

    path = Path(path).resolve()
    target = Path(output).resolve() if output is not None else path
    params = dict(parameters or {})
    _check_parameters(path, params)
    root = repo_root()
    stem = path.stem
    figure_dir = root / "figures" / stem
    before = set(figure_dir.glob("*")) if figure_dir.is_dir() and target == path else set()
    scratch = Path(tempfile.mkdtemp(prefix=f"run-{stem}-"))
    executed = scratch / path.name
    figure_log = scratch / "figures.log"
    figure_log.touch()
    records_log = scratch / "records.jsonl"
    records_log.touch()
    previous_env = {name: os.environ.get(name) for name in (FIGURE_LOG_ENV, FIGURES_DIR_ENV, HEADLESS_ENV, RECORDS_ENV)}
    os.environ[FIGURE_LOG_ENV] = str(figure_log)
    os.environ[RECORDS_ENV] = str(records_log)
    os.environ[HEADLESS_ENV] = "1"  # no progress bars in the stored outputs
    if target != path:  # a run elsewhere keeps its figures beside its notebooks
        os.environ[FIGURES_DIR_ENV] = str(target.parent / "figures")
    else:
        os.environ.pop(FIGURES_DIR_ENV, None)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(path),
            str(executed),
            parameters=params,
            kernel_name=kernel_name,
            cwd=str(path.parent),
            progress_bar={"desc": stem, "leave": False} if progress_bar else False,
            request_save_on_cell_execute=False,
        )
    except Exception as exc:  # papermill raises PapermillExecutionError for a failing cell
        seconds = time.perf_counter() - started
        failed_dir = root / "runs" / "failed"
        failed_copy = None
        if executed.is_file():
            failed_dir.mkdir(parents=True, exist_ok=True)
            failed_copy = failed_dir / path.name
            os.replace(executed, failed_copy)
        detail = _describe_failure(exc, failed_copy or executed)
        return NotebookResult(stem, seconds, "failed", output=failed_copy, error=detail)
    finally:
        for name, value in previous_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    seconds = time.perf_counter() - started
    nb = json.loads(executed.read_text(encoding="utf-8"))
    atomic_write_json(target, clean_notebook(nb))
    records = {}
    for line in records_log.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        records[item["name"]] = item["value"]
    if records and target != path:  # runs elsewhere (batch, -o) keep their records beside the notebook
        atomic_write_json(records_path(target), records)
    written = [Path(line) for line in figure_log.read_text(encoding="utf-8").splitlines() if line]
    unique = sorted(set(written))
    if target == path:
        stale = {p for p in before if p.is_file() and p not in set(unique) and not p.name.startswith(".")}
        for old in stale:
            old.unlink()
    for leftover in scratch.iterdir():
        leftover.unlink()
    scratch.rmdir()
    return NotebookResult(stem, seconds, "ok", figures=unique, output=target)


def format_summary(results: Sequence[NotebookResult]) -> str:
    """A plain-text table: notebook, seconds, status, figures written."""
    header = ("notebook", "seconds", "status", "figures")
    rows = [(r.notebook, f"{r.seconds:.1f}", r.status, str(len(r.figures))) for r in results]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)) for row in rows]
    total = sum(r.seconds for r in results)
    lines.append(f"total {total:.1f} s; {sum(r.status == 'ok' for r in results)}/{len(results)} ok")
    return "\n".join(lines)


def run_notebooks(
    notebooks: Sequence[Path],
    *,
    output_dir: Path | None = None,
    parameters: dict[str, Any] | None = None,
    progress_bar: bool = True,
    stop_on_failure: bool = True,
) -> list[NotebookResult]:
    """Run ``notebooks`` in order; stop at the first failure unless told otherwise."""
    from tqdm.auto import tqdm

    results: list[NotebookResult] = []
    bar = tqdm(notebooks, desc="notebooks", unit="nb", disable=not progress_bar, file=sys.stderr)
    for path in bar:
        bar.set_postfix_str(path.stem)
        output = (Path(output_dir) / path.name) if output_dir is not None else None
        result = run_notebook(path, output=output, parameters=parameters, progress_bar=progress_bar)
        results.append(result)
        if result.status != "ok" and stop_on_failure:
            break
    bar.close()
    return results


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm_auction_utils.workbook.runner",
        description="Execute the workbook's numbered notebooks with papermill and regenerate figures/.",
    )
    parser.add_argument("notebooks", nargs="*", help="numbers (06), stems (06-hawaii-creatives) or paths; default: all")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                        help="set a parameter (value parsed as a Python literal when possible)")
    parser.add_argument("-f", "--parameters-file", action="append", default=[], metavar="YAML",
                        help="YAML file of parameters (later -p flags override it)")
    parser.add_argument("-o", "--output-dir", type=Path, default=None,
                        help="write executed notebooks here instead of in place (default with -p/-f: runs/)")
    parser.add_argument("--keep-going", action="store_true", help="run the remaining notebooks after a failure")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        notebooks = find_notebooks(args.notebooks)
        parameters: dict[str, Any] = {}
        for parameter_file in args.parameters_file:
            parameters.update(load_parameter_file(parameter_file))
        for name, value in args.parameter:
            if not name.isidentifier():
                raise RunnerError(f"parameter name {name!r} is not a valid identifier")
            parameters[name] = _parse_cli_value(value)
        for path in notebooks:
            _check_parameters(path, parameters)
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if parameters and args.output_dir is None:
        # changed parameters never overwrite the committed notebooks
        args.output_dir = repo_root() / "runs"
        print(f"note: notebooks run with changed parameters are written to {args.output_dir}", file=sys.stderr)
    results = run_notebooks(
        notebooks,
        output_dir=args.output_dir,
        parameters=parameters,
        progress_bar=not args.no_progress,
        stop_on_failure=not args.keep_going,
    )
    print(format_summary(results))
    failures = [r for r in results if r.status != "ok"]
    for failure in failures:
        kept = f" (partial output: {failure.output})" if failure.output else ""
        print(f"error: notebook {failure.notebook} failed at {failure.error}{kept}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
