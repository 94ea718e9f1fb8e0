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
recorded rows of every run with the run's parameters as extra columns.  Each ``run-k/``
folder is written atomically (filled beside its place, then renamed), so a run that dies
half-way leaves no partial folder.

Scale-out on Dask
-----------------
Sweeps that outgrow one machine run on Dask distributed, one task per grid point (one papermill
run, :func:`~.runner.run_notebook`)::

    python3 scripts/workbook.py batch GRID.yaml -o DIR --scheduler local            # this machine
    python3 scripts/workbook.py batch GRID.yaml -o DIR --scheduler tcp://host:8786  # a cluster

* ``--scheduler local`` starts a ``LocalCluster`` on this machine: ``--workers`` worker
  *processes* (default 2) with one thread each (a papermill run changes the process's
  environment), bound to 127.0.0.1, no dashboard; it is closed at the end.
* ``--scheduler tcp://host:8786`` (or ``host:8786``) uses a running scheduler (``dask scheduler``,
  workers started with ``dask worker tcp://host:8786``).  Its workers need this repository and
  its virtual environment at the same paths, and ``-o DIR`` on a file system they all write
  (a shared mount).  A scheduler that does not answer within ``--connect-timeout`` seconds is a
  one-line error naming the address (exit status 2).
* The CSV is the serial run's, byte for byte: tasks *return* their rows and only the client
  writes files other than the run folders; rows are collected by grid-point index, never in
  the order tasks finish.
* Retries without duplicate rows: every task has a deterministic key (point index and a hash of
  the notebook, point and record), so the scheduler holds one result per point; a task is
  re-run when its worker dies (``distributed.scheduler.allowed-failures``, set to
  ``--retries`` for a local cluster) or when it raises (``--retries``), and a re-run replaces
  its ``run-k/`` folder atomically.  A notebook that fails is not retried (it would fail
  again); it is reported like in the serial run.

:func:`run_on_dask` is the general tool (any picklable function over a list of items, results
in order); :func:`run_auctions_on_dask` runs token auctions in chunks, one task per chunk, each
worker loading the model once.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..files import atomic_directory
from .notebook import REPO_ROOT_ENV, read_records, repo_root
from .runner import (NotebookResult, RunnerError, _check_parameters, find_notebooks, format_summary,
                     load_parameter_file, run_notebook)

__all__ = ["BatchSpec", "SchedulerUnreachable", "TaskFailed", "expand_grid", "kept_environment", "load_batch_spec",
           "local_cluster", "main", "run_auctions_on_dask", "run_batch", "run_on_dask", "task_keys"]


class BatchSpec(dict):
    """The parsed grid file: ``notebook``, ``record``, ``grid`` and ``fixed``."""


class SchedulerUnreachable(RunnerError):
    """No Dask scheduler answered at the given address (the message names it)."""


class TaskFailed(RunnerError):
    """A task raised on its worker after its retries (the message names the item)."""


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


# --------------------------------------------------------------------------- one grid point


class _Discard(Exception):
    """Leaves :func:`~llm_auction_utils.files.atomic_directory` without keeping the folder."""

    def __init__(self, result: NotebookResult):
        super().__init__(result.error)
        self.result = result


def _run_point(item: tuple[int, dict[str, Any]], *, notebook: str, output_dir: str,
               root: str | None = None) -> tuple[NotebookResult, dict[str, Any] | None]:
    """Grid point ``item = (index, point)``: the notebook executed into ``run-<index>/`` (filled in a
    temporary folder, then renamed), and its records.  Module-level, so a Dask worker imports it."""
    index, point = item
    previous = os.environ.get(REPO_ROOT_ENV)
    if root is not None and Path(root).is_dir():
        os.environ[REPO_ROOT_ENV] = root
    try:
        run_dir, nb = Path(output_dir) / f"run-{index}", Path(notebook)
        try:
            with atomic_directory(run_dir) as tmp:
                result = run_notebook(nb, output=tmp / nb.name, parameters=point, progress_bar=False)
                if result.status != "ok":
                    raise _Discard(result)
                records = read_records(result.output)
        except _Discard as failed:
            return failed.result, None
        result.figures = [run_dir / Path(f).relative_to(tmp) for f in result.figures]
        result.output = run_dir / nb.name
        return result, records
    finally:
        if previous is None:
            os.environ.pop(REPO_ROOT_ENV, None)
        else:
            os.environ[REPO_ROOT_ENV] = previous


def _point_frame(records: dict[str, Any], record: str, notebook: str, index: int, point: dict[str, Any]) -> Any:
    """The recorded table of one run, with ``run`` and the point's parameters as the first columns."""
    import pandas as pd

    if record not in records:
        raise RunnerError(f"{notebook} recorded no {record!r} (it recorded: {', '.join(records) or 'nothing'})")
    frame = pd.DataFrame(records[record])
    for name, value in reversed(list(point.items())):
        frame.insert(0, name, [value] * len(frame))
    frame.insert(0, "run", index)
    return frame


