"""The training queue: one trainer at a time for every session, requests never lost.

The trainer here is tests/fakes.py (the real run store and locks, no TensorFlow), in
the test process or in real worker processes, because these tests are about the queue.
"""
from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

import fakes
from recsys import fsutil, jobs, paths, runs
from recsys.config import RunConfig
from recsys.errors import UserError

TESTS = str(Path(__file__).parent)
WAIT = 90.0  # seconds a test waits for background workers before failing (not a speed assertion)


@pytest.fixture
def queue_env(monkeypatch, tmp_path):
    """Run ids without data, the fake trainer for workers, and a log of training intervals."""
    monkeypatch.setattr("recsys.catalog.config_run_id", fakes.fake_run_id)
    monkeypatch.setenv(jobs.TRAINER_ENV, "fakes:train")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    log = tmp_path / "trainer.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    paths.runs_dir().mkdir(parents=True)
    yield log
    _kill_workers()


def _kill_workers() -> None:
    worker = jobs.worker_process()
    if worker is not None:
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _no_worker(monkeypatch) -> None:
    monkeypatch.setattr(jobs, "_ensure_worker", lambda state: None)


def _configs(n: int, start: int = 0) -> list[RunConfig]:
    return [RunConfig(rating_weight=round(0.1 * (start + i), 1)) for i in range(n)]


def _settle(seconds: float = WAIT) -> jobs.QueueStatus:
    """Poll `status` (which also recovers the queue) until nothing is queued or training."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        status = jobs.status()
        if not status.active() and jobs.worker_process() is None:
            return status
        time.sleep(0.1)
    pytest.fail(f"the queue did not settle: {[(r.id, r.state) for r in jobs.status().requests]}")


def _intervals(log: Path, deaths: dict[int, float] | None = None) -> list[tuple[float, float, int]]:
    """(start, end, pid) of every training; a killed trainer's ends when it was seen dead."""
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    starts, out = {}, []
    for e in events:
        if e["event"] == "start":
            starts[e["pid"]] = e["time"]
        elif e["pid"] in starts:
            out.append((starts.pop(e["pid"]), e["time"], e["pid"]))
    out += [(t, (deaths or {}).get(pid, float("inf")), pid) for pid, t in starts.items()]
    return sorted(out)


def _kill(worker: fsutil.ProcessId) -> float:
    """SIGKILL a worker's process group; the time it was seen dead."""
    os.killpg(worker.pid, signal.SIGKILL)
    while worker.alive():
        time.sleep(0.01)
    return time.time()


def _assert_one_trainer_at_a_time(log: Path, deaths: dict[int, float] | None = None) -> None:
    spans = _intervals(log, deaths)
    for (_, end, pid), (start, _, other) in zip(spans, spans[1:]):
        assert end <= start, f"process {pid} and {other} trained at once"


# --------------------------------------------------------------------------- in-process worker
def test_the_worker_trains_each_request_in_turn_with_its_own_curve(queue_env, monkeypatch):
    _no_worker(monkeypatch)
    monkeypatch.setenv("FAKE_EPOCHS", "3")
    seen = []
    real = fakes.train

    def watch(config, progress=None, data_path=None):
        result = real(config, progress=progress, data_path=data_path)
        seen.append([e["epoch"] for e in jobs.history()])
        return result

    monkeypatch.setattr(fakes, "train", watch)
    requests = jobs.enqueue(_configs(2), "s1")
    assert [r.state for r in requests] == ["queued", "queued"] and requests[0].estimate_seconds > 0
    assert [r.position for r in jobs.status().active()] == [1, 2]
    jobs.run_worker()
    assert seen == [[1, 2, 3], [1, 2, 3]]  # each request's curve starts afresh
    status = jobs.status()
    assert [r.state for r in status.requests] == ["done", "done"]
    assert all(runs.find(r.run_id) for r in status.requests)
    assert [e["request"] for e in jobs.history()] == [requests[1].id] * 3


def test_a_cached_config_is_answered_at_once(queue_env, monkeypatch):
    _no_worker(monkeypatch)
    jobs.enqueue(_configs(1), "s1")
    jobs.run_worker()
    (again,) = jobs.enqueue(_configs(1), "s2")
    assert again.state == "done" and again.cached


