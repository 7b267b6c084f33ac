"""Evaluation metrics, computed from score matrices in NumPy.

Top-k accuracy follows TFRS's FactorizedTopK: a (query, true movie) pair is a hit when
fewer than k movies in the whole catalogue score strictly higher than the true movie.
Filtered recall ranks, per user, only movies the user did not rate in training.
"""
from __future__ import annotations

import numpy as np

KS = (1, 5, 10, 50, 100)
RECALL_KS = (10, 100)
METRIC_KEYS = ("rmse",) + tuple(f"top_{k}_accuracy" for k in KS) + tuple(f"recall_at_{k}" for k in RECALL_KS)


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error."""
    diff = np.asarray(predicted, np.float64).ravel() - np.asarray(actual, np.float64).ravel()
    return float(np.sqrt(np.mean(diff**2)))


def ranks_of_positives(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """For each row, how many candidates score strictly higher than its true candidate."""
    pos = scores[np.arange(len(scores)), positives][:, None]
    return (scores > pos).sum(axis=1)


def top_k_accuracy(ranks: np.ndarray, ks=KS) -> dict[str, float]:
    """Share of pairs whose true candidate ranks within the top k, for each k."""
    return {f"top_{k}_accuracy": float(np.mean(ranks < k)) for k in ks}


def pair_ranks(query: np.ndarray, candidates: np.ndarray, positives: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Ranks of every pair's true movie: one matrix product per chunk of queries."""
    out = np.empty(len(query), np.int64)
    for start in range(0, len(query), chunk):
        scores = query[start: start + chunk] @ candidates.T
        out[start: start + chunk] = ranks_of_positives(scores, positives[start: start + chunk])
    return out


def top_k_excluding(scores: np.ndarray, exclude: list[np.ndarray], k: int) -> np.ndarray:
    """Indices of the k best columns per row, best first; -1 pads rows with fewer left."""
    scores = scores.astype(np.float64, copy=True)
    for row, cols in enumerate(exclude):
        scores[row, cols] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
    top = np.take_along_axis(part, order, 1)
    return np.where(np.isneginf(np.take_along_axis(scores, top, 1)), -1, top)


def filtered_recall(scores: np.ndarray, seen: list[np.ndarray], relevant: list[np.ndarray],
                    ks=RECALL_KS) -> dict[str, float]:
    """Mean over users with relevant items of |top-k ∩ relevant| / |relevant|.

    `scores` is [users, movies]; `seen` (training movies) is excluded before ranking.
    """
    rows = [i for i, r in enumerate(relevant) if len(r)]
    if not rows:
        return {f"recall_at_{k}": float("nan") for k in ks}
    top = top_k_excluding(scores[rows], [seen[i] for i in rows], max(ks))
    out = {}
    for k in ks:
        hits = [len(np.intersect1d(top[j, :k], relevant[i])) / len(relevant[i]) for j, i in enumerate(rows)]
        out[f"recall_at_{k}"] = float(np.mean(hits))
    return out