def run_batch(spec: BatchSpec, output_dir: Path, *, progress_bar: bool = True, scheduler: str | None = None,
              n_workers: int = 2, retries: int = 2, connect_timeout: float = 10.0) -> tuple[Path, list[Any]]:
    """Run every grid point; return the CSV path and the runner results, in grid order.

    ``scheduler=None`` runs the points one after the other in this process; ``"local"`` or an
    address runs one Dask task per point (:func:`run_on_dask`; see the module docstring).
    The CSV is the same either way.
    """
    import pandas as pd
    import yaml
    from tqdm.auto import tqdm

    from ..files import atomic_write

    (notebook,) = find_notebooks([spec["notebook"]])
    points = expand_grid(spec["grid"], spec["fixed"])
    for point in points:
        _check_parameters(notebook, point)
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    for index, point in enumerate(points):
        (output_dir / f"params-{index}.yaml").write_text(yaml.safe_dump(point, sort_keys=True), encoding="utf-8")
    task = functools.partial(_run_point, notebook=str(notebook), output_dir=str(output_dir), root=str(repo_root()))
    items = list(enumerate(points))
    if scheduler is None:
        outcomes = [task(item) for item in tqdm(items, desc=f"batch {notebook.stem}", unit="run", disable=not progress_bar)]
    else:
        outcomes = run_on_dask(items, task, scheduler=scheduler, n_workers=n_workers, retries=retries,
                               connect_timeout=connect_timeout, key_prefix=f"batch-{notebook.stem}",
                               progress=progress_bar)
    frames = [_point_frame(records, spec["record"], notebook.name, index, point)
              for (index, point), (result, records) in zip(items, outcomes) if result.status == "ok"]
    csv_path = output_dir / f"{spec['record']}.csv"
    if frames:
        table = pd.concat(frames, ignore_index=True)
        atomic_write(csv_path, lambda tmp: table.to_csv(tmp, index=False))
    return csv_path, [result for result, _ in outcomes]


# --------------------------------------------------------------------------- Dask


def task_keys(items: Sequence[Any], fn: Callable[[Any], Any], prefix: str = "task") -> list[str]:
    """Deterministic Dask keys ``<prefix>-<index>-<hash of fn and item>``: the same function, item
    and index give the same key, so the scheduler keeps one result per item whatever re-runs."""
    from dask.base import tokenize

    return [f"{prefix}-{i}-{tokenize(fn, item)}" for i, item in enumerate(items)]


@contextlib.contextmanager
def kept_environment() -> Iterator[None]:
    """Give the calling process its environment variables back on exit.

    Dask's nanny sets variables such as ``OMP_NUM_THREADS=1`` in the *parent's* ``os.environ``
    before it spawns a worker; every process the parent starts afterwards (a notebook kernel, for
    example) would inherit them and run its numerics on one thread."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def local_cluster(n_workers: int = 2, *, retries: int = 2) -> Any:
    """A ``LocalCluster`` of ``n_workers`` single-threaded worker processes on 127.0.0.1, no
    dashboard; a task is re-run on another worker up to ``retries`` times when its worker dies."""
    import dask
    from distributed import LocalCluster

    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}), kept_environment():
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            scheduler_port=0, dashboard_address=None, worker_dashboard_address=None,
                            # the scheduler's small HTTP server (health, metrics) on a free loopback port
                            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


def _connect(scheduler: str, timeout: float) -> Any:
    from distributed import Client

    address = scheduler.strip()
    if not address:
        raise RunnerError("--scheduler needs 'local' or an address such as tcp://host:8786")
    address = address if "://" in address else f"tcp://{address}"
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"could not reach the Dask scheduler at {address} within {timeout:g} s ({type(exc).__name__}); "
            "start one with `dask scheduler` and workers with `dask worker <address>`, or use --scheduler local"
        ) from None


def _check_dask_options(retries: Any, connect_timeout: Any) -> None:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}")
    if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, (int, float)) or not connect_timeout > 0:
        raise ValueError(f"connect_timeout must be a number of seconds > 0, got {connect_timeout!r}")


def run_on_dask(items: Sequence[Any], fn: Callable[[Any], Any], *, scheduler: str = "local", n_workers: int = 2,
                retries: int = 2, connect_timeout: float = 10.0, key_prefix: str = "task",
                progress: bool = False) -> list[Any]:
    """``[fn(item) for item in items]``, one Dask task per item, results in the order of ``items``.

    ``scheduler="local"`` starts (and closes) :func:`local_cluster` with ``n_workers``; otherwise it
    is an address (``tcp://host:8786``; a bare ``host:port`` means tcp) and a scheduler that does not
    answer within ``connect_timeout`` seconds raises :class:`SchedulerUnreachable` naming it.  ``fn``
    must be picklable (module-level, or a ``functools.partial`` of one).  A task that raises is re-run
    up to ``retries`` times; one that still fails raises :class:`TaskFailed` naming its item.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    _check_dask_options(retries, connect_timeout)
    items = list(items)
    if not items:
        return []
    with kept_environment():  # a worker respawned after a loss sets the nanny's variables again
        return _run_futures(items, fn, scheduler, n_workers, retries, connect_timeout, key_prefix, progress)


def _run_futures(items: list[Any], fn: Callable[[Any], Any], scheduler: str, n_workers: int, retries: int,
                 connect_timeout: float, key_prefix: str, progress: bool) -> list[Any]:
    from distributed import Client, as_completed
    from tqdm.auto import tqdm

    cluster = local_cluster(n_workers, retries=retries) if scheduler == "local" else None
    client = Client(cluster, set_as_default=False) if cluster is not None else _connect(scheduler, connect_timeout)
    try:
        futures = [client.submit(fn, item, key=key, retries=retries, pure=True)
                   for item, key in zip(items, task_keys(items, fn, key_prefix))]
        index_of = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, Any] = {}
        with tqdm(total=len(items), desc=key_prefix, unit="task", disable=not progress) as bar:
            for future in as_completed(futures, loop=client.loop):
                i = index_of[future.key]
                if future.status == "error":
                    exc = future.exception()
                    client.cancel(futures)
                    raise TaskFailed(f"task {i} ({items[i]!r}) failed after {retries} retries: "
                                     f"{type(exc).__name__}: {exc}") from exc
                # fetch now and let the scheduler forget it: a result held only in a worker's
                # memory would be recomputed if that worker died
                results[i] = future.result()
                future.release()
                bar.update(1)
        return [results[i] for i in range(len(items))]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@functools.lru_cache(maxsize=2)
