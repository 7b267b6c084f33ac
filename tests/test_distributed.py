"""Training on tf.distribute: `python -m recsys train --workers N` (recsys/distributed.py).

The end-to-end tests start real worker processes (MultiWorkerMirroredStrategy over
loopback gRPC). The loss scaling is checked exactly on two replicas in one process.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from recsys import paths, runs, synth
from recsys.config import MAX_WORKERS, RunConfig, run_id
from recsys.distributed import _code, cluster_size, tf_config

TESTS = Path(__file__).resolve().parent
# Headline test metrics that must agree within 0.01 between one process and 2 workers.
# The rest follow choices made on validation after training (the blend, the taste
# horizon: discrete, so a tiny difference can flip them); they are held to 0.05.
HEADLINE = ("rmse", "top_1_accuracy", "top_5_accuracy", "top_10_accuracy", "top_50_accuracy", "top_100_accuracy",
            "recall_at_10", "recall_at_100", "ndcg_at_10", "hr_at_10")
TRAIN = ["train", "--rating-weight", "1", "--retrieval-weight", "1", "--json"]


def cli(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "recsys", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=paths.ROOT, timeout=timeout)


def one_error_line(out) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-2000:]
    return lines[0]


# ------------------------------------------------------------------------------ config, no TensorFlow
def test_workers_one_keeps_run_ids_and_config_json_as_before():
    # Ids of these configs as `workers` found them (main at 78602a5), re-pinned when the model
    # code version or a preset field changes them (MODEL_VERSION 7: round 11 of bench/tuning.md).
    assert run_id(RunConfig(), "fingerprint") == "2bd1e1af18ec"
    seed = RunConfig(rating_weight=0.5, retrieval_weight=1, preset="seed", epochs=3, batch_size=64, seed=7)
    assert run_id(seed, "abc") == "bdf0344351ed"
    assert run_id(RunConfig(workers=1), "fingerprint") == "2bd1e1af18ec"
    assert "workers" not in RunConfig().to_dict()
    two = RunConfig(workers=2)
    assert two.to_dict()["workers"] == 2 and run_id(two, "fingerprint") != run_id(RunConfig(), "fingerprint")
    assert RunConfig.from_dict(two.to_dict()) == two and RunConfig.from_dict(RunConfig().to_dict()).workers == 1


@pytest.mark.parametrize("workers", [0, -1, MAX_WORKERS + 1, 99, True, 2.0])
def test_workers_outside_1_to_8_are_refused(workers):
    from recsys.errors import UserError

    with pytest.raises(UserError, match="workers must be a whole number from 1 to 8"):
        RunConfig(workers=workers).validate()


def test_a_batch_smaller_than_the_workers_is_refused():
    from recsys.errors import UserError

    with pytest.raises(UserError, match="at least the number of workers"):
        RunConfig(workers=4, batch_size=3).validate()
    RunConfig(workers=4, batch_size=4).validate()


@pytest.mark.parametrize("workers", ["0", "99"])
def test_bad_workers_on_the_command_line_is_one_line_and_writes_nothing(workers):
    error = one_error_line(cli(*TRAIN, "--workers", workers))
    assert "workers must be a whole number from 1 to 8" in error
    assert not (paths.artifacts_dir() / "runs").exists()


def test_every_address_is_loopback_and_a_run_id_is_one_exact_number():
    spec = tf_config([5001, 5002, 5003], 2)
    assert spec["task"] == {"type": "worker", "index": 2}
    assert all(a.startswith("127.0.0.1:") for a in spec["cluster"]["worker"])
    assert cluster_size(json.dumps(spec)) == 3
    assert _code(None) == 0 and _code("ffffff123456") == 2**24  # exact in a float64 (and a float32)
    assert len({_code(f"{i:06x}000000") for i in range(0, 2**24, 4099)}) == len(range(0, 2**24, 4099))


def test_a_private_network_has_only_loopback():
    """The group's namespace (when the kernel allows one): nothing but lo, and lo is up."""
    code = textwrap.dedent("""
        import json, socket
        from recsys.distributed import private_network
        ok = private_network()
        names = [n for _, n in socket.if_nameindex()]
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); port = s.getsockname()[1]
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        print(json.dumps({"private": ok, "interfaces": names}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=paths.ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    if found["private"]:
        assert found["interfaces"] == ["lo"]


# ------------------------------------------------------------------------------ the batches and the loss
def test_the_workers_shares_make_up_each_one_process_batch(tmp_path):
    from dataclasses import replace

    from tiny import TINY_CONFIG, tiny_prep

    from recsys.train import training_batches

    prep = tiny_prep(tmp_path)
    preset = replace(TINY_CONFIG.resolved_preset(), batch_size=50)  # 432 rows: 8 full batches and 32 rows
    steps = 2 * -(-len(prep.train["user"]) // 50)  # two epochs: the shuffles and the short last batch
    whole = list(training_batches(prep, preset, 42).take(steps))
    shares = [list(training_batches(prep, preset, 42, i, 3).take(steps)) for i in range(3)]
    for step, batch in enumerate(whole):
        for key in ("user", "movie", "rating", "timestamp", "session", "session_rating"):
            parts = [shares[i][step][key].numpy() for i in range(3)]
            if parts[0].ndim == 2:  # a session is padded to the longest in its batch: 0 is "none"
                width = batch[key].shape[1]
                parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])]) for p in parts]
            np.testing.assert_array_equal(np.concatenate(parts), batch[key].numpy(), err_msg=f"step {step} {key}")


GRADIENT_CHECK = """
import json, sys
from dataclasses import replace
import tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from tiny import TINY_CONFIG, tiny_prep
from recsys.checkpoint import build_model
from recsys.train import training_batches

prep = tiny_prep(__import__("pathlib").Path(sys.argv[1]))
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = []
for weights, reduction, l2 in [((1.0, 1.0), "mean", 1e-3), ((0.3, 1.0), "sum", 0.0), ((1.0, 0.0), "mean", 1e-3)]:
    config = replace(TINY_CONFIG, rating_weight=weights[0], retrieval_weight=weights[1])
    # No dropout, so both sides compute the same function; 63 rows: shares of 31 and 32.
    preset = replace(config.resolved_preset(), tower_dropout=0.0, rating_dropout=0.0, id_dropout=0.0,
                     session_dropout=0.0, retrieval_reduction=reduction, l2=l2, batch_size=63)
    one = build_model(prep, config, preset)
    one.compile(optimizer=tf.keras.optimizers.SGD(1.0))  # new weights = old - gradient
    with strategy.scope():
        two = build_model(prep, config, preset)
        two.compile(optimizer=tf.keras.optimizers.SGD(1.0))
    for a, b in zip(two.weights, one.weights):
        a.assign(b)
    batch = next(iter(training_batches(prep, preset, 7)))
    shares = [next(iter(training_batches(prep, preset, 7, i, 2))) for i in range(2)]
    logs_one = one.train_step(batch)
    inputs = strategy.experimental_distribute_values_from_function(lambda c: shares[c.replica_id_in_sync_group])
    per_replica = tf.function(lambda x: strategy.run(two.train_step, args=(x,)))(inputs)
    logs_two = {k: [float(v) for v in strategy.experimental_local_results(t)] for k, t in per_replica.items()}
    worst = max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(one.trainable_variables,
                                                                             two.trainable_variables))
    out.append({"worst": worst, "one": {k: float(v) for k, v in logs_one.items()}, "two": logs_two})
