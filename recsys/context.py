"""A session feature: the movies a user rated in training just before a query.

MovieLens users rate in sessions, many movies within minutes, so what a user rated
around time t says more about what they rate at t than their whole history does
(a bag of all their training movies did not help; see bench/tuning.md).

Only the training part is ever looked up, and a training row never sees itself, so
a query's own movie can only appear in its context if the user rated it twice, which
MovieLens does not allow. Only ratings at or before the query's time count, so the
feature is the same one a deployed recommender would have: no rating from the future.
"""
from __future__ import annotations

import numpy as np

CONTEXT_SIZE = 20  # columns kept; a preset uses the first `context_size` (latest first)
CONTEXT_KEYS = ("context", "context_rating")  # input names of lookup()'s two arrays
PADDING = 0  # context ids are movie rows + 1, so 0 can mean "no rating"


class TimeNeighbours:
    """Latest-before-a-time lookups into one part's (user, movie, timestamp) arrays."""

    def __init__(self, history: dict[str, np.ndarray], n_users: int):
        self.order = np.lexsort((history["timestamp"], history["user"]))
        self.user = history["user"][self.order]
        self.timestamp = history["timestamp"][self.order].astype(np.float64)
        self.movie = history["movie"][self.order]
        self.rating = history["rating"][self.order]
        self.start = np.searchsorted(self.user, np.arange(n_users), side="left")
        self._key = self._keys(self.user, self.timestamp)

    @staticmethod
    def _keys(user: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
        # Exact in float64: user rows < 10^4 and timestamps < 10^10 seconds.
        return user.astype(np.float64) * 1e10 + timestamp

    def lookup(self, user: np.ndarray, timestamp: np.ndarray, k: int = CONTEXT_SIZE,
               exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each query's k latest history ratings at or before its time, latest first:
        [n, k] int32 movie rows + 1 (0 where there are fewer than k) and [n, k] float32
        ratings (0 there).

        `exclude` holds, per query, a history row index that must not be returned
        (a training row's own index), or -1.
        """
        user = np.asarray(user, np.int64)
        timestamp = np.asarray(timestamp, np.float64)
        # Rows [start, after) of the user's sorted history are at or before the query time.
        after = np.searchsorted(self._key, self._keys(user, timestamp), side="right")
        # One spare row in case the query's own row (`exclude`) is among the latest.
        window = after[:, None] - np.arange(1, k + 2)[None, :]
        valid = window >= self.start[user][:, None]
        window = np.clip(window, 0, max(len(self.user) - 1, 0))
        if exclude is not None:
            valid &= self.order[window] != np.asarray(exclude)[:, None]
        # Stable sort moves invalid slots last and keeps the rest latest first.
        keep = np.argsort(~valid, axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(window, keep, 1)
        found = np.take_along_axis(valid, keep, 1)
        movies = np.where(found, self.movie[picked] + 1, PADDING).astype(np.int32)
        return movies, np.where(found, self.rating[picked], 0.0).astype(np.float32)