def _worker_model(name: str, device: str, dtype: str) -> Any:
    from ..llm.models import load_model

    return load_model(name, device=device, dtype=dtype)


def _auction_chunk(chunk: Sequence[Any], *, model: str, device: str, dtype: str, max_rows: int | None) -> list[Any]:
    """One task of :func:`run_auctions_on_dask`: a chunk of auctions in one batched call (the worker
    loads the model once)."""
    from ..llm.engine import run_auctions

    return run_auctions(list(chunk), model=_worker_model(model, device, dtype), max_rows=max_rows)


def run_auctions_on_dask(auctions: Sequence[Any], *, model: str, chunk_size: int = 32, device: str = "auto",
                         dtype: str = "float32", max_rows: int | None = None, **dask_options: Any) -> list[Any]:
    """:func:`~llm_auction_utils.llm.engine.run_auctions` over many auctions, one Dask task per chunk
    of ``chunk_size`` auctions; transcripts in the order of ``auctions``.

    ``model`` is a model *name* (each worker loads it once: weights are not shipped).  The auctions
    (``AuctionSpec`` or dicts) are validated here first, so an error names the auction before any
    task starts.  ``dask_options`` go to :func:`run_on_dask` (``scheduler``, ``n_workers``, ...).
    Greedy auctions give the serial run's tokens; ``on_step`` callbacks are not supported.
    """
    from ..llm.engine import _as_spec

    if not isinstance(model, str):
        raise TypeError("model must be a model name (each worker loads it), not a loaded model")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    specs = [_as_spec(a, k) for k, a in enumerate(auctions)]
    chunks = [specs[i: i + chunk_size] for i in range(0, len(specs), chunk_size)]
    task = functools.partial(_auction_chunk, model=model, device=device, dtype=dtype, max_rows=max_rows)
    dask_options.setdefault("key_prefix", "auctions")
    return [t for chunk in run_on_dask(chunks, task, **dask_options) for t in chunk]


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm_auction_utils.workbook.batch",
        description="Run one notebook over a grid of parameters and collect a recorded table into one CSV.",
    )
    parser.add_argument("grid_file", help="YAML grid file (see data/batch/)")
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("runs/batch"), help="default: runs/batch")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--scheduler", default=None, metavar="local|ADDRESS",
                        help="run on Dask: 'local' (a cluster on this machine) or a scheduler address tcp://host:8786")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of --scheduler local (default 2)")
    parser.add_argument("--retries", type=int, default=2, help="re-runs of a task whose worker died (default 2)")
    parser.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to reach a scheduler (default 10)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if args.workers < 1 or args.retries < 0:
            raise RunnerError("--workers must be >= 1 and --retries >= 0")
        spec = load_batch_spec(args.grid_file)
        csv_path, results = run_batch(spec, args.output_dir, progress_bar=not args.no_progress,
                                      scheduler=args.scheduler, n_workers=args.workers, retries=args.retries,
                                      connect_timeout=args.connect_timeout)
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(results))
    failures = [r for r in results if r.status != "ok"]
    for failure in failures:
        print(f"error: run of {failure.notebook} failed at {failure.error} (output: {failure.output})", file=sys.stderr)
    if csv_path.is_file():
        where = f" on Dask ({args.scheduler})" if args.scheduler else ""
        print(f"collected {spec['record']} of {len(results) - len(failures)} run(s){where} into {csv_path} "
              f"in {time.perf_counter() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