print(json.dumps(out))
"""


def test_two_replicas_take_exactly_the_one_process_step(tmp_path):
    """Loss scaling: after one SGD step on the same global batch, two replicas' summed
    gradients (each replica's share of the loss, 1/2 of the L2 penalty) leave the same
    weights as one process; their losses are the one-process losses, on both replicas."""
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{paths.ROOT}", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", GRADIENT_CHECK, str(tmp_path)], capture_output=True, text=True,
                         env=env, cwd=paths.ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for case in json.loads(out.stdout.strip().splitlines()[-1]):
        assert case["worst"] < 1e-5, case
        for key in ("loss", "rating_loss", "retrieval_loss", "regularization_loss", "total_loss"):
            expected = case["one"][key]
            assert case["two"][key] == pytest.approx([expected, expected], rel=1e-5, abs=1e-6), (key, case)


# ------------------------------------------------------------------------------ real worker processes
@pytest.fixture(scope="module")
def synthetic_60k(tmp_path_factory):
    """Big enough that training noise stays well under 0.01 on the headline metrics
    (at 20,000 ratings, top-100 accuracy moved by 0.006 between 1 and 2 workers)."""
    out = tmp_path_factory.mktemp("synth60k") / "copy"
    synth.generate(out, synth.Sizes(users=1500, movies=600, ratings=60_000))
    return str(out)


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (our RECSYS_ARTIFACTS)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def _worker_pid(marker: str, index: int) -> int | None:
    for pid in _processes_with(marker):
        try:
            environ = dict(kv.split(b"=", 1) for kv in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        spec = environ.get(b"TF_CONFIG")
        if spec and json.loads(spec)["task"]["index"] == index:
            return pid
    return None


def _wait_for(predicate, seconds: float = 300.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def _no_orphans(marker: str) -> None:
    _wait_for(lambda: not _processes_with(marker), 30.0)


def test_two_workers_train_the_one_process_run(synthetic_60k, tmp_path):
    """`--workers 2`: real processes; one run folder, written by worker 0; workers=2 recorded;
    test metrics within 0.01 of one process on the same config; nothing left behind."""
    common = [*TRAIN, "--epochs", "2", "--data", synthetic_60k]
    env = {"TMPDIR": str(tmp_path)}  # the launcher's log folder goes here, and must go away
    one = cli(*common, env=env)
    assert one.returncode == 0, one.stderr[-2000:]
    two = cli(*common, "--workers", "2", env=env)
    assert two.returncode == 0, two.stderr[-2000:]
    one, two = json.loads(one.stdout), json.loads(two.stdout)
    assert not two["cached"] and two["workers"] == 2 and two["run_id"] != one["run_id"]

    names = sorted(p.name for p in (paths.artifacts_dir() / "runs").iterdir() if not p.name.startswith("."))
    assert names == sorted([one["run_id"], two["run_id"]])  # no .partial, nothing from worker 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("recsys-workers-")]
    run = runs.load(two["run_id"])
    stored = json.loads((run.path / "config.json").read_text())["config"]
    assert stored["workers"] == 2 and run.config.workers == 2
    assert run.info["workers"] == 2 and run.info["worker_network"] in ("private", "host")
    assert len(run.history) == 2 and all(np.isfinite(h["loss"]) for h in run.history)
    assert "workers" not in json.loads((runs.load(one["run_id"]).path / "config.json").read_text())["config"]

    a, b = one["metrics"], two["metrics"]
    assert set(a) == set(b)
    for key in HEADLINE:
        assert abs(a[key] - b[key]) <= 0.01, (key, a[key], b[key])
    for key, value in a.items():
        if isinstance(value, float) and 0 <= value <= 1:
            assert abs(value - b[key]) <= 0.05, (key, value, b[key])
    for key in ("mean_popularity_at_10", "novelty_at_10"):
        assert b[key] == pytest.approx(a[key], rel=0.05), key

    again = cli(*common, "--workers", "2")
    assert again.returncode == 0 and json.loads(again.stdout)["cached"]


def _start_two_workers(synthetic_60k, tmp_path):
    marker = str(tmp_path / "artifacts")
    env = {**os.environ, "RECSYS_ARTIFACTS": marker, "TMPDIR": str(tmp_path)}
    # As from a terminal, where Ctrl-C is delivered: a shell without job control starts its
    # background commands (a CI runner's, say) with SIGINT ignored, and children inherit that.
    proc = subprocess.Popen([sys.executable, "-m", "recsys", *TRAIN, "--epochs", "30", "--data", synthetic_60k,
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=paths.ROOT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    partial = Path(marker) / "runs"
    # Training has begun: worker 0 claimed the run and the workers are connected.
    _wait_for(lambda: proc.poll() is not None or any(p.name.endswith(".partial") for p in partial.glob("*")))
    assert proc.poll() is None, proc.communicate()
    time.sleep(1.0)  # worker 0 has told the others to train (and the launcher which run it is)
    return proc, marker


def test_a_killed_worker_ends_the_run_with_one_line_and_no_orphans(synthetic_60k, tmp_path):
    proc, marker = _start_two_workers(synthetic_60k, tmp_path)
    try:
        os.kill(_wait_for(lambda: _worker_pid(marker, 1), 60.0), signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: worker 1 of 2 failed (killed by SIGKILL)"), stderr
    _no_orphans(marker)
    left = [p.name for p in (Path(marker) / "runs").iterdir() if not p.name.startswith(".")]
    assert left == []  # a failed run leaves no .partial, as in one process


@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_stopping_the_launcher_stops_every_worker(synthetic_60k, tmp_path, how):
    proc, marker = _start_two_workers(synthetic_60k, tmp_path)
    assert _wait_for(lambda: _worker_pid(marker, 1), 60.0)
    proc.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    try:
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    _no_orphans(marker)  # Ctrl-C: the launcher stops them; kill -9: each dies with its parent
    if how == "ctrl-c":
        assert not [p for p in tmp_path.iterdir() if p.name.startswith("recsys-workers-")]


def test_a_tf_config_of_another_size_is_one_line(tmp_path):
    spec = json.dumps(tf_config([1, 2, 3], 0))
    error = one_error_line(cli(*TRAIN, "--workers", "2", env={"TF_CONFIG": spec}))
    assert "TF_CONFIG names 3 workers, but the run asks for 2" in error
