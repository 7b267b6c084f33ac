"""Retrieve, then rank: the two-stage order of a recommendation list.

The retrieval score says "likely to watch"; the rating head's prediction says "likely
to love". A list is ordered by one of them or by a blend of both:

  watch   retrieval score alone (the first stage's own order);
  love    the predicted rating alone, among the retrieved candidates;
  blend   the retrieval score, standardised over the user's candidates,
          plus beta x (predicted rating - the user's mean rating),
          plus guard x log sigmoid((predicted rating - GUARD_AT) / GUARD_WIDTH).

The guard term is about 0 for a movie predicted well above GUARD_AT stars and falls
about linearly below it: it pushes down the movies the user would not like without
reordering the ones they would, which a large beta does (and costs recall). The user's
mean rating does not change the order of their list; it only makes the blended score
readable (0 = as good as this user's average). Beta, the guard's weight and the number
of candidates are chosen on the validation split (`choose`), never on test.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from recsys.errors import UserError

RANKS = ("watch", "love", "blend")
BETAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
GUARDS = (0.0, 0.25, 0.5, 1.0, 2.0)
CANDIDATES = (50, 100, 200)
# The guard's knee and width in stars, set on validation (bench/tuning.md, round 7):
# between the 3 stars a list should not show and the 4 that count as liked.
GUARD_AT, GUARD_WIDTH = 3.25, 0.5
MAX_LOW_SHARE = 0.05  # at most this share of a top 10 predicted below 3 stars (issue 13)
# The limit holds for the share's one-sided 95% upper bound on validation: a blend at the
# limit on validation lands on either side of it on new users by chance (bench/tuning.md, round 8).
LOW_SHARE_Z = 1.645


@dataclass(frozen=True)
class Blend:
    """How the second stage orders the first stage's candidates."""

    beta: float = 1.0  # standard deviations of retrieval score per star of predicted rating
    candidates: int = 100  # how many movies the first stage retrieves
    guard: float = 0.0  # weight of the penalty for movies predicted below GUARD_AT stars

    def to_dict(self) -> dict:
        """Plain JSON for a run's info."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Blend":
        """Inverse of `to_dict`; the defaults for a run that has none (a run stored before the
        guard has none: guard 0, its old order). A damaged one (a field that is not a finite
        number, fewer than one candidate) is a UserError."""
        d, default = d or {}, cls()
        try:
            blend = cls(beta=float(d.get("beta", default.beta)),
                        candidates=int(d.get("candidates", default.candidates)),
                        guard=float(d.get("guard", default.guard)))
        except (TypeError, ValueError) as exc:
            raise UserError(f"a stored blend is damaged ({exc})") from None
        if not (np.isfinite(blend.beta) and np.isfinite(blend.guard) and blend.candidates >= 1):
            raise UserError(f"a stored blend is damaged ({blend})")
        return blend

    def key(self) -> str:
        """The blend's key in a run's validation grid, e.g. "1.5@200" or "0.5+guard 0.5@200"."""
        return f"{self.beta:g}" + (f"+guard {self.guard:g}" if self.guard else "") + f"@{self.candidates}"


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


def guard_penalty(predicted: np.ndarray) -> np.ndarray:
    """log sigmoid((predicted - GUARD_AT) / GUARD_WIDTH): <= 0, near 0 well above the knee."""
    return -np.logaddexp(0.0, -(np.asarray(predicted, np.float64) - GUARD_AT) / GUARD_WIDTH)


def blended(retrieval: np.ndarray, predicted: np.ndarray, user_mean: np.ndarray, blend: Blend,
            valid: np.ndarray | None = None) -> np.ndarray:
    """The blend's score of each candidate: standardised retrieval + beta x (prediction - user
    mean) + guard x `guard_penalty(prediction)`."""
    valid = np.ones(retrieval.shape, bool) if valid is None else valid
    return _terms(standardise(retrieval, valid), predicted, user_mean, blend)


def _terms(z: np.ndarray, predicted: np.ndarray, user_mean: np.ndarray, blend: Blend,
           penalty: np.ndarray | None = None) -> np.ndarray:
    """`blended` from the standardised retrieval `z` (and `guard_penalty(predicted)`, if known)."""
    score = z + blend.beta * (predicted - np.asarray(user_mean, np.float64).reshape(-1, 1))
    if blend.guard:
        score = score + blend.guard * (guard_penalty(predicted) if penalty is None else penalty)
    return score


def order(retrieval: np.ndarray, predicted: np.ndarray | None, rank: str, blend: Blend,
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
        key = blended(retrieval, predicted, np.zeros(len(retrieval)), blend, valid)
    key = np.where(valid, key, -np.inf)
    return np.argsort(-key, axis=1, kind="stable")


def rerank(top: np.ndarray, retrieval: np.ndarray, predicted: np.ndarray | None, rank: str,
           blend: Blend) -> tuple[np.ndarray, np.ndarray | None]:
    """The candidate lists `top` (movie rows, -1 padded) reordered, with their predictions."""
    idx = order(retrieval, predicted, rank, blend, top >= 0)
    return (np.take_along_axis(top, idx, 1),
            None if predicted is None else np.take_along_axis(predicted, idx, 1))


def choose(top: np.ndarray, retrieval: np.ndarray, predicted: np.ndarray, relevant: list[np.ndarray],
           liked: list[np.ndarray], k: int = 10) -> tuple[Blend, dict]:
    """The blend with the best recall@k + liked recall@k on these (validation) lists among
    those that show at most MAX_LOW_SHARE of their top k predicted below 3 stars, with
    LOW_SHARE_Z standard errors to spare (all of them, when none does). Returns it and the
    grid: key -> [recall, liked recall, share, the share's upper bound].

    `top` holds each user's max(CANDIDATES) best-retrieved movies, best first, so the
    first N columns are the N-candidate first stage (N >= k).
    Ties go to the smaller beta, guard and N.
    """
    from recsys.metrics import low_share_error, mean_or_nan, recall_per_user

    grid, valid, zeros = {}, top >= 0, np.zeros(len(top))
    for n in CANDIDATES:
        z, penalty = standardise(retrieval[:, :n], valid[:, :n]), guard_penalty(predicted[:, :n])
        for guard in GUARDS:
            for beta in BETAS:
                blend = Blend(beta=beta, candidates=n, guard=guard)
                key = np.where(valid[:, :n], _terms(z, predicted[:, :n], zeros, blend, penalty), -np.inf)
                # Recall and the share need each top k as a set, not its order: a partition will do.
                head = np.argpartition(-key, k - 1, axis=1)[:, :k]
                shown = np.take_along_axis(top, head, 1)
                share, error = low_share_error(np.take_along_axis(predicted, head, 1), shown, k)
                grid[blend] = (mean_or_nan(recall_per_user(shown, relevant, k)),
                               mean_or_nan(recall_per_user(shown, liked, k)), share, share + LOW_SHARE_Z * error)
    best = max(grid, key=lambda b: (grid[b][3] <= MAX_LOW_SHARE, round(float(np.nansum(grid[b][:2])), 6),
                                    -b.beta, -b.guard, -b.candidates))
    return best, {b.key(): [round(v, 5) for v in values] for b, values in grid.items()}
