"""Training on tf.distribute: one run over N worker processes (MultiWorkerMirroredStrategy).

`python -m recsys train ... --workers N` calls `train` here, which starts three levels of
processes, none of which outlives the one above it:

    launcher (`train`, the CLI's process): relays progress, raises a worker's failure
    └─ group (`python -m recsys.distributed group`): in a network namespace of its own
       when the kernel allows it; picks loopback ports and supervises
       ├─ worker 0 (`python -m recsys.distributed worker`, TF_CONFIG index 0): trains and
       │  writes the run through `recsys.train.train` (claim, .partial, finish)
       └─ worker 1 ... N-1: train in step with worker 0 and write nothing

Why the namespace: TensorFlow's gRPC server listens on every interface (0.0.0.0), whatever
TF_CONFIG says, and it runs whatever graph a peer sends it. In a fresh network namespace
the only interface is loopback, so the workers can reach each other and nothing else can
reach them. Where the kernel refuses (no user namespaces), the workers run on the host's
network and the run records `"worker_network": "host"`.

On N machines, or under Ray Train, each host runs `run_worker` itself with its own
TF_CONFIG (README, Training on tf.distribute).

What makes the N-worker run the one-process run: the same global batch (each worker takes
a contiguous share of every batch, `recsys.train.training_batches`), the loss of each replica is
its share of the global batch's loss and the optimizer sums the gradients
(`recsys.model.MultiTaskModel._replica_train_step`), the retrieval softmax sees the global
batch's distinct movies, and worker 0's validation decides the best epoch and early
stopping for everyone (`Worker.agree`).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from recsys.errors import UserError
from recsys.threads import cores, for_training

EVENT = "@recsys-event "  # prefix of the lines the workers and the group print for the launcher
CONNECT_SECONDS = 300.0  # every worker up and connected (TensorFlow's start is slow on a busy machine)
KILL_GRACE_SECONDS = 5.0  # SIGTERM, then SIGKILL
FOLLOWER_GRACE_SECONDS = 60.0  # the others' exit after worker 0 has finished
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY", "GRPC_PROXY",
                    "all_proxy", "ALL_PROXY")


@dataclass(frozen=True)
class Launched:
    """A run trained by worker processes: the stored run, and the launcher's wall seconds."""

    result: object  # recsys.train.TrainResult
    workers: int
    wall_seconds: float  # process start to finish: TensorFlow import, data, training, test metrics, index
    network: str | None  # "private" (a loopback-only namespace), "host", or None (a cached run)

    def to_json(self) -> dict:
        """What `python -m recsys train --workers N --json` prints."""
        return {**self.result.to_json(), "workers": self.workers, "wall_seconds": round(self.wall_seconds, 2)}


# ------------------------------------------------------------------------------ launcher
def train(config, workers: int | None = None, data_path: str | None = None, progress: Callable | None = None,
          wait: bool = True, timeout: float | None = None, connect_seconds: float = CONNECT_SECONDS) -> Launched:
    """Train `config` (with `workers` worker processes, default `config.workers`) on this machine.

    Returns the stored run and the wall seconds from starting the processes to the run
    being stored. workers=1 trains in one worker process without tf.distribute, exactly
    as `recsys.train.train` does: the baseline a benchmark compares N workers against.
    A worker's failure is a one-line UserError, and every process is gone by then;
    `timeout` bounds the whole run in seconds (None: no bound beyond the CLI's limit).
    Ctrl-C stops every process and leaves the run's .partial folder, as in one process.
    """
    from dataclasses import replace

    from recsys import runs

    if workers is not None:
        config = replace(config, workers=workers)
    config.validate()
    folder = Path(tempfile.mkdtemp(prefix="recsys-workers-"))
    argv = [sys.executable, "-m", "recsys.distributed", "group", "--config", json.dumps(asdict(config)),
            "--logs", str(folder), "--connect-seconds", str(connect_seconds)]
    if data_path:
        argv += ["--data", str(data_path)]
    if timeout is not None:
        argv += ["--timeout", str(timeout)]
    if not wait:
        argv += ["--no-wait"]
    start = time.perf_counter()
    with open(folder / "group.log", "wb") as log:
        group = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                 env=_child_env(), start_new_session=True, preexec_fn=_die_with_parent,
                                 text=True, bufsize=1)
    done, error, network, rid = None, None, None, None
    try:
        for line in group.stdout:  # ends when the group exits, after its workers
            event = _parse_event(line)
            if event is None:
                continue
            kind = event.get("event")
            if kind == "progress" and progress is not None:
                progress(event["progress"])
            elif kind == "training":
                rid, network = event["run_id"], event.get("network")
            elif kind == "done":
                done = event
            elif kind == "error":
                error = event["message"]
        code = group.wait()
    except BaseException:  # Ctrl-C or the progress callback: stop everyone, keep the .partial
        _stop_group(group)
        _remove_tree(folder)
        raise
    finally:
        group.stdout.close()
    seconds = time.perf_counter() - start
    if code != 0 or done is None:
        if rid is not None:
            runs.abandon(rid, KILL_GRACE_SECONDS)  # a failed run leaves nothing behind, as in one process
        message = error or f"the worker processes failed (exit code {code}); logs in {folder}"
        if str(folder) not in message:
            _remove_tree(folder)  # a worker's UserError says it all; a crash points at its logs
        raise UserError(message)
    _remove_tree(folder)
    result = _load_result(done)
    return Launched(result, config.workers, seconds, network)


