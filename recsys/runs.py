"""The run store: one folder per finished run under artifacts/runs/.

A run trains into `<id>.partial/` and is renamed to `<id>/` only when every file is
written, so an interrupted run never looks finished.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from recsys import paths
from recsys.config import RunConfig
from recsys.errors import UserError

FILES = ("config.json", "metrics.json", "history.json", "weights.npz")


@dataclass(frozen=True)
class Run:
    """A finished run as stored on disk."""

    run_id: str
    path: Path
    config: RunConfig
    metrics: dict
    history: list[dict]
    info: dict  # train_seconds, best_epoch, stopped_epoch, data source, ...

    def train_json(self, cached: bool) -> dict:
        """What `python -m recsys train --json` prints for this run."""
        return {"run_id": self.run_id, "cached": cached, "train_seconds": self.info.get("train_seconds"),
                "metrics": self.metrics}

    def summary(self) -> dict:
        """What `runs --json` prints for one run."""
        return {"run_id": self.run_id, "config": self.config.to_dict(), "metrics": self.metrics, **self.info}


def write_json(path: Path, obj) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    os.replace(tmp, path)


def run_path(run_id: str) -> Path:
    """Folder of a finished run."""
    return paths.runs_dir() / run_id


def partial_path(run_id: str) -> Path:
    """Folder a run trains into before it is finished."""
    return paths.runs_dir() / f"{run_id}.partial"


def is_finished(run_id: str) -> bool:
    """True when the run's folder holds every file."""
    return all((run_path(run_id) / f).exists() for f in FILES)


def load(run_id: str) -> Run:
    """Read a finished run, with a clear error for an unknown id."""
    p = run_path(run_id)
    if not is_finished(run_id):
        raise UserError(f"no finished run {run_id!r} in {paths.runs_dir()}")
    cfg = json.loads((p / "config.json").read_text())
    metrics = json.loads((p / "metrics.json").read_text())
    return Run(run_id, p, RunConfig.from_dict(cfg["config"]), metrics["test"],
               json.loads((p / "history.json").read_text()), metrics.get("info", {}))


def list_runs() -> list[Run]:
    """Every finished run, oldest first."""
    root = paths.runs_dir()
    if not root.exists():
        return []
    ids = [p.name for p in root.iterdir() if p.is_dir() and not p.name.endswith(".partial")]
    found = [load(i) for i in ids if is_finished(i)]
    return sorted(found, key=lambda r: (r.path / "metrics.json").stat().st_mtime)


def finish(run_id: str) -> Path:
    """Publish a partial run: one rename, so readers see all of it or none."""
    src, dst = partial_path(run_id), run_path(run_id)
    if dst.exists():  # someone else finished the same config first; theirs stands
        shutil.rmtree(src, ignore_errors=True)
    else:
        os.replace(src, dst)
    return dst


def delete(run_id: str) -> None:
    """Remove a finished run and everything stored beside it."""
    if not run_path(run_id).exists():
        raise UserError(f"no run {run_id!r} to delete")
    shutil.rmtree(run_path(run_id))
