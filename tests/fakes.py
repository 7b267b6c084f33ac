"""A fast stand-in trainer for queue tests: the real run store and locks, no TensorFlow.

The worker process loads it through RECSYS_TRAINER=fakes:train (with tests/ on
PYTHONPATH). It claims the run's lock like the real trainer, writes a small but complete
run (checksummed weights and all), and logs each training interval so tests can check
that no two ever overlapped. FAKE_EPOCHS and FAKE_EPOCH_SECONDS set its pace;
FAKE_FAIL_WEIGHT makes configs with that rating weight fail with a one-line error.
"""
from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys import fsutil, runs
from recsys.config import MODEL_VERSION, RunConfig, run_id
from recsys.errors import UserError

FINGERPRINT = "fake-data"


def fake_run_id(config: RunConfig, data_path: str | None = None) -> str:
    """The run id the fake trainer gives `config` (tests patch catalog.config_run_id with it)."""
    return run_id(config, FINGERPRINT)


@dataclass(frozen=True)
class FakeResult:
    """What the worker reads from a trainer's result."""

    run: runs.Run
    cached: bool


def write_run(folder: Path, rid: str, config: RunConfig) -> None:
    """Every file of a finished run, in the current format."""
    buffer = io.BytesIO()
    np.savez(buffer, **{"layer/kernel": np.ones((3, 2), np.float32)})
    fsutil.write_bytes(folder / "weights.npz", buffer.getvalue())
    weights = {"format": "named", **fsutil.file_record(folder / "weights.npz")}
    runs.write_json(folder / "history.json", [{"epoch": 1, "loss": 1.0}])
    runs.write_json(folder / "config.json", {"run_id": rid, "config": config.to_dict(), "format": runs.FORMAT,
                                             "model_version": MODEL_VERSION, "weights": weights})
    runs.write_json(folder / "metrics.json", {"test": {"rmse": 1.0, "top_100_accuracy": 0.5},
                                              "info": {"train_seconds": 0.1, "best_epoch": 1, "stopped_epoch": 1}})


def _log(event: dict) -> None:
    path = os.environ.get("FAKE_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "time": time.time(), **event}) + "\n")


def train(config: RunConfig, prep=None, progress=None, data_path: str | None = None, wait: bool = True):
    """Train like recsys.train.train, in FAKE_EPOCHS sleeps of FAKE_EPOCH_SECONDS."""
    rid = fake_run_id(config)
    hit = runs.find(rid)
    if hit is not None:
        return FakeResult(hit, True)
    epochs = int(os.environ.get("FAKE_EPOCHS", "2"))
    pace = float(os.environ.get("FAKE_EPOCH_SECONDS", "0.05"))
    with runs.claim(rid, wait) as folder:
        hit = runs.find(rid)
        if hit is not None:
            fsutil.remove_tree(folder)
            return FakeResult(hit, True)
        _log({"event": "start", "run_id": rid})
        try:
            for epoch in range(1, epochs + 1):
                time.sleep(pace)
                if progress:
                    progress({"epoch": epoch, "epochs": epochs, "loss": 1.0 / epoch, "eta_seconds": 0.0})
            if os.environ.get("FAKE_FAIL_WEIGHT") == f"{config.rating_weight:g}":
                raise UserError(f"the loss diverged at epoch {epochs}; lower the learning rate")
            write_run(folder, rid, config)
            (folder / "pid").unlink(missing_ok=True)
            runs.finish(rid)
        except BaseException:
            fsutil.remove_tree(folder)
            raise
        finally:
            _log({"event": "end", "run_id": rid})
    return FakeResult(runs.load(rid), False)
