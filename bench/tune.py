"""Hyper-parameter search for the `default` preset, on the validation split only.

Each candidate trains with the joint weights (1, 1); we report its best epoch's
validation metrics. The test split is never read here.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import replace

os.environ.setdefault("RECSYS_ARTIFACTS", tempfile.mkdtemp(prefix="tune-"))

from recsys import presets  # noqa: E402
from recsys.config import RunConfig  # noqa: E402
from recsys.prepare import prepare  # noqa: E402
from recsys.train import train  # noqa: E402


def trial(name: str, prep, **overrides) -> dict:
    """Train one candidate preset; return its best validation epoch."""
    presets.PRESETS[name] = replace(presets.PRESETS["default"], **overrides)
    start = time.perf_counter()
    result = train(RunConfig(1.0, 1.0, preset=name), prep=prep)
    best = min(result.run.history, key=lambda h: h["val_selection_loss"])
    return {"name": name, **overrides, "seconds": round(time.perf_counter() - start, 1),
            "best_epoch": best["epoch"], "epochs_run": len(result.run.history),
            **{k: round(v, 4) for k, v in best.items() if k.startswith("val_")}}


if __name__ == "__main__":
    prep = prepare()
    grid = [json.loads(arg) for arg in sys.argv[1:]] or [{}]
    for i, overrides in enumerate(grid):
        print(json.dumps(trial(f"tune{i}-{time.time_ns()}", prep, **overrides)), flush=True)
