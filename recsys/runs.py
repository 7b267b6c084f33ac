"""The run store: one folder per finished run under artifacts/runs/.

A run trains into `<id>.partial/` and is renamed to `<id>/` only when every file is
written, so an interrupted run never looks finished. A run is self-describing:
`config.json` holds the resolved preset, the model code version and the size and
sha256 of the weights file, whose arrays are keyed by variable path (recsys.checkpoint).

Listing never fails because of one run. Each folder is read on its own; one that can't
be read is a `Damaged` entry with the reason, and one written by an older version of
the code is a `Run` whose `older` says why it can't be served (its metrics still can).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterator

from recsys import fsutil, paths, presets
from recsys.config import MODEL_VERSION, RunConfig
from recsys.errors import UserError

FILES = ("config.json", "metrics.json", "history.json", "weights.npz")
FORMAT = 2  # 1: weights by position, no checksums; 2: weights by variable path, checksums
RUN_ID = re.compile(r"^[0-9a-f]{12}$")
_CONFIG_FIELDS = {f.name: f.type for f in fields(RunConfig)}
_PRESET_FIELDS = {f.name for f in fields(presets.Preset)}


class DamagedRun(UserError):
    """A stored run whose files can't be read or don't match what was written."""


class OlderRun(UserError):
    """A stored run made by an older version of the code: its metrics are readable, its model is not."""


def check_run_id(text: object) -> str:
    """`text` if it is a run id (12 hex digits), else a UserError: a run id is never a path."""
    if not isinstance(text, str) or not RUN_ID.match(text):
        shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:37] + "..."
        raise UserError(f"{shown} is not a run id (12 hex digits, as `python -m recsys runs` lists them)")
    return text


@dataclass(frozen=True)
class Run:
    """A finished run as stored on disk."""

    run_id: str
    path: Path
    config: RunConfig
    metrics: dict
    history: list[dict]
    info: dict  # train_seconds, best_epoch, stopped_epoch, data source, ...
    config_dict: dict  # the config as stored, with its resolved preset
    preset: presets.Preset  # the resolved preset the run was trained with (not today's)
    weights: dict  # {"format": "named" | "positional", "size": ..., "sha256": ...}
    model_version: str | None
    older: str | None = None  # why this code can't serve the run, or None

    def train_json(self, cached: bool) -> dict:
        """What `python -m recsys train --json` prints for this run."""
        return {"run_id": self.run_id, "cached": cached, "train_seconds": self.info.get("train_seconds"),
                "metrics": self.metrics}

    def summary(self) -> dict:
        """What `runs --json` prints for one run."""
        out = {"run_id": self.run_id, "config": self.config_dict, "metrics": self.metrics, **self.info}
        if self.older:
            out["older"] = self.older
        return out

    def check_servable(self) -> None:
        """Raise OlderRun when this code can't rebuild the run's model."""
        if self.older:
            raise OlderRun(f"run {self.run_id} was made by an older version: {self.older}; its metrics are "
                           "still on Compare, where you can delete it, or train its config again")


@dataclass(frozen=True)
class Damaged:
    """A folder in the run store that is not a readable run, and why."""

    name: str
    path: Path
    reason: str

    def summary(self) -> dict:
        """What `runs --json` prints for it."""
        return {"run_id": self.name, "damaged": self.reason}


def write_json(path: Path, obj) -> None:
    """Write JSON atomically (unique temp file + rename)."""
    fsutil.write_json(path, obj)


def run_path(run_id: str) -> Path:
    """Folder of a finished run."""
    return paths.runs_dir() / run_id


def partial_path(run_id: str) -> Path:
    """Folder a run trains into before it is finished."""
    return paths.runs_dir() / f"{run_id}.partial"


def is_finished(run_id: str) -> bool:
    """True when the run's folder holds every file (readable or not: see `load`)."""
    return all((run_path(run_id) / f).exists() for f in FILES)


# --------------------------------------------------------------------------- reading
def _read_json(folder: Path, name: str):
    try:
        text = (folder / name).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedRun(f"{name} can't be read ({type(exc).__name__})") from None
    if not text.strip():
        raise DamagedRun(f"{name} is empty")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DamagedRun(f"{name} is not valid JSON ({str(exc).split(':')[0]})") from None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metric(value) -> bool:
    """A stored metric: a number, or a small table of numbers (recall by user activity)."""
    return _number(value) or (isinstance(value, dict) and all(_number(v) for v in value.values()))


