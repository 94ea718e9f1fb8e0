"""Batch runs: one notebook over a grid of parameters, results collected into one CSV.

A grid file (YAML) names the notebook, the parameters to sweep, the fixed ones,
and the record to collect (a value the notebook stored with
:func:`llm_auction_utils.notebook.record`, e.g. its table of creatives)::

    notebook: "06"
    record: creatives
    grid:
      SEED: [0, 1]
      TEMPERATURE: [0.7, 1.0]
    fixed:
      MAX_NEW_TOKENS: 16

``python -m llm_auction_utils.workbook.batch data/batch/hawaii-grid.yaml -o runs/batch`` writes,
for each combination ``k``, its parameter file ``params-k.yaml``, the executed notebook
``run-k/<notebook>.ipynb`` with its figures, and finally ``<record>.csv``: the
recorded rows of every run with the run's parameters as extra columns.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any, Sequence

from ..files import atomic_write
from .notebook import read_records
from .runner import RunnerError, _check_parameters, find_notebooks, format_summary, load_parameter_file, run_notebook

__all__ = ["BatchSpec", "expand_grid", "load_batch_spec", "main", "run_batch"]


class BatchSpec(dict):
    """The parsed grid file: ``notebook``, ``record``, ``grid`` and ``fixed``."""


def load_batch_spec(path: str | Path) -> BatchSpec:
    """Read and validate a grid file; errors name the file and the field."""
    raw = load_parameter_file(path)
    where = f"grid file {str(path)!r}"
    unknown = sorted(set(raw) - {"notebook", "record", "grid", "fixed"})
    if unknown:
        raise RunnerError(f"{where}: unknown field(s) {', '.join(unknown)}; expected notebook, record, grid, fixed")
    if not isinstance(raw.get("notebook"), (str, int)):
        raise RunnerError(f"{where}: field 'notebook' (number or stem) is required")
    record = raw.get("record", "creatives")
    if not isinstance(record, str):
        raise RunnerError(f"{where}: field 'record' must be a name")
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict) or not grid:
        raise RunnerError(f"{where}: field 'grid' must map parameter names to non-empty lists")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise RunnerError(f"{where}: grid.{name} must be a non-empty list of values")
    fixed = raw.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise RunnerError(f"{where}: field 'fixed' must map parameter names to values")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise RunnerError(f"{where}: parameter(s) {', '.join(both)} appear in both grid and fixed")
    return BatchSpec(notebook=str(raw["notebook"]).zfill(2) if isinstance(raw["notebook"], int) else raw["notebook"],
                     record=record, grid=grid, fixed=fixed)


def expand_grid(grid: dict[str, list[Any]], fixed: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Cartesian product of the grid's values (in the file's order), each merged with ``fixed``."""
    names = list(grid)
    combos = itertools.product(*(grid[name] for name in names))
    return [{**(fixed or {}), **dict(zip(names, values))} for values in combos]


def run_batch(spec: BatchSpec, output_dir: Path, *, progress_bar: bool = True) -> tuple[Path, list[Any]]:
    """Run every grid point; return the CSV path and the runner results."""
    import pandas as pd
    import yaml
    from tqdm.auto import tqdm

    (notebook,) = find_notebooks([spec["notebook"]])
    points = expand_grid(spec["grid"], spec["fixed"])
    for point in points:
        _check_parameters(notebook, point)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    results = []
    for index, point in enumerate(tqdm(points, desc=f"batch {notebook.stem}", unit="run", disable=not progress_bar)):
        (output_dir / f"params-{index}.yaml").write_text(yaml.safe_dump(point, sort_keys=True), encoding="utf-8")
        run_dir = output_dir / f"run-{index}"
        result = run_notebook(notebook, output=run_dir / notebook.name, parameters=point, progress_bar=False)
        results.append(result)
        if result.status != "ok":
            continue
        records = read_records(result.output)
        if spec["record"] not in records:
            raise RunnerError(f"{notebook.name} recorded no {spec['record']!r} (it recorded: {', '.join(records) or 'nothing'})")
        frame = pd.DataFrame(records[spec["record"]])
        for name, value in reversed(list(point.items())):
            frame.insert(0, name, [value] * len(frame))
        frame.insert(0, "run", index)
        frames.append(frame)
    csv_path = output_dir / f"{spec['record']}.csv"
    if frames:
        table = pd.concat(frames, ignore_index=True)
        atomic_write(csv_path, lambda tmp: table.to_csv(tmp, index=False))
    return csv_path, results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llm_auction_utils.workbook.batch",
        description="Run one notebook over a grid of parameters and collect a recorded table into one CSV.",
    )
    parser.add_argument("grid_file", help="YAML grid file (see data/batch/)")
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("runs/batch"), help="default: runs/batch")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        spec = load_batch_spec(args.grid_file)
        csv_path, results = run_batch(spec, args.output_dir, progress_bar=not args.no_progress)
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(results))
    failures = [r for r in results if r.status != "ok"]
    for failure in failures:
        print(f"error: run of {failure.notebook} failed at {failure.error} (output: {failure.output})", file=sys.stderr)
    if csv_path.is_file():
        print(f"collected {spec['record']} of {len(results) - len(failures)} run(s) into {csv_path}")
    return 1 if failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
