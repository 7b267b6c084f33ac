"""Evaluation metrics, computed from score matrices and top-k lists in NumPy.

Per pair (a test rating, queried at its own time):
  top_k_accuracy         TFRS FactorizedTopK's: fewer than k movies of the whole
                         catalogue score strictly higher than the true movie;
  top_k_accuracy_unseen  the same among movies the user did not rate in training.
Per user (one query, at the user's latest rating before the part; rated movies left out):
  recall_at_k            |top k ∩ the user's movies in the part| / |those movies|;
  liked_recall_at_k      the same for the movies the user rated 4 or 5 there;
  hr_at_10, ndcg_at_10   whether (and how high) the user's first movie of the part,
                         by time, is in the top 10: the next movie;
  coverage_at_10         share of the catalogue in anyone's top 10;
  novelty_at_10          mean -log2 of a recommended movie's share of training ratings;
  mean_popularity_at_10  mean number of training ratings of a recommended movie;
  recall_at_10_by_activity  recall@10 of light, medium and heavy users (terciles of
                         their number of training ratings).
"""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from recsys.threads import cores

KS = (1, 5, 10, 50, 100)
RECALL_KS = (10, 100)
UNSEEN_KS = (10, 100)
LIKED = 4.0  # stars from which a rating counts as "liked"
LOW = 3.0  # predicted stars below which a recommendation reads as "you won't like it"
ACTIVITY = ("light", "medium", "heavy")
PARALLEL_CELLS = 1 << 18  # from this many scores on, top_k_excluding splits its rows over threads
PAIR_KEYS = ("rmse",) + tuple(f"top_{k}_accuracy" for k in KS) + tuple(f"top_{k}_accuracy_unseen" for k in UNSEEN_KS)
USER_KEYS = (tuple(f"recall_at_{k}" for k in RECALL_KS) + tuple(f"liked_recall_at_{k}" for k in RECALL_KS)
             + ("hr_at_10", "ndcg_at_10", "coverage_at_10", "novelty_at_10", "mean_popularity_at_10",
                "recall_at_10_by_activity"))
# The same lists in the two-stage order, and how many shown movies are predicted below 3 stars.
RANKED_KEYS = (tuple(f"recall_at_{k}_ranked" for k in RECALL_KS) + tuple(f"liked_recall_at_{k}_ranked" for k in RECALL_KS)
               + ("hr_at_10_ranked", "ndcg_at_10_ranked", "low_rated_share_at_10", "low_rated_share_at_10_ranked"))
METRIC_KEYS = PAIR_KEYS + USER_KEYS + RANKED_KEYS  # what a run's metrics.json holds


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error."""
    diff = np.asarray(predicted, np.float64).ravel() - np.asarray(actual, np.float64).ravel()
    return float(np.sqrt(np.mean(diff**2)))


def ranks_of_positives(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """For each row, how many candidates score strictly higher than its true candidate."""
    pos = scores[np.arange(len(scores)), positives][:, None]
    return (scores > pos).sum(axis=1)


def unseen_ranks(scores: np.ndarray, positives: np.ndarray, seen: list[np.ndarray]) -> np.ndarray:
    """Like `ranks_of_positives`, counting only columns not in the row's `seen` movies."""
    pos_score = scores[np.arange(len(scores)), positives][:, None]
    scores = np.array(scores, np.float64)
    for row, cols in enumerate(seen):
        scores[row, cols] = -np.inf
    return (scores > pos_score).sum(axis=1)


def top_k_accuracy(ranks: np.ndarray, ks=KS, suffix: str = "") -> dict[str, float]:
    """Share of pairs whose true candidate ranks within the top k, for each k."""
    return {f"top_{k}_accuracy{suffix}": float(np.mean(ranks < k)) for k in ks}


