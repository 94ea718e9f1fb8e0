"""Batch runs on Dask distributed: a LocalCluster of 2 worker processes on 127.0.0.1 gives the
serial run's CSV byte for byte; a task whose worker dies is re-run without duplicate rows; a
scheduler that cannot be reached is a one-line error naming its address."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytest.importorskip("distributed")

from llm_auction_utils.workbook import batch  # noqa: E402
from llm_auction_utils.workbook.notebook import REPO_ROOT_ENV  # noqa: E402


def stand_in(item: dict) -> list[dict]:
    """A stand-in task: deterministic rows; kills its worker process once when asked (marker file)."""
    log = Path(item["log"])
    with log.open("a") as handle:
        handle.write(f"start {item['k']}\n")
    if item.get("kill") and not Path(item["kill"]).exists():
        Path(item["kill"]).write_text("killed once")
        os._exit(1)  # the worker process dies mid-task
    time.sleep(0.05)
    with log.open("a") as handle:
        handle.write(f"done {item['k']}\n")
    return [{"k": item["k"], "row": r, "value": item["k"] * 10 + r} for r in range(2)]


def boom(item: int) -> int:
    if item == 1:
        raise ValueError("bad item")
    return item


@pytest.fixture(scope="module")
def cluster():
    with batch.kept_environment():  # a respawned worker sets the nanny's variables in this process again
        c = batch.local_cluster(2, retries=2)
        yield c
        c.close()


def test_a_local_cluster_leaves_this_processs_environment_as_it_was(monkeypatch):
    """Dask's nanny sets OMP_NUM_THREADS=1 (and more) in the parent's environment before it spawns a
    worker; run_on_dask gives the environment back, so the kernels the tests start afterwards are not
    limited to one thread."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    assert batch.run_on_dask([0, 2], boom, scheduler="local", n_workers=1) == [0, 2]
    assert dict(os.environ) == before


def test_local_cluster_is_two_single_threaded_processes_on_loopback(cluster):
    from distributed import Client

    with Client(cluster, set_as_default=False) as client:
        workers = client.scheduler_info()["workers"]
    assert len(workers) == 2 and all(w["nthreads"] == 1 for w in workers.values())
    assert all(a.startswith("tcp://127.0.0.1:") for a in [cluster.scheduler_address, *workers])


def test_worker_killed_mid_task_is_rerun_without_duplicate_rows(tmp_path, cluster):
    log = tmp_path / "executions.log"
    items = [{"k": k, "log": str(log)} for k in range(4)]
    expected = [stand_in(item) for item in items]
    log.unlink()
    items[2]["kill"] = str(tmp_path / "killed.marker")
    rows = batch.run_on_dask(items, stand_in, scheduler=cluster.scheduler_address, key_prefix="kill")
    assert (tmp_path / "killed.marker").exists()  # the worker really died once
    lines = log.read_text().splitlines()
    assert lines.count("start 2") == 2 and lines.count("done 2") == 1
    assert rows == expected  # in order, each point once


def test_failing_task_is_named(cluster):
    with pytest.raises(batch.TaskFailed, match=r"task 1 \(1\) failed after 0 retries: ValueError: bad item"):
        batch.run_on_dask([0, 1, 2], boom, scheduler=cluster.scheduler_address, retries=0, key_prefix="boom")
    assert batch.run_on_dask([], boom) == []


def test_keys_are_deterministic_and_distinct():
    items = [{"x": 1}, {"x": 2}, {"x": 1}]
    keys = batch.task_keys(items, stand_in, "grid")
    assert keys == batch.task_keys([dict(i) for i in items], stand_in, "grid")
    assert len(set(keys)) == 3 and keys[0].startswith("grid-0-")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_names_the_address(tmp_path, capsys):
    port = _free_port()
    with pytest.raises(batch.SchedulerUnreachable, match=rf"could not reach the Dask scheduler at tcp://127.0.0.1:{port} within 1 s"):
        batch.run_on_dask([1], boom, scheduler=f"127.0.0.1:{port}", connect_timeout=1)
    grid = tmp_path / "grid.yaml"
    grid.write_text("notebook: '00'\nrecord: creatives\ngrid:\n  SEED: [0]\n")
    code = batch.main([str(grid), "-o", str(tmp_path / "out"), "--no-progress", "--scheduler", f"tcp://127.0.0.1:{port}",
                       "--connect-timeout", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: could not reach the Dask scheduler at tcp://127.0.0.1:") and str(port) in err


def test_bad_dask_options():
    with pytest.raises(ValueError, match="retries must be a non-negative integer"):
        batch.run_on_dask([1], boom, retries=-1)
    with pytest.raises(ValueError, match="n_workers must be a positive integer"):
        batch.local_cluster(0)
    with pytest.raises(TypeError, match="model must be a model name"):
        batch.run_auctions_on_dask([], model=object())


@pytest.fixture
def workbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away workbook with one tiny stand-in notebook that records a table and saves a figure."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    (tmp_path / "notebooks").mkdir()
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    cells = [("SCALE = 2.0\nSEED = 0", ["parameters"]),
             ("from llm_auction_utils.workbook.notebook import setup_notebook, save_figure, record\n"
              "setup_notebook('01-smoke', seed=SEED)\nimport matplotlib.pyplot as plt\n"
              "fig, ax = plt.subplots()\n_ = ax.plot([0, 1], [0, SCALE])\n_ = save_figure(fig, 'line')\n"
              "record('creatives', [{'text': f'ad {SCALE} seed {SEED}', 'twice': 2 * SCALE, 'k': k} for k in range(2)])",
              [])]
    for index, (source, tags) in enumerate(cells):
        cell = new_code_cell(source)
        cell.id = f"cell-{index}"
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, tmp_path / "notebooks" / "01-smoke.ipynb")
    monkeypatch.setenv(REPO_ROOT_ENV, str(tmp_path))
    return tmp_path


def test_sweep_on_local_cluster_equals_the_serial_csv(workbook: Path, tmp_path: Path, capsys) -> None:
    grid = workbook / "grid.yaml"
    grid.write_text("notebook: '01'\nrecord: creatives\ngrid:\n  SCALE: [1.0, 4.0]\n  SEED: [0, 1]\n")
    serial, dask = tmp_path / "serial", tmp_path / "dask"
    assert batch.main([str(grid), "-o", str(serial), "--no-progress"]) == 0
    assert batch.main([str(grid), "-o", str(dask), "--no-progress", "--scheduler", "local", "--workers", "2"]) == 0
    assert "on Dask (local)" in capsys.readouterr().out
    assert (dask / "creatives.csv").read_bytes() == (serial / "creatives.csv").read_bytes()
    assert (dask / "creatives.csv").read_text().count("\n") == 1 + 4 * 2  # header + 2 rows per point, once each
    for out in (serial, dask):
        assert sorted(p.name for p in out.iterdir()) == sorted(
            ["creatives.csv"] + [f"params-{k}.yaml" for k in range(4)] + [f"run-{k}" for k in range(4)])
        assert (out / "run-3" / "figures" / "01-smoke" / "line.png").is_file()
    assert (dask / "params-2.yaml").read_text() == (serial / "params-2.yaml").read_text()
