"""The training queue: requests from every browser session, trained one at a time in the background.

State lives in `artifacts/runs/.queue/`:

  queue.json    every active request (queued, running) and the latest finished ones
  queue.lock    flock held for each read-modify-write of queue.json
  worker.lock   flock held by the one worker process for its whole life
  progress.jsonl  the epoch events of the request training now

`enqueue` adds requests (bounded, deduplicated by run id, each refused if its time
estimate is over the limit) and starts a worker (`python -m recsys.jobs`) when no live
worker holds worker.lock. The worker pops requests one at a time and exits when the
queue is empty. Everything is recovered from the files: after a server restart, or a
worker killed by kill -9 (its flock dies with it), the next call to `status` finds the
request whose worker (pid and start time) is gone, queues it again (once) and starts a
new worker. The trainer takes the run's own lock too (`runs.claim`), so the queue and
the CLI never train one config at once: the later one waits and reuses the result.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator

from recsys import fsutil, limits, paths, runs, threads
from recsys.config import RunConfig
from recsys.errors import UserError

MAX_ACTIVE = 40  # queued + running requests; a sweep is 11
KEEP_FINISHED = 50  # finished requests kept for the pages to report on
MAX_ATTEMPTS = 2  # a request whose worker died this often is failed, not retried forever
WORKER_LOCK_WAIT = 3.0  # seconds a new worker tries for the lock (a status probe may hold it for a moment)
SPAWN_GRACE = 15.0  # seconds a just-spawned worker has to take its lock before another is spawned
ACTIVE = ("queued", "running")
TRAINER_ENV = "RECSYS_TRAINER"  # "module:function" the worker trains with (tests use a fast fake)


@dataclass
class Request:
    """One training request: a config, who asked for it, and where it stands."""

    id: str
    run_id: str
    config: dict
    requesters: list[str]
    state: str = "queued"  # queued | running | done | failed | cancelled
    enqueued: float = 0.0
    started: float | None = None
    finished: float | None = None
    estimate_seconds: float = 0.0
    error: str | None = None
    cached: bool = False
    attempts: int = 0
    worker: dict | None = None
    data_path: str | None = None
    batch: str = ""  # the click it came with: a sweep is one batch of 11 requests
    position: int = 0  # 0 while training, 1 for next in line, ...; set by `status`
    progress: dict | None = field(default=None, compare=False)  # latest epoch event while training

    @property
    def active(self) -> bool:
        """Queued or training."""
        return self.state in ACTIVE

    def run_config(self) -> RunConfig:
        """The request's config."""
        return RunConfig(**self.config)

    @classmethod
    def from_dict(cls, d: dict) -> "Request":
        """Read one entry of queue.json, ignoring fields this version does not know."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class QueueStatus:
    """The queue as one session sees it."""

    requests: list[Request]
    worker_alive: bool

    def active(self) -> list[Request]:
        """Requests training or waiting, in the order they will train."""
        return [r for r in self.requests if r.active]

    def running(self) -> Request | None:
        """The request training now, if any."""
        return next((r for r in self.requests if r.state == "running"), None)

    def mine(self, session: str) -> list[Request]:
        """Requests `session` made (active or finished), oldest first."""
        return [r for r in self.requests if session in r.requesters]


# --------------------------------------------------------------------------- files
def _dir() -> Path:
    return paths.runs_dir() / ".queue"


def _queue_path() -> Path:
    return _dir() / "queue.json"


def _worker_lock() -> Path:
    return _dir() / "worker.lock"


def _progress_path() -> Path:
    return _dir() / "progress.jsonl"


@contextlib.contextmanager
def _locked() -> Iterator[dict]:
    """queue.json's content under the queue lock; written back when the block ends without error."""
    with fsutil.flock(_dir() / "queue.lock"):
        state = _read()
        before = json.dumps(_serialise(state), sort_keys=True)
        yield state
        after = _serialise(state)
        if json.dumps(after, sort_keys=True) != before or not _queue_path().exists():
            fsutil.write_json(_queue_path(), after)  # polls that change nothing write nothing


def _read() -> dict:
    try:
        state = json.loads(_queue_path().read_text())
        if not isinstance(state, dict) or not isinstance(state.get("requests"), list):
            raise ValueError("not a queue")
        state["requests"] = [Request.from_dict(r) for r in state["requests"] if isinstance(r, dict)]
    except FileNotFoundError:
        state = {"requests": []}
    except (OSError, ValueError, TypeError):  # garbled: start afresh rather than stop every session
        state = {"requests": [], "garbled": time.time()}
    return state