def _load_result(done: dict):
    from recsys import runs
    from recsys.train import TrainResult

    return TrainResult(runs.load(done["run_id"]), cached=bool(done["cached"]))


def _stop_group(group: subprocess.Popen) -> None:
    """SIGTERM the group and its workers (one process group), SIGKILL what is left after the grace."""
    _signal_group(group.pid, signal.SIGTERM)
    try:
        group.wait(KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(group.pid, signal.SIGKILL)  # the workers, even if the group is gone
    group.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _parse_event(line: str) -> dict | None:
    if not line.startswith(EVENT):
        return None
    try:
        return json.loads(line[len(EVENT):])
    except ValueError:
        return None


_EVENTS = False  # True in the launcher's own group and worker processes, which talk in events


def _emit(event: dict) -> None:
    if _EVENTS:
        print(EVENT + json.dumps(event), flush=True)


def _child_env(extra: dict | None = None) -> dict:
    """This environment without TF_CONFIG or proxies (gRPC would send loopback traffic to a proxy)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG" and k not in _PROXY_VARIABLES}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **(extra or {})}


def _die_with_parent() -> None:
    """In a child, before exec: be killed when the parent dies, even by kill -9 (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl
        os._exit(1)


def _remove_tree(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------ the group
def private_network() -> bool:
    """Move this process into a new network namespace whose only interface, loopback, is up.

    False when the kernel refuses a namespace (nothing changed); RuntimeError when it gave
    one that can't be set up. Must run while the process has one thread (a user namespace
    requires it): before numpy or TensorFlow are imported. Children started afterwards
    share the namespace.
    """
    import ctypes
    import fcntl
    import socket
    import struct

    clone_newuser, clone_newnet = 0x10000000, 0x40000000
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    uid, gid = os.getuid(), os.getgid()
    try:
        if libc.unshare(clone_newnet) != 0:  # needs CAP_SYS_ADMIN; else a user namespace gives it
            if libc.unshare(clone_newuser | clone_newnet) != 0:
                return False
            Path("/proc/self/setgroups").write_text("deny")  # the same ids inside: files keep their owner
            Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
            Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
        siocsifflags, iff_up = 0x8914, 0x1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH22x", b"lo", iff_up))  # struct ifreq, 40 bytes
    except OSError as exc:
        raise RuntimeError(f"could not set up the workers' private network: {exc}") from None
    return True


def _free_ports(n: int) -> list[int]:
    """n ports on 127.0.0.1 that nothing listens on now (the OS picks them)."""
    import socket

    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> dict:
    """TF_CONFIG for worker `index` of a cluster on 127.0.0.1 `ports`."""
    return {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}


def _threads_per_worker(workers: int) -> int:
    """The machine's cores shared out: N local workers never ask for more threads than cores."""
    return max(1, cores() // workers)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _last_line(path: Path) -> str:
    """What a worker's log says last: its exception's line if there is one, shortened."""
    import re

    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if re.match(r"^([\w.]*(Error|Exception|Exit|Interrupt)\b|error: )", line)]
    text = (errors or lines or [""])[-1]
    return text if len(text) <= 200 else text[:197] + "..."


# How a worker fails when another one died first: not the cause worth reporting.
_SECONDARY = ("UnavailableError", "AbortedError", "CancelledError", "Collective ops is aborted", "is down")


def _failure(codes: list[int | None], logs: Path) -> str:
    """One line about the failed worker most likely to be the cause: a worker's own
    UserError (its message as is), else one killed by a signal, else one whose error is
    not a lost peer, else the first."""
    failed = []
    for i, code in enumerate(codes):
        if code in (None, 0):
            continue
        line = _last_line(logs / f"worker-{i}.log")
        if code == 2 and line.startswith("error: "):
            rank = 0
        else:
            rank = 1 if code < 0 else 3 if any(s in line for s in _SECONDARY) else 2
        failed.append((rank, i, code, line))
    rank, i, code, line = min(failed)
    if rank == 0:
        return line[len("error: "):]
    return f"worker {i} of {len(codes)} failed ({_describe_exit(code)}){': ' + line if line else ''} (logs in {logs})"


def _group(args) -> int:
    """Start the workers, relay worker 0's events, stop everyone at the first failure."""
    try:
        network = "private" if private_network() else "host"
    except RuntimeError as exc:
        _emit({"event": "error", "message": str(exc)})
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    config = json.loads(args.config)
    n = int(config["workers"])
    logs = Path(args.logs)
    ports = _free_ports(n) if n > 1 else []
    threads = _threads_per_worker(n)
    procs = []
    connected = threading.Event()
    worker_error: list[str] = []

    def relay(stream) -> None:
        for line in stream:
            event = _parse_event(line)
            if event is None:
                continue
            if event.get("event") == "ready":
                connected.set()
                continue
            if event.get("event") == "error":
                worker_error.append(event["message"])
                continue  # the group reports it, once
            _emit(event)

    def fail(message: str) -> int:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        _emit({"event": "error", "message": message})
        print(f"error: {message}", file=sys.stderr, flush=True)
        return 2

    relays = []
    try:
        for i in range(n):
            argv = [sys.executable, "-m", "recsys.distributed", "worker", "--config", args.config,
                    "--network", network]
            if n > 1:  # one worker alone keeps TensorFlow's own thread pools, as in one process
                argv += ["--threads", str(threads)]
            if args.data:
                argv += ["--data", args.data]
            if args.no_wait:
                argv += ["--no-wait"]
            extra = {"TF_CONFIG": json.dumps(tf_config(ports, i))} if n > 1 else {}
            with open(logs / f"worker-{i}.log", "wb") as log:
                procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE if i == 0 else subprocess.DEVNULL,
                                              stderr=log, stdin=subprocess.DEVNULL, env=_child_env(extra),
                                              preexec_fn=_die_with_parent, text=True, bufsize=1))
        relays.append(threading.Thread(target=relay, args=(procs[0].stdout,), daemon=True))
        relays[0].start()
        start = time.monotonic()
        finished_at = None
        while True:
            codes = [p.poll() for p in procs]
            if any(code not in (None, 0) for code in codes):
                time.sleep(1.0)  # a worker's death fails the others too: let the cause show itself
                codes = [p.poll() for p in procs]
                if codes[0] is not None:
                    relays[0].join(2.0)  # worker 0's last words (a UserError's message)
                if codes[0] == 2 and worker_error:
                    return fail(worker_error[0])
                return fail(_failure(codes, logs))
            if all(code == 0 for code in codes):
                break
            now = time.monotonic()
            if codes[0] == 0:
                finished_at = finished_at or now
                if now - finished_at > FOLLOWER_GRACE_SECONDS:  # the run is stored; a stuck follower is not kept
                    for p in procs[1:]:
                        if p.poll() is None:
                            p.kill()
                            p.wait()
                    break
            if not connected.is_set() and now - start > args.connect_seconds:
                return fail(f"the {n} workers did not connect within {args.connect_seconds:.0f} s (logs in {logs})")
            if args.timeout is not None and now - start > args.timeout:
                return fail(f"the {n} workers did not finish within {args.timeout:.0f} s (logs in {logs})")
            time.sleep(0.2)
        relays[0].join(10.0)
        return 0
    except BaseException:
        for p in procs:
            if p.poll() is None:
                p.kill()
        raise


# ------------------------------------------------------------------------------ a worker
class Worker:
    """One worker's side of a tf.distribute run: its strategy, index, and the collectives
    that keep every worker's decisions those of worker 0. Made by `run_worker`."""

    def __init__(self, strategy, network: str | None = None):
        import tensorflow as tf

        self.strategy = strategy
        self.index = int(strategy.cluster_resolver.task_id)
        self.count = int(strategy.num_replicas_in_sync)
        self.is_chief = self.index == 0
        # What the run records besides its config (metrics.json, info).
        # "private"/"host": local workers (see `private_network`); "TF_CONFIG": the user's addresses.
        self.info = {"workers": self.count, "worker_network": network or "TF_CONFIG"}

        @tf.function
        def total(value):  # the sum over the workers (one replica each) of their `value`
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(tf.identity, args=(value,)), axis=None)

        self._total = total

    def agree(self, value: float | None) -> float:
        """Worker 0's `value`, on every worker (the others pass None): a sum to which only
        worker 0 adds. Every worker must call it at the same point."""
        import tensorflow as tf

        mine = float(value) if self.is_chief and value is not None else 0.0
        return float(self._total(tf.constant(mine, tf.float64)))

    def tell(self, run_id: str | None) -> None:
        """Worker 0: tell the others whether to train (run_id) or not (None: a stored run)."""
        if run_id is not None:
            _emit({"event": "training", "run_id": run_id, "network": self.info["worker_network"]})
        self.agree(_code(run_id))

    def told(self) -> int:
        """The others: what worker 0 told (`_code` of its run id, 0 for "don't train")."""
        return int(self.agree(None))

    def local(self, variable):
        """This worker's copy of a (distributed) variable, as an array: no collective."""
        return self.strategy.experimental_local_results(variable)[0].numpy()

    def distribute(self, make: Callable[[int, int], object]):
        """A distributed dataset whose worker i reads `make(i, N)`: part i of every global batch."""
        def per_worker(context):
            assert context.num_input_pipelines == self.count, "one replica per worker"
            return make(context.input_pipeline_id, context.num_input_pipelines)

        return self.strategy.distribute_datasets_from_function(per_worker)


