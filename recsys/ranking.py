"""Retrieve, then rank: the two-stage order of a recommendation list.

The retrieval score says "likely to watch"; the rating head's prediction says "likely
to love". A list is ordered by one of them or by a blend of both:

  watch   retrieval score alone (the first stage's own order);
  love    the predicted rating alone, among the retrieved candidates;
  blend   the retrieval score, standardised over the user's candidates, plus
          beta x (predicted rating - the user's mean rating).

The user's mean rating does not change the order of their list; it only makes the
blended score readable (0 = as good as this user's average). Beta and the number of
candidates are chosen on the validation split (`choose`), never on test.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from recsys.errors import UserError

RANKS = ("watch", "love", "blend")
BETAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
CANDIDATES = (50, 100, 200)


@dataclass(frozen=True)
class Blend:
    """How the second stage orders the first stage's candidates."""

    beta: float = 1.0  # standard deviations of retrieval score per star of predicted rating
    candidates: int = 100  # how many movies the first stage retrieves

    def to_dict(self) -> dict:
        """Plain JSON for a run's info."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Blend":
        """Inverse of `to_dict`; the defaults for a run that has none."""
        return cls(**{k: v for k, v in (d or {}).items() if k in ("beta", "candidates")})


def check_rank(rank: str) -> str:
    """The rank's name, or a UserError listing the valid ones."""
    if rank not in RANKS:
        raise UserError(f"unknown order {rank!r}; choose one of: {', '.join(RANKS)}")
    return rank


def standardise(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each row's scores minus their mean, over their standard deviation (valid columns only)."""
    count = np.maximum(valid.sum(1, keepdims=True), 1)
    mean = np.where(valid, scores, 0.0).sum(1, keepdims=True) / count
    var = np.where(valid, (scores - mean) ** 2, 0.0).sum(1, keepdims=True) / count
    return (scores - mean) / np.maximum(np.sqrt(var), 1e-9)


def blended(retrieval: np.ndarray, predicted: np.ndarray, user_mean: np.ndarray, beta: float,
            valid: np.ndarray | None = None) -> np.ndarray:
    """The blend's score of each candidate: standardised retrieval + beta x (prediction - user mean)."""
    valid = np.ones(retrieval.shape, bool) if valid is None else valid
    return standardise(retrieval, valid) + beta * (predicted - np.asarray(user_mean, np.float64).reshape(-1, 1))


def order(retrieval: np.ndarray, predicted: np.ndarray | None, rank: str, beta: float,
          valid: np.ndarray | None = None) -> np.ndarray:
    """Column order of each row under `rank`, best first; invalid columns go last.

    Ties keep the retrieval order (the candidates arrive best-retrieved first).
    """
    check_rank(rank)
    valid = np.ones(retrieval.shape, bool) if valid is None else valid
    if rank == "watch" or predicted is None:
        key = retrieval
    elif rank == "love":
        key = predicted
    else:
        key = blended(retrieval, predicted, np.zeros(len(retrieval)), beta, valid)
    key = np.where(valid, key, -np.inf)
    return np.argsort(-key, axis=1, kind="stable")


def rerank(top: np.ndarray, retrieval: np.ndarray, predicted: np.ndarray | None, rank: str,
           beta: float) -> tuple[np.ndarray, np.ndarray | None]:
    """The candidate lists `top` (movie rows, -1 padded) reordered, with their predictions."""
    idx = order(retrieval, predicted, rank, beta, top >= 0)
    return (np.take_along_axis(top, idx, 1),
            None if predicted is None else np.take_along_axis(predicted, idx, 1))


def choose(top: np.ndarray, retrieval: np.ndarray, predicted: np.ndarray, relevant: list[np.ndarray],
           k: int = 10) -> tuple[Blend, dict]:
    """The (beta, candidates) with the best liked recall@k on these (validation) lists.

    `top` holds each user's max(CANDIDATES) best-retrieved movies, best first, so the
    first N columns are the N-candidate first stage. Ties go to the smaller beta and N.
    """
    from recsys.metrics import mean_or_nan, recall_per_user

    grid = {}
    for n in CANDIDATES:
        for beta in BETAS:
            ranked, _ = rerank(top[:, :n], retrieval[:, :n], predicted[:, :n], "blend", beta)
            grid[(beta, n)] = mean_or_nan(recall_per_user(ranked, relevant, k))
    best = max(grid, key=lambda key: (grid[key], -key[0], -key[1]))
    table = {f"{beta:g}@{n}": round(v, 5) for (beta, n), v in grid.items()}
    return Blend(beta=best[0], candidates=best[1]), table