def _parse_config(d) -> RunConfig:
    if not isinstance(d, dict):
        raise DamagedRun("config.json holds no config")
    unknown = sorted(set(d) - set(_CONFIG_FIELDS) - {"resolved"})
    if unknown:
        raise DamagedRun(f"config.json has unknown field(s): {', '.join(map(str, unknown))}")
    config = RunConfig(**{k: v for k, v in d.items() if k != "resolved"})
    checks = {"rating_weight": _number, "retrieval_weight": _number, "preset": lambda v: isinstance(v, str),
              "seed": lambda v: isinstance(v, int), "split_seed": lambda v: isinstance(v, int)}
    for name, ok in checks.items():
        if not ok(getattr(config, name)):
            raise DamagedRun(f"config.json: {name} is {getattr(config, name)!r}")
    return config


def _parse_preset(resolved) -> tuple[presets.Preset | None, str | None]:
    """The stored resolved preset, or None and why this code can't rebuild it."""
    if not isinstance(resolved, dict):
        return None, "it stored no resolved preset"
    unknown = sorted(set(resolved) - _PRESET_FIELDS)
    if unknown:
        return None, f"its preset has settings this version lacks ({', '.join(unknown)})"
    try:
        return presets.Preset(**{k: tuple(v) if isinstance(v, list) else v for k, v in resolved.items()}), None
    except TypeError as exc:
        return None, f"its preset can't be rebuilt ({exc})"


def _legacy_older(config: RunConfig, run_id: str, info: dict) -> str | None:
    """A format-1 run (weights by position) can reopen only if this code would give it the same id."""
    from recsys.config import run_id as compute_id

    try:
        same = compute_id(config, info.get("data_fingerprint", "")) == run_id
    except UserError:  # a preset this code no longer has
        same = False
    return None if same else "its weights are stored by position for another model or preset version"


def load(run_id: str) -> Run:
    """Read a finished run: UserError for an unknown id, DamagedRun for a damaged one."""
    check_run_id(run_id)
    p = run_path(run_id)
    if not is_finished(run_id):
        raise UserError(f"no finished run {run_id!r} in {paths.runs_dir()}")
    return _load_folder(run_id, p)


def _load_folder(run_id: str, p: Path) -> Run:
    stored = _read_json(p, "config.json")
    metrics = _read_json(p, "metrics.json")
    history = _read_json(p, "history.json")
    if not isinstance(stored, dict) or not isinstance(metrics, dict):
        raise DamagedRun("config.json or metrics.json is not a JSON object")
    if stored.get("run_id") != run_id:
        raise DamagedRun(f"config.json names run {str(stored.get('run_id'))[:20]!r}, not {run_id!r}")
    config = _parse_config(stored.get("config"))
    test, info = metrics.get("test"), metrics.get("info", {})
    if not isinstance(test, dict) or not all(_metric(v) for v in test.values()):
        raise DamagedRun("metrics.json holds no test metrics")
    if not isinstance(info, dict):
        raise DamagedRun("metrics.json: info is not an object")
    for key in ("train_seconds", "eval_seconds", "best_epoch", "stopped_epoch"):
        if key in info and not _number(info[key]):
            raise DamagedRun(f"metrics.json: {key} is not a number")
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise DamagedRun("history.json is not a list of epochs")
    preset, older = _parse_preset(stored["config"].get("resolved"))
    version = stored.get("model_version")
    weights = stored.get("weights")
    if stored.get("format", 1) >= FORMAT:
        if not isinstance(weights, dict) or "sha256" not in weights:
            raise DamagedRun("config.json has no checksum for weights.npz")
        size = (p / "weights.npz").stat().st_size
        if size != weights.get("size"):
            raise DamagedRun(f"weights.npz has {size} bytes, {weights.get('size')} were written")
        if older is None and version != MODEL_VERSION:
            older = f"model code version {version}, this is version {MODEL_VERSION}"
    else:
        weights = {"format": "positional"}
        if older is None:
            older = _legacy_older(config, run_id, info)
    resolved = stored["config"].get("resolved")
    config_dict = {**stored["config"], "resolved": resolved if isinstance(resolved, dict) else {}}
    return Run(run_id, p, config, test, history, info, config_dict, preset, weights, version, older)