def _code(run_id: str | None) -> int:
    """A run id as a number every worker can compare exactly (24 bits: exact in a float), 0 for None."""
    return 0 if run_id is None else int(run_id[:6], 16) + 1


def cluster_size(tf_config_text: str) -> int:
    """How many workers a TF_CONFIG names (its chief counts as one); UserError if it is not one."""
    try:
        spec = json.loads(tf_config_text)
        cluster = spec["cluster"]
        return sum(len(cluster.get(job, [])) for job in ("chief", "worker"))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError("TF_CONFIG is not a tf.distribute cluster spec (JSON with \"cluster\" and \"task\")") from None


def run_worker(config, data_path: str | None = None, progress: Callable | None = None, wait: bool = True,
               threads: int | None = None, network: str | None = None) -> dict:
    """Be one worker of `config`'s run, as TF_CONFIG in the environment says.

    The entry point on each of N machines and in Ray Train's `train_loop_per_worker`.
    Worker 0 trains and stores the run (`recsys.train.train`) and returns its
    `to_json()`; the others return {"worker": i, "run_id": ..., "trained": bool}.
    Without TF_CONFIG and with workers=1: plain one-process training.
    `threads` caps TensorFlow's thread pools (local workers share the cores).
    """
    config.validate()
    text = os.environ.get("TF_CONFIG")
    if config.workers > 1:
        if not text:
            raise UserError(f"workers={config.workers} needs TF_CONFIG in each worker's environment")
        if cluster_size(text) != config.workers:
            raise UserError(f"TF_CONFIG names {cluster_size(text)} workers, but the run asks for {config.workers}")
    for_training()  # where `threads` below does not set the pools
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    from recsys import train as trainer
    from recsys.config import run_id
    from recsys.prepare import prepare

    if config.workers == 1:
        _emit({"event": "ready"})
        result = trainer.train(config, progress=progress, data_path=data_path, wait=wait)
        return result.to_json()
    # RING: the collectives on CPU. Made first: it must exist before other TensorFlow work,
    # and it waits for every worker.
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    worker = Worker(strategy, network)
    _emit({"event": "ready"})
    if worker.is_chief:
        return trainer.train(config, progress=progress, data_path=data_path, wait=wait, worker=worker).to_json()
    told = worker.told()
    prep = prepare(data_path, config.split_seed, config.split, config.dataset)
    rid = run_id(config, prep.fingerprint)
    if told == 0:
        return {"worker": worker.index, "run_id": None, "trained": False}
    if told != _code(rid):
        raise UserError(f"worker {worker.index} has other data or code than worker 0 (its run id is {rid})")
    trainer._fit(config, prep, None, None, worker)
    return {"worker": worker.index, "run_id": rid, "trained": True}