def pair_ranks(query: np.ndarray, candidates: np.ndarray, positives: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Ranks of every pair's true movie: one matrix product per chunk of queries."""
    out = np.empty(len(query), np.int64)
    for start in range(0, len(query), chunk):
        scores = query[start: start + chunk] @ candidates.T
        out[start: start + chunk] = ranks_of_positives(scores, positives[start: start + chunk])
    return out


def top_k_excluding(scores: np.ndarray, exclude: list[np.ndarray], k: int) -> np.ndarray:
    """Indices of the k best columns per row, best first; -1 pads rows with fewer left."""
    # One negated copy: the excluded columns go to +inf, and the smallest come first.
    cost = np.negative(scores, dtype=np.float32 if scores.dtype == np.float32 else np.float64)
    for row, cols in enumerate(exclude):
        cost[row, cols] = np.inf
    k = min(k, cost.shape[1])
    if cost.size < PARALLEL_CELLS or len(cost) < 2:
        return _top_k(cost, k)
    # NumPy's partition releases the GIL: row blocks on every core (the choices after
    # training rank [users, movies] matrices dozens of times).
    blocks = np.array_split(cost, min(cores(), len(cost)))
    return np.vstack(list(_pool().map(lambda block: _top_k(block, k), blocks)))


def _top_k(cost: np.ndarray, k: int) -> np.ndarray:
    """`top_k_excluding` of an already negated, excluded block."""
    part = np.argpartition(cost, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(part, np.argsort(np.take_along_axis(cost, part, 1), axis=1, kind="stable"), 1)
    return np.where(np.isposinf(np.take_along_axis(cost, top, 1)), -1, top)


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """One thread pool for the process, made when first needed."""
    return ThreadPoolExecutor(cores(), thread_name_prefix="top-k")


def recall_per_user(top: np.ndarray, relevant: list[np.ndarray], k: int) -> np.ndarray:
    """|top k ∩ relevant| / |relevant| for each row; NaN where nothing is relevant."""
    sizes = np.array([len(r) for r in relevant])
    head = top[:, :k]
    flat = np.concatenate([*relevant, []]).astype(int)
    width = int(max(head.max(initial=-1), flat.max(initial=-1))) + 1
    # One boolean row per user, so every list is checked in one gather instead of a loop.
    mask = np.zeros((len(relevant), width + 1), bool)  # the extra last column catches -1 padding
    mask[np.repeat(np.arange(len(relevant)), sizes), flat] = True
    hits = mask[np.arange(len(relevant))[:, None], np.where(head >= 0, head, width)].sum(1)
    return np.where(sizes > 0, hits / np.maximum(sizes, 1), np.nan)


def mean_or_nan(values: np.ndarray) -> float:
    """Mean over the non-NaN values (NaN if there are none)."""
    values = np.asarray(values, np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def recall_at(top: np.ndarray, relevant: list[np.ndarray], ks=RECALL_KS, prefix: str = "recall",
              suffix: str = "") -> dict[str, float]:
    """Mean recall@k over users with relevant movies, for each k."""
    return {f"{prefix}_at_{k}{suffix}": mean_or_nan(recall_per_user(top, relevant, k)) for k in ks}


def filtered_recall(scores: np.ndarray, seen: list[np.ndarray], relevant: list[np.ndarray],
                    ks=RECALL_KS) -> dict[str, float]:
    """Mean over users with relevant items of |top-k ∩ relevant| / |relevant|.

    `scores` is [users, movies]; `seen` (training movies) is excluded before ranking.
    """
    rows = [i for i, r in enumerate(relevant) if len(r)]
    if not rows:
        return {f"recall_at_{k}": float("nan") for k in ks}
    top = top_k_excluding(scores[rows], [seen[i] for i in rows], max(ks))
    return recall_at(top, [relevant[i] for i in rows], ks)


def hit_rate_ndcg(top: np.ndarray, target: np.ndarray, k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k of one target movie per row (-1: the row has none and is skipped)."""
    rows = np.flatnonzero(np.asarray(target) >= 0)
    if not len(rows):
        return {f"hr_at_{k}": float("nan"), f"ndcg_at_{k}": float("nan")}
    hit = top[rows, :k] == np.asarray(target)[rows, None]
    position = np.where(hit.any(1), hit.argmax(1), -1)
    gain = np.where(position >= 0, 1.0 / np.log2(np.maximum(position, 0) + 2.0), 0.0)
    return {f"hr_at_{k}": float(np.mean(position >= 0)), f"ndcg_at_{k}": float(np.mean(gain))}


def beyond_accuracy(top: np.ndarray, counts: np.ndarray, k: int = 10) -> dict[str, float]:
    """Coverage, novelty and mean popularity of the top-k lists (rows), from training counts."""
    shown = top[:, :k]
    shown = shown[shown >= 0]
    if not len(shown):
        return {f"coverage_at_{k}": 0.0, f"novelty_at_{k}": float("nan"), f"mean_popularity_at_{k}": float("nan")}
    # A movie nobody rated counts as rated once: its self-information stays finite.
    share = np.maximum(counts[shown], 1) / max(float(counts.sum()), 1.0)
    return {f"coverage_at_{k}": float(len(np.unique(shown)) / len(counts)),
            f"novelty_at_{k}": float(np.mean(-np.log2(share))),
            f"mean_popularity_at_{k}": float(np.mean(counts[shown]))}


def activity_groups(activity: np.ndarray) -> np.ndarray:
    """0, 1, 2 for light, medium and heavy users: terciles of their number of ratings."""
    cuts = np.quantile(activity, [1 / 3, 2 / 3])
    return np.searchsorted(cuts, activity, side="right")


def recall_by_activity(recall: np.ndarray, activity: np.ndarray) -> dict[str, float]:
    """Mean per-user recall within each activity tercile."""
    groups = activity_groups(activity)
    return {name: mean_or_nan(recall[groups == g]) for g, name in enumerate(ACTIVITY)}


def low_share(predicted: np.ndarray, top: np.ndarray, k: int = 10) -> float:
    """Share of the shown top-k movies whose predicted rating is below `LOW` stars."""
    return low_share_error(predicted, top, k)[0]


def low_share_error(predicted: np.ndarray, top: np.ndarray, k: int = 10) -> tuple[float, float]:
    """`low_share` and its standard error over users: each user's list is one sample (its
    movies are not independent draws), so the error is that of a ratio of per-user sums."""
    valid = top[:, :k] >= 0
    shown = valid.sum(1)
    if not shown.any():
        return float("nan"), float("nan")
    low = ((predicted[:, :k] < LOW) & valid).sum(1)
    share = low.sum() / shown.sum()
    return float(share), float(np.sqrt(((low - share * shown) ** 2).sum()) / shown.sum())
