"""Where artifacts live. `RECSYS_ARTIFACTS` moves them (the tests use a temp dir)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def artifacts_dir() -> Path:
    """Return the artifacts folder: runs, indexes and the data cache."""
    return Path(os.environ.get("RECSYS_ARTIFACTS", ROOT / "artifacts"))


def data_dir() -> Path:
    """Return the folder that holds the offline default tables and the tfds cache."""
    return Path(os.environ.get("RECSYS_DATA_DIR", artifacts_dir() / "data"))


def runs_dir() -> Path:
    """Return the folder that holds one sub-folder per trained run."""
    return artifacts_dir() / "runs"