def _worker(args) -> int:
    from recsys.config import RunConfig

    try:
        config = RunConfig(**json.loads(args.config))
        out = run_worker(config, args.data, progress=lambda e: _emit({"event": "progress", "progress": e}),
                         wait=not args.no_wait, threads=args.threads, network=args.network)
    except UserError as exc:
        _emit({"event": "error", "message": str(exc)})
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    if out.get("run_id") is not None and "cached" in out:
        _emit({"event": "done", **out})
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m recsys.distributed {group,worker}`: the launcher's processes, not for people."""
    p = argparse.ArgumentParser(prog="python -m recsys.distributed")
    sub = p.add_subparsers(dest="role", required=True)
    g = sub.add_parser("group")
    g.add_argument("--config", required=True)
    g.add_argument("--logs", required=True)
    g.add_argument("--data")
    g.add_argument("--timeout", type=float)
    g.add_argument("--connect-seconds", type=float, default=CONNECT_SECONDS)
    g.add_argument("--no-wait", action="store_true")
    w = sub.add_parser("worker")
    w.add_argument("--config", required=True)
    w.add_argument("--data")
    w.add_argument("--threads", type=int)
    w.add_argument("--network")
    w.add_argument("--no-wait", action="store_true")
    args = p.parse_args(argv)
    global _EVENTS
    _EVENTS = True
    return _group(args) if args.role == "group" else _worker(args)


if __name__ == "__main__":
    sys.exit(main())