def scan() -> tuple[list[Run], list[Damaged]]:
    """Every readable run (oldest first) and every damaged folder; never raises for one run."""
    root = paths.runs_dir()
    if not root.exists():
        return [], []
    found, damaged = [], []
    for p in sorted(root.iterdir()):
        name = p.name
        if name.startswith(".") or name.endswith(".partial") or not p.is_dir():
            continue  # the queue, locks, trash and runs still training
        if not RUN_ID.match(name):
            damaged.append(Damaged(name, p, "the folder name is not a run id"))
            continue
        missing = [f for f in FILES if not (p / f).exists()]
        if missing:
            damaged.append(Damaged(name, p, f"incomplete: {', '.join(missing)} missing"))
            continue
        try:
            found.append(_load_folder(name, p))
        except (DamagedRun, OSError) as exc:
            damaged.append(Damaged(name, p, str(exc) if isinstance(exc, DamagedRun) else type(exc).__name__))
    return sorted(found, key=_mtime), damaged


def _mtime(run: Run) -> float:
    try:
        return (run.path / "metrics.json").stat().st_mtime
    except OSError:
        return 0.0


def list_runs() -> list[Run]:
    """Every readable finished run, oldest first (damaged ones are left out: see `scan`)."""
    return scan()[0]


def find(run_id: str) -> Run | None:
    """The stored run `run_id` if it is readable and servable by this code, else None."""
    if not is_finished(run_id):
        return None
    try:
        run = load(run_id)
    except UserError:
        return None
    return None if run.older else run


# --------------------------------------------------------------------------- writing
def lock_path(run_id: str) -> Path:
    """The lock file a process holds while it trains run `run_id`."""
    return paths.runs_dir() / ".locks" / f"{run_id}.lock"


@contextlib.contextmanager
def claim(run_id: str, wait: bool = True) -> Iterator[Path]:
    """Hold run `run_id`'s training lock and a fresh partial folder for the `with` block.

    The lock is a kernel flock, released when its holder ends, even by kill -9: a dead
    trainer never blocks a config, and a reused pid means nothing. A second process that
    wants the same config waits (wait=False: UserError), then usually finds the run
    finished by the first (`find`). Publish with `finish` inside the block.
    """
    try:
        fd = fsutil.open_lock(lock_path(run_id), blocking=False)
    except fsutil.Locked:
        if not wait:
            raise UserError(f"run {run_id} is already being trained by another process") from None
        print(f"waiting for another process that trains run {run_id}...", file=sys.stderr, flush=True)
        fd = fsutil.open_lock(lock_path(run_id), blocking=True)
    try:
        folder = partial_path(run_id)
        if folder.exists() or folder.is_symlink():  # a dead trainer's leftovers: nobody else writes there
            fsutil.remove_tree(folder)
        folder.mkdir(parents=True)
        write_json(folder / "pid", fsutil.ProcessId.me().to_dict())  # who trains it, for people
        yield folder
    finally:
        os.close(fd)


def abandon(run_id: str, wait_seconds: float = 0.0) -> bool:
    """Remove run `run_id`'s partial folder if no process trains it (within `wait_seconds`).

    True if it was removed. Called after a trainer was killed, whose lock outlives it by
    a moment.
    """
    try:
        fd = fsutil.open_lock_within(lock_path(run_id), wait_seconds)
    except fsutil.Locked:
        return False
    try:
        if partial_path(run_id).exists():
            fsutil.remove_tree(partial_path(run_id))
            return True
        return False
    finally:
        os.close(fd)


def finish(run_id: str) -> Path:
    """Publish a partial run: one rename, so readers see all of it or none.

    A finished, servable run of the same config stands (someone else finished first).
    Anything else in the way (an incomplete, damaged or older folder) is replaced.
    """
    src, dst = partial_path(run_id), run_path(run_id)
    if find(run_id) is not None:
        fsutil.remove_tree(src)
        return dst
    if dst.exists() or dst.is_symlink():
        fsutil.remove_tree(dst)
    os.replace(src, dst)
    return dst


def delete(name: str) -> None:
    """Remove a stored run, or a damaged folder listed by `scan`, and everything inside it.

    Only names that `scan` lists are accepted: never a path. A symlinked run loses its
    link; what it points to is left alone.
    """
    runs_found, damaged = scan()
    names = {r.run_id for r in runs_found} | {d.name for d in damaged}
    if name not in names:
        if isinstance(name, str) and not RUN_ID.match(name):
            check_run_id(name)
        raise UserError(f"no run {name!r} to delete")
    fsutil.remove_tree(paths.runs_dir() / name)