def test_a_failed_request_reports_one_line_and_the_queue_goes_on(queue_env, monkeypatch):
    """Case 5 at the queue: a diverged run fails alone, with a one-line error; the next trains."""
    _no_worker(monkeypatch)
    monkeypatch.setenv("FAKE_FAIL_WEIGHT", "0")
    first, second = jobs.enqueue(_configs(2), "s1")
    jobs.run_worker()
    by_id = {r.id: r for r in jobs.status().requests}
    assert by_id[first.id].state == "failed"
    assert by_id[first.id].error == "the loss diverged at epoch 2; lower the learning rate"
    assert by_id[second.id].state == "done"
    assert not runs.partial_path(first.run_id).exists() and runs.find(first.run_id) is None


def test_requests_are_deduplicated_by_run_id_and_cancelled_by_their_last_requester(queue_env, monkeypatch):
    _no_worker(monkeypatch)
    (a,) = jobs.enqueue(_configs(1), "s1")
    (b,) = jobs.enqueue(_configs(1), "s2")
    assert a.id == b.id and b.requesters == ["s1", "s2"]
    with pytest.raises(UserError, match="no such request of yours"):
        jobs.cancel(a.id, "s3")
    assert jobs.cancel(a.id, "s1").state == "queued"  # s2 still wants it
    assert jobs.cancel(a.id, "s2").state == "cancelled"
    assert jobs.status().active() == []


def test_the_queue_is_bounded(queue_env, monkeypatch):
    _no_worker(monkeypatch)
    monkeypatch.setattr(jobs, "MAX_ACTIVE", 3)
    jobs.enqueue(_configs(2), "s1")
    with pytest.raises(UserError, match="the training queue is full"):
        jobs.enqueue(_configs(2, start=2), "s2")
    assert len(jobs.status().active()) == 2  # nothing of the refused click was queued


def test_a_request_over_the_time_limit_is_refused(queue_env, monkeypatch):
    """Case 6: the seed preset, 1,000 epochs, batch size 1 can't hold the trainer for days."""
    _no_worker(monkeypatch)
    with pytest.raises(UserError, match=r"would train for up to .* over the limit of 15 min"):
        jobs.enqueue([RunConfig(preset="seed", epochs=1000, batch_size=1)], "s1")
    monkeypatch.setenv("RECSYS_MAX_TRAIN_MINUTES", "1")
    with pytest.raises(UserError, match="over the limit of 60 s"):
        jobs.enqueue([RunConfig(preset="default")], "s1")
    assert jobs.status().requests == []


def test_a_garbled_queue_file_starts_an_empty_queue(queue_env, monkeypatch):
    _no_worker(monkeypatch)
    (paths.runs_dir() / ".queue").mkdir()
    (paths.runs_dir() / ".queue" / "queue.json").write_text("{garbled")
    assert jobs.status().requests == []
    assert len(jobs.enqueue(_configs(1), "s1")) == 1


# --------------------------------------------------------------------------- recovery
def _running_entry(worker: dict, attempts: int = 1) -> None:
    (request,) = jobs.enqueue(_configs(1), "s1")
    state = json.loads((paths.runs_dir() / ".queue" / "queue.json").read_text())
    state["requests"][0].update(state="running", worker=worker, attempts=attempts)
    runs.write_json(paths.runs_dir() / ".queue" / "queue.json", state)


def test_a_running_request_whose_pid_was_reused_is_recovered(queue_env, monkeypatch):
    """Case 11: pid 1 is alive, but it is not the process that started the request."""
    _no_worker(monkeypatch)
    _running_entry({"pid": 1, "start": fsutil.start_time(1) + 12345})
    (entry,) = jobs.status().requests
    assert entry.state == "queued" and entry.worker is None


def test_a_request_whose_worker_keeps_dying_fails_instead_of_looping(queue_env, monkeypatch):
    _no_worker(monkeypatch)
    _running_entry({"pid": 999_999_999, "start": 1}, attempts=jobs.MAX_ATTEMPTS)
    (entry,) = jobs.status().requests
    assert entry.state == "failed" and "ended unexpectedly" in entry.error


def test_the_queue_survives_a_restart(queue_env, monkeypatch):
    """Requests written before a server restart (no worker alive) are trained by a new worker."""
    with monkeypatch.context() as m:
        _no_worker(m)
        requests = jobs.enqueue(_configs(3), "s1")
    assert jobs.worker_process() is None
    status = _settle()  # status() starts a worker for the waiting requests
    assert [r.state for r in status.requests] == ["done"] * 3
    assert {r.run_id for r in requests} == {r.run_id for r in runs.list_runs()}


