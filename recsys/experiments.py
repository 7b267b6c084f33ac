"""The experiments the app and `make bench` both run, and the Pareto rule they share.

  the notebook's three  rating only (1, 0), retrieval only (0, 1), joint (1, 1);
  the sweep             rating weight 0, 0.1, ..., 1 with retrieval weight 1.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from recsys.config import RunConfig
from recsys.glossary import METRICS

NOTEBOOK = {"rating only": (1.0, 0.0), "retrieval only": (0.0, 1.0), "joint": (1.0, 1.0)}
SWEEP = tuple(round(i / 10, 1) for i in range(11))  # rating weights; retrieval weight 1
# The default preset changed in one place, to see what that part buys: without the
# session, and with the whole-history bag in the query tower too (recsys/layers.py).
VARIANTS = {"default-no-session": {"context_size": 0, "context_rating": False, "session_dropout": 0.0},
            "default-with-history-bag": {"history_dim": 64}}


def notebook_configs(base: RunConfig) -> dict[str, RunConfig]:
    """The notebook's three experiments on `base`'s other settings."""
    return {name: replace(base, rating_weight=r, retrieval_weight=t) for name, (r, t) in NOTEBOOK.items()}


def sweep_configs(base: RunConfig) -> list[RunConfig]:
    """The rating-weight sweep on `base`'s other settings."""
    return [replace(base, rating_weight=w, retrieval_weight=1.0) for w in SWEEP]


def pareto_front(points: pd.DataFrame, x: str = "rmse", y: str = "top_100_accuracy") -> pd.DataFrame:
    """The points no other point beats on both axes, sorted by `x`.

    Each axis's direction comes from the glossary (RMSE: lower is better). A point is
    beaten when another is at least as good on both axes and better on one; points with
    equal values on both axes keep each other on the front.
    """
    better_x = METRICS[x].higher_is_better if x in METRICS else True
    better_y = METRICS[y].higher_is_better if y in METRICS else True
    data = points.dropna(subset=[x, y])
    xs = data[x].to_numpy() * (1 if better_x else -1)
    ys = data[y].to_numpy() * (1 if better_y else -1)
    keep = [not any((xs[j] >= xs[i] and ys[j] >= ys[i]) and (xs[j] > xs[i] or ys[j] > ys[i])
                    for j in range(len(xs))) for i in range(len(xs))]
    return data[keep].sort_values(x)
