"""Server-side evaluation runs (eval.jobs): started in the background, polled by id, reported like
`zhiwen eval run`, and honest about a run whose server died."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from core.errors import ZhiwenError
from core.settings import load_settings
from eval.dataset import QAItem
from eval.jobs import RunNotFound, list_runs, run_status, runs_dir, start_run
from ingest.pipeline import ingest_paths
from tests.conftest import SAMPLES


@pytest.fixture()
def settings(tmp_path):
    s = load_settings(data_dir=tmp_path / "data")
    ingest_paths([SAMPLES / "员工手册.txt"], "demo", s)
    return s


def test_a_run_goes_from_running_to_done_with_a_report(settings, services):
    items = [QAItem(id="q1", question="年休假有几天？", answers=["5天"]), QAItem(id="q2", question="火星有几颗卫星？", answerable=False)]
    status = start_run("demo", items, settings, services)
    assert status["status"] == "running" and status["total"] == 2
    deadline = time.monotonic() + 60
    while (now := run_status(status["id"], settings))["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling the run's status file; the run is a background thread
    assert now["status"] == "done" and now["done"] == 2 and now["summary"]["refusal_accuracy"] == 1.0
    folder = runs_dir(settings) / status["id"]
    assert {"report.json", "report.md", "report.html", "records.jsonl", "dataset.jsonl"} <= {p.name for p in folder.iterdir()}
    assert [r["id"] for r in list_runs(settings)] == [status["id"]]


def test_bad_requests_fail_before_anything_starts(settings, services):
    with pytest.raises(ZhiwenError, match="重复"):
        start_run("demo", [QAItem(id="a", question="x"), QAItem(id="a", question="y")], settings, services)
    with pytest.raises(ZhiwenError):
        start_run("nope", [QAItem(id="a", question="x")], settings, services)
    with pytest.raises(RunNotFound):
        run_status("../../etc", settings)
    assert list_runs(settings) == []


def test_a_run_whose_server_died_reads_as_interrupted(settings):
    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = runs_dir(settings) / ("ab" * 8)
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"id": "ab" * 8, "kb": "demo", "status": "running", "total": 3, "done": 1,
                                                   "created_at": 0, "pid": dead.pid}))
    assert run_status("ab" * 8, settings)["status"] == "interrupted"


def test_at_most_two_runs_at_once_and_a_damaged_status_hides_only_that_run(settings, services):
    items = [QAItem(id=f"q{i}", question=f"年休假第{i}问有几天？") for i in range(60)]
    started = [start_run("demo", items, settings, services) for _ in range(2)]
    with pytest.raises(ZhiwenError, match="too many"):
        start_run("demo", items[:1], settings, services)
    deadline = time.monotonic() + 120
    while any(run_status(s["id"], settings)["status"] == "running" for s in started):
        assert time.monotonic() < deadline
        time.sleep(0.1)  # polling the runs' status files
    broken = runs_dir(settings) / ("cd" * 8)
    broken.mkdir()
    (broken / "status.json").write_text("{not json")
    assert {r["id"] for r in list_runs(settings)} == {s["id"] for s in started}
    last = start_run("demo", items[:1], settings, services)
    assert last["status"] == "running", "slots are freed when runs end"
    while run_status(last["id"], settings)["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
