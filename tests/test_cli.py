"""`python -m recsys`: bad input exits 2 with one line and writes nothing; real-data runs."""
import json
import os
import subprocess
import sys

import pytest

from recsys import paths
from recsys.metrics import METRIC_KEYS

REAL_DATA = paths.ROOT / "artifacts" / "data"


def cli(*args, env=None, timeout=600):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "recsys", *args], capture_output=True, text=True,
                          env=full_env, cwd=paths.ROOT, timeout=timeout)


def _real_env():
    assert (REAL_DATA / "MovieLens100k_data.parquet.brotli").exists(), "run `make setup` to extract the data"
    return {"RECSYS_DATA_DIR": str(REAL_DATA)}


BAD_TRAIN_ARGS = {
    "negative weight": ["--rating-weight", "-1", "--retrieval-weight", "1"],
    "nan weight": ["--rating-weight", "nan", "--retrieval-weight", "1"],
    "infinite weight": ["--rating-weight", "1", "--retrieval-weight", "inf"],
    "both weights zero": ["--rating-weight", "0", "--retrieval-weight", "0"],
    "zero epochs": ["--rating-weight", "1", "--retrieval-weight", "1", "--epochs", "0"],
    "negative epochs": ["--rating-weight", "1", "--retrieval-weight", "1", "--epochs", "-3"],
    "absurd epochs": ["--rating-weight", "1", "--retrieval-weight", "1", "--epochs", "1000000"],
    "unknown preset": ["--rating-weight", "1", "--retrieval-weight", "1", "--preset", "huge"],
    "missing data path": ["--rating-weight", "1", "--retrieval-weight", "1", "--data", "/no/such/ml-100k"],
    "non-numeric weight": ["--rating-weight", "lots", "--retrieval-weight", "1"],
}


@pytest.mark.parametrize("args", BAD_TRAIN_ARGS.values(), ids=BAD_TRAIN_ARGS.keys())
def test_bad_train_input_is_one_line_exit_2_and_writes_nothing(args, tmp_path):
    out = cli("train", *args)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr
    assert not (paths.artifacts_dir() / "runs").exists()


def test_unreadable_data_path_is_exit_2(tmp_path):
    junk = tmp_path / "ml-100k.zip"
    junk.write_bytes(b"this is not a zip")
    empty = tmp_path / "empty"
    empty.mkdir()
    for bad in (junk, empty):
        out = cli("train", "--rating-weight", "1", "--retrieval-weight", "1", "--data", str(bad))
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
        assert str(bad) in out.stderr
        assert not (paths.artifacts_dir() / "runs").exists()


def test_no_data_source_says_how_to_provide_one():
    out = cli("data", "--json")
    assert out.returncode == 2
    assert "make setup" in out.stderr and "--data" in out.stderr


def test_data_json_reports_the_offline_default():
    out = cli("data", "--json", env=_real_env())
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert {k: got[k] for k in ("dataset", "source", "synthetic", "ratings", "users", "movies")} == {
        "dataset": "ml-100k", "source": "widedeep", "synthetic": False, "ratings": 100000, "users": 943, "movies": 1682}


def test_train_then_cached_on_the_real_data():
    env = _real_env()
    args = ["train", "--rating-weight", "1", "--retrieval-weight", "1", "--epochs", "3", "--json"]
    first = cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    got = json.loads(first.stdout)
    assert got["cached"] is False and got["train_seconds"] > 0
    assert set(got["metrics"]) == set(METRIC_KEYS)
    assert {"recall_at_10", "recall_at_100", "top_10_accuracy_unseen", "top_100_accuracy_unseen", "hr_at_10",
            "ndcg_at_10", "liked_recall_at_10", "liked_recall_at_10_ranked"} <= set(got["metrics"])
    # Even three epochs must beat always predicting the mean rating (RMSE about 1.13).
    assert got["metrics"]["rmse"] < 1.0 and got["metrics"]["top_100_accuracy"] > 0.2
    second = cli(*args, env=env)
    again = json.loads(second.stdout)
    assert again["cached"] is True and again["run_id"] == got["run_id"] and again["metrics"] == got["metrics"]
    listed = json.loads(cli("runs", "--json", env=env).stdout)
    assert [r["run_id"] for r in listed] == [got["run_id"]]
    assert listed[0]["default"] is False  # the default run trains the preset's epochs, not 3