def _serialise(state: dict) -> dict:
    finished = [r for r in state["requests"] if not r.active]
    keep = {id(r) for r in finished[-KEEP_FINISHED:]}
    requests = [{**asdict(r), "progress": None, "position": 0} for r in state["requests"] if r.active or id(r) in keep]
    return {**state, "requests": requests}


# --------------------------------------------------------------------------- recovery and workers
def _recover(state: dict) -> None:
    """Requeue (or fail) running requests whose worker is gone: dead, or its pid reused."""
    for r in state["requests"]:
        if r.state != "running":
            continue
        worker = fsutil.ProcessId.from_dict(r.worker)
        if worker is not None and worker.alive():
            continue
        r.worker, r.progress = None, None
        if r.attempts >= MAX_ATTEMPTS:
            r.state, r.finished = "failed", time.time()
            r.error = f"the training process ended unexpectedly ({r.attempts} times)"
            runs.abandon(r.run_id, 2.0)  # its partial folder, unless someone trains the config right now
        else:
            r.state = "queued"


_children: list[subprocess.Popen] = []


def _reap() -> None:
    """Collect workers this process started that have ended (no zombies in a long-lived server)."""
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)


def _ensure_worker(state: dict) -> None:
    """Start a worker when requests wait and no live worker holds the worker lock (queue lock held)."""
    _reap()
    if not any(r.state == "queued" for r in state["requests"]):
        return
    if fsutil.is_locked(_worker_lock()):
        return
    spawned = fsutil.ProcessId.from_dict(state.get("spawned"))
    if spawned is not None and spawned.alive() and time.time() - state.get("spawned_at", 0) < SPAWN_GRACE:
        return  # started a moment ago and still taking its lock
    log = open(_dir() / "worker.log", "a")
    try:
        child = subprocess.Popen([sys.executable, "-m", "recsys.jobs"], cwd=paths.ROOT, stdout=log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    finally:
        log.close()
    _children.append(child)
    state["spawned"], state["spawned_at"] = fsutil.ProcessId.of(child.pid).to_dict(), time.time()


def worker_process() -> fsutil.ProcessId | None:
    """The live worker process, if one is training (for tests and clean-up)."""
    state = _read()
    for r in state["requests"]:
        worker = fsutil.ProcessId.from_dict(r.worker)
        if r.state == "running" and worker is not None and worker.alive():
            return worker
    spawned = fsutil.ProcessId.from_dict(state.get("spawned"))
    return spawned if spawned is not None and spawned.alive() else None


# --------------------------------------------------------------------------- the public API
def enqueue(configs: list[RunConfig], session: str, data_path: str | None = None) -> list[Request]:
    """Queue `configs` for `session`; cached ones are answered at once (state done, cached).

    A config already queued or training (by anyone) is not queued twice: `session`
    joins its requesters. UserError for an invalid config, one over the time limit, or
    a full queue; nothing is queued then.
    """
    from recsys.catalog import config_run_id

    if not configs:
        raise UserError("nothing to train")
    if not isinstance(session, str) or not session:
        raise UserError("a training request needs a session")
    planned = []
    for c in configs:
        c.validate()
        planned.append((c, config_run_id(c, data_path), limits.check(c)))
    batch, now = uuid.uuid4().hex[:12], time.time()
    out = []
    with _locked() as state:
        _recover(state)
        active = {r.run_id: r for r in state["requests"] if r.active}
        new = sum(1 for c, rid, _ in planned if rid not in active and runs.find(rid) is None)
        if len(active) + new > MAX_ACTIVE:
            raise UserError(f"the training queue is full ({len(active)} requests waiting or training); "
                            "try again when some have finished")
        for config, rid, estimate in planned:
            if rid in active:
                if session not in active[rid].requesters:
                    active[rid].requesters.append(session)
                out.append(active[rid])
                continue
            r = Request(uuid.uuid4().hex[:12], rid, asdict(config), [session], enqueued=now,
                        estimate_seconds=round(estimate, 1), data_path=data_path, batch=batch)
            if runs.find(rid) is not None:
                r.state, r.cached, r.started, r.finished = "done", True, now, now
            else:
                active[rid] = r
            state["requests"].append(r)
            out.append(r)
        _ensure_worker(state)
    return [Request(**asdict(r)) for r in out]


def status() -> QueueStatus:
    """Every active and recently finished request, with positions and the training one's progress.

    Also the queue's recovery: stale requests are requeued and a worker is started when
    requests wait without one (after a server restart, or a killed worker).
    """
    with _locked() as state:
        _recover(state)
        _ensure_worker(state)
        requests = list(state["requests"])
    order = sorted((r for r in requests if r.active), key=lambda r: (r.state != "running", r.enqueued))
    for i, r in enumerate(order):
        r.position = i if order[0].state == "running" else i + 1
    running = next((r for r in order if r.state == "running"), None)
    if running is not None:
        events = [e for e in history() if e.get("request") == running.id]
        running.progress = events[-1] if events else None
    return QueueStatus(requests, fsutil.is_locked(_worker_lock()))


def cancel(request_id: str, session: str) -> Request:
    """Withdraw `session`'s request. The last requester's cancel stops it: dropped from the
    queue, or, while training, its worker killed and its partial run removed.
    """
    with _locked() as state:
        _recover(state)
        r = next((r for r in state["requests"] if r.id == request_id), None)
        if r is None or session not in r.requesters:
            raise UserError("no such request of yours")
        if not r.active:
            raise UserError(f"the request has already {'finished' if r.state == 'done' else r.state}")
        r.requesters.remove(session)
        if not r.requesters:  # nobody else waits for it
            if r.state == "running":
                _stop_worker(r)
            r.state, r.finished, r.progress = "cancelled", time.time(), None
            if runs.find(r.run_id) is not None:  # it finished before the kill landed: keep it
                r.state, r.cached = "done", False
        _ensure_worker(state)  # the rest of the queue goes on
        return Request(**asdict(r))


def _stop_worker(r: Request) -> None:
    """Kill the worker training `r` (only if it is still that very process) and clear its partial run."""
    worker = fsutil.ProcessId.from_dict(r.worker)
    if worker is not None and worker.alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(worker.pid, signal.SIGKILL)  # its own session: the trainer and anything it started
        deadline = time.time() + 10
        while worker.alive() and time.time() < deadline:
            _reap()
            time.sleep(0.05)
        with contextlib.suppress(fsutil.Locked):  # its threads close its files a moment after it "died"
            os.close(fsutil.open_lock_within(_worker_lock(), 10.0))
    runs.abandon(r.run_id, 10.0)


def history() -> list[dict]:
    """Every epoch event of the request training now (or trained last), oldest first."""
    try:
        lines = _progress_path().read_text().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:  # a line being written right now
            pass
    return events


# --------------------------------------------------------------------------- the worker
def _trainer() -> Callable:
    spec = os.environ.get(TRAINER_ENV)
    if spec:
        module, _, name = spec.partition(":")
        return getattr(importlib.import_module(module), name)
    from recsys.train import train

    return train


def _take_worker_lock() -> int | None:
    deadline = time.time() + WORKER_LOCK_WAIT
    while True:
        try:
            return fsutil.open_lock(_worker_lock(), blocking=False)
        except fsutil.Locked:
            if time.time() > deadline:
                return None
            time.sleep(0.05)


def _yield_cpu() -> None:
    """Train only on CPU time the app's sessions leave over (2 shared cores).

    SCHED_IDLE, else nice 19. Set before TensorFlow starts its threads, which inherit it.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(19)


def run_worker() -> None:
    """The worker process: train queued requests one at a time; exit when none is left."""
    threads.for_training()
    _dir().mkdir(parents=True, exist_ok=True)
    fd = _take_worker_lock()
    if fd is None:  # another worker is alive: it will see our requests
        return
    me = fsutil.ProcessId.me()
    _yield_cpu()
    train = None
    while True:
        with _locked() as state:
            _recover(state)
            r = next((r for r in state["requests"] if r.state == "queued"), None)
            if r is None:
                os.close(fd)  # released under the queue lock: an enqueuer after us starts a new worker
                return
            r.state, r.started, r.worker, r.error = "running", time.time(), me.to_dict(), None
            r.attempts += 1
            request = Request(**asdict(r))
        fsutil.write_bytes(_progress_path(), b"")  # one curve per request
        train = train or _trainer()
        outcome: dict = {}
        try:
            result = train(request.run_config(), data_path=request.data_path,
                           progress=lambda e: _record(request, e))
            outcome = {"state": "done", "cached": bool(result.cached), "run_id": result.run.run_id}
        except UserError as exc:  # a diverged loss, bad data: one line for the page
            outcome = {"state": "failed", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - every failure must reach the page, the queue goes on
            traceback.print_exc()  # into worker.log
            outcome = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
        with _locked() as state:
            for r in state["requests"]:
                if r.id == request.id and r.state == "running" and r.worker == me.to_dict():
                    for k, v in outcome.items():
                        setattr(r, k, v)
                    r.finished, r.progress = time.time(), None
    

def _record(request: Request, event: dict) -> None:
    with open(_progress_path(), "a") as f:
        f.write(json.dumps({"request": request.id, "run_id": request.run_id, **event}) + "\n")


if __name__ == "__main__":
    run_worker()