# --------------------------------------------------------------------------- processes
def test_cancelling_a_running_request_kills_it_and_leaves_nothing_finished(queue_env, monkeypatch):
    monkeypatch.setenv("FAKE_EPOCHS", "400")
    monkeypatch.setenv("FAKE_EPOCH_SECONDS", "0.05")
    first, second = jobs.enqueue(_configs(2), "s1")
    deadline = time.time() + WAIT
    while not jobs.history() and time.time() < deadline:  # training has begun
        time.sleep(0.05)
    assert jobs.status().running().id == first.id
    monkeypatch.setenv("FAKE_EPOCHS", "1")  # for the worker that takes over (started by cancel)
    assert jobs.cancel(first.id, "s1").state == "cancelled"
    assert not runs.partial_path(first.run_id).exists() and runs.find(first.run_id) is None
    status = _settle()
    assert {r.id: r.state for r in status.requests} == {first.id: "cancelled", second.id: "done"}
    assert runs.scan()[1] == []


def test_sessions_enqueueing_at_the_same_instant_get_one_trainer_at_a_time(queue_env):
    """Case 3, small: 8 sessions press Train at once, 3 trials; the full version is in bench/."""
    sessions, trials = 8, 3
    for trial in range(trials):
        barrier, errors, made = threading.Barrier(sessions), [], []

        def press(i: int) -> None:
            try:
                barrier.wait()
                made.extend(jobs.enqueue([RunConfig(rating_weight=round(0.1 * (i % 4), 1), seed=trial + 1)],
                                         f"s{i}"))
            except Exception as exc:  # noqa: BLE001 - collected and asserted on below
                errors.append(repr(exc))

        threads = [threading.Thread(target=press, args=(i,)) for i in range(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        status = _settle()
        mine = [r for r in status.requests if r.id in {m.id for m in made}]
        assert len({r.run_id for r in mine}) == 4 and len(mine) == 4  # deduplicated by run id
        assert all(r.state == "done" for r in mine)
        assert all(len(r.requesters) == 2 for r in mine)
    _assert_one_trainer_at_a_time(queue_env)
    assert len(_intervals(queue_env)) == 4 * trials  # every request trained once, none twice


def test_kill_9_at_random_moments_the_queue_recovers_and_no_run_is_damaged(queue_env, monkeypatch):
    """Small version of the kill test (bench/reliability.py kills 20 real trainers)."""
    monkeypatch.setenv("FAKE_EPOCHS", "4")
    monkeypatch.setenv("FAKE_EPOCH_SECONDS", "0.1")
    rng = random.Random(7)
    requests = jobs.enqueue(_configs(6), "s1")
    deaths = {}
    for _ in range(4):
        deadline = time.time() + WAIT
        while jobs.worker_process() is None and jobs.status().active() and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        worker = jobs.worker_process()
        if worker is not None:
            deaths[worker.pid] = _kill(worker)
    status = _settle()
    states = {r.id: r.state for r in status.requests}
    assert set(states) == {r.id for r in requests} and set(states.values()) <= {"done", "failed"}
    found, damaged = runs.scan()
    assert damaged == []
    for r in status.requests:
        if r.state == "done":
            assert runs.find(r.run_id) is not None
        else:
            assert "ended unexpectedly" in r.error and runs.find(r.run_id) is None
    assert not list(paths.runs_dir().glob("*.partial"))  # leftovers are cleared on the retry
    _assert_one_trainer_at_a_time(queue_env, deaths)


def test_the_cli_and_the_queue_never_train_one_config_at_once(queue_env, monkeypatch):
    """Case 18: a request meeting a config another process trains waits and reuses its result."""
    _no_worker(monkeypatch)
    (request,) = jobs.enqueue(_configs(1), "s1")

    with fsutil.flock(runs.lock_path(request.run_id)):  # "the CLI" trains this config right now
        worker = threading.Thread(target=jobs.run_worker)
        worker.start()
        time.sleep(0.3)
        assert jobs.status().running().id == request.id  # waiting on the run's lock, not failed
        folder = runs.partial_path(request.run_id)
        folder.mkdir(exist_ok=True)
        fakes.write_run(folder, request.run_id, _configs(1)[0])
        runs.finish(request.run_id)  # "the CLI" publishes its run
    worker.join(timeout=WAIT)
    (entry,) = jobs.status().requests
    assert entry.state == "done" and entry.cached  # reused, not trained twice
    assert _intervals(queue_env) == []


# --------------------------------------------------------------------------- history
def test_no_history_before_any_job_and_a_half_written_line_is_skipped(queue_env):
    assert jobs.history() == []
    (paths.runs_dir() / ".queue").mkdir()
    (paths.runs_dir() / ".queue" / "progress.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "lo')
    assert jobs.history() == [{"epoch": 1}]
