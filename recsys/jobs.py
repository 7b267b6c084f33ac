"""Background training jobs for the app: one at a time across every browser session.

The app never trains inside the Streamlit server. `start()` claims a lock file with
O_EXCL (so two sessions can't both start), then spawns `python -m recsys.jobs JOB`
in its own session. That child trains each config in turn (skipping cached ones),
records its state in `job.json`, and releases the lock when done. It survives page
reloads and widget changes, and keeps TensorFlow out of the server process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict

from recsys import paths, runs
from recsys.config import RunConfig
from recsys.errors import UserError


def _lock_path():
    return paths.runs_dir() / ".job.lock"


def _state_path():
    return paths.runs_dir() / ".job.json"


def _history_path():
    return paths.runs_dir() / ".job.history.jsonl"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie (finished child not yet reaped) is not training
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_state() -> dict | None:
    """The last or current job's state, or None if no job ever ran."""
    try:
        return json.loads(_state_path().read_text())
    except (OSError, ValueError):
        return None


def status() -> dict:
    """What the trainer is doing: idle, running (with progress), done or failed."""
    state = read_state()
    if state is None:
        return {"state": "idle"}
    if state["state"] == "running":
        pid = state.get("pid")
        if pid is None or not _alive(pid):
            if time.time() - state.get("updated", 0) > 30:  # the job died without a word
                state = {**state, "state": "failed", "error": "the training process ended unexpectedly"}
        elif state.get("run_id"):
            try:
                progress_file = runs.partial_path(state["run_id"]) / "progress.json"
                state["progress"] = json.loads(progress_file.read_text())
            except (OSError, ValueError):
                state["progress"] = None
    return state


def history() -> list[dict]:
    """Every epoch event of the config the job trains now (or trained last), oldest first.

    status()["progress"] holds only the latest event; this is the whole curve so far.
    """
    try:
        lines = _history_path().read_text().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:  # a line being written right now
            pass
    return events


def _record(job: dict, event: dict) -> None:
    with open(_history_path(), "a") as f:
        f.write(json.dumps({"run_id": job["run_id"], **event}) + "\n")
    _update(job)


def is_running() -> bool:
    """True while a job holds the lock and its process lives."""
    return status()["state"] == "running"


def _claim_lock() -> bool:
    lock = _lock_path()
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return True
        except FileExistsError:
            state = read_state() or {}
            if state.get("state") == "running" and state.get("pid") and _alive(state["pid"]):
                return False
            if state.get("state") == "running" and time.time() - lock.stat().st_mtime < 30:
                return False  # another session is starting its job right now
            lock.unlink(missing_ok=True)  # left by a job that died
    return False


def start(configs: list[RunConfig], data_path: str | None = None) -> dict:
    """Start training `configs` in the background, unless a job is already running.

    Returns the status of whichever job is running afterwards (ours or the other one).
    """
    if not configs:
        raise UserError("nothing to train")
    for c in configs:
        c.validate()
    if not _claim_lock():
        return status()
    job = {"state": "running", "pid": None, "configs": [asdict(c) for c in configs], "done": [],
           "run_id": None, "position": 0, "total": len(configs), "started": time.time(),
           "updated": time.time(), "data_path": data_path}
    runs.write_json(_state_path(), job)
    _history_path().unlink(missing_ok=True)  # the last job's curve is not this one's
    log = open(paths.runs_dir() / ".job.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "recsys.jobs"], cwd=paths.ROOT, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    job["pid"] = proc.pid
    _update(job)
    return status()


def _update(job: dict) -> None:
    job["updated"] = time.time()
    runs.write_json(_state_path(), job)


def run_job() -> None:
    """The child process: train every config of the job in turn, then release the lock."""
    from recsys.catalog import config_run_id
    from recsys.train import train

    job = read_state()
    job["pid"] = os.getpid()
    try:
        for i, cfg in enumerate(job["configs"]):
            config = RunConfig(**cfg)
            job.update(position=i + 1, run_id=config_run_id(config, job.get("data_path")))
            _history_path().write_text("")  # one curve per config
            _update(job)
            result = train(config, data_path=job.get("data_path"), progress=lambda e: _record(job, e))
            job["done"].append({"run_id": result.run.run_id, "cached": result.cached})
        job.update(state="done", finished=time.time())
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the page
        job.update(state="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    finally:
        _update(job)
        _lock_path().unlink(missing_ok=True)


if __name__ == "__main__":
    run_job()
