"""Hyper-parameter search for the `default` preset, on the validation split only.

Each candidate trains with the joint weights (1, 1) and prints the validation metrics
of the epoch early stopping kept (with the two-stage blend chosen on validation too).
`{"split": "temporal"}` in a candidate picks the protocol; other keys override the
preset. Nothing printed here comes from the test split.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import fields, replace

# Runs go to a temporary folder, but the data stays where `make setup` put it.
os.environ.setdefault("RECSYS_DATA_DIR", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                      "artifacts", "data"))
os.environ.setdefault("RECSYS_ARTIFACTS", tempfile.mkdtemp(prefix="tune-"))

from recsys import presets  # noqa: E402
from recsys.config import RunConfig  # noqa: E402
from recsys.prepare import prepare  # noqa: E402
from recsys.train import train  # noqa: E402

SHOWN = ("rmse", "top_10_accuracy", "top_100_accuracy", "top_10_accuracy_unseen", "recall_at_10", "recall_at_100",
         "liked_recall_at_10", "liked_recall_at_10_ranked", "hr_at_10", "ndcg_at_10", "low_rated_share_at_10_ranked")


def trial(name: str, overrides: dict) -> dict:
    """Train one candidate preset; return its validation metrics."""
    run_fields = {f.name for f in fields(RunConfig)}
    config = {k: v for k, v in overrides.items() if k in run_fields}
    presets.PRESETS[name] = replace(presets.PRESETS["default"],
                                    **{k: v for k, v in overrides.items() if k not in run_fields})
    run_config = RunConfig(1.0, 1.0, preset=name, **config)
    prep = prepare(None, run_config.split_seed, run_config.split)
    start = time.perf_counter()
    result = train(run_config, prep=prep)
    val = result.run.info["validation"]
    return {**overrides, "seconds": round(time.perf_counter() - start, 1), "best_epoch": result.run.info["best_epoch"],
            "epochs_run": result.run.info["stopped_epoch"], "taste": result.run.info["taste"], "blend": result.run.info["blend"],
            **{k: round(val[k], 4) for k in SHOWN if isinstance(val.get(k), float)}}


if __name__ == "__main__":
    for i, overrides in enumerate([json.loads(arg) for arg in sys.argv[1:]] or [{}]):
        print(json.dumps(trial(f"tune{i}-{time.time_ns()}", overrides)), flush=True)
