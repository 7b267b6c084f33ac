"""What a user rated before a query: the history and session features of the query tower.

A `Timeline` holds one part's ratings sorted by (user, time, movie), so a user's
ratings at or before a time are one contiguous run of rows. A query is then three
numbers (`Pointers`): where its user's rows start, where the rows at or before its
time end, and which row to skip (a training row's own). The movies themselves are
gathered per batch (`session`, `bag`), so no [rows, history] array is ever stored:
memory stays linear in the number of ratings whatever the history length.

The session is the latest `context_size` of those ratings, with their stars; the history
is all of them, as a multi-hot row over the catalogue. MovieLens users rate in bursts (three ratings in four share their second with another
rating of the same user), so "at or before the query time" keeps the rest of a burst,
and only the query's own row is left out. Nothing after the query time is ever seen.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

PADDING = 0  # gathered ids are movie rows + 1, so 0 means "no rating here"
POINTER_KEYS = ("history_start", "history_end", "history_skip")


@dataclass(frozen=True)
class Pointers:
    """Per query: its user's first timeline row, the end of its history, the row to skip (-1: none)."""

    start: np.ndarray
    end: np.ndarray
    skip: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        """The pointers under the input names of the training and evaluation pipelines."""
        return dict(zip(POINTER_KEYS, (self.start, self.end, self.skip)))


@dataclass(frozen=True)
class Timeline:
    """One part's ratings in (user, time, movie) order; user u owns rows bounds[u]:bounds[u + 1]."""

    movie: np.ndarray  # int32 movie rows
    rating: np.ndarray  # float32 stars
    timestamp: np.ndarray  # float64 seconds
    bounds: np.ndarray  # int64 [n_users + 1]
    position: np.ndarray  # int64: where each row of the part landed in the timeline

    @classmethod
    def of(cls, part: dict[str, np.ndarray], n_users: int) -> "Timeline":
        """Sort a part's (user, movie, rating, timestamp) arrays into a timeline."""
        order = np.lexsort((part["movie"], part["timestamp"], part["user"]))
        position = np.empty(len(order), np.int64)
        position[order] = np.arange(len(order))
        user = part["user"][order]
        return cls(movie=part["movie"][order].astype(np.int32), rating=part["rating"][order].astype(np.float32),
                   timestamp=part["timestamp"][order].astype(np.float64),
                   bounds=np.searchsorted(user, np.arange(n_users + 1)).astype(np.int64), position=position)

    @property
    def n_users(self) -> int:
        """Users the timeline has room for (some may have no rows)."""
        return len(self.bounds) - 1

    def pointers(self, user: np.ndarray, timestamp: np.ndarray | None = None,
                 own_rows: np.ndarray | None = None) -> Pointers:
        """Each query's history: its user's rows at or before `timestamp` (all rows if None).

        `own_rows` are the queries' own row numbers in the part this timeline was made
        from, when the queries are that part's rows: each is left out of its own history.
        """
        user = np.asarray(user, np.int64)
        start, stop = self.bounds[user], self.bounds[user + 1]
        if timestamp is None:
            end = stop
        else:
            # The timeline is sorted by (user, time), so one global search finds every cut.
            key = _keys(np.repeat(np.arange(self.n_users), np.diff(self.bounds)), self.timestamp)
            end = np.searchsorted(key, _keys(user, np.asarray(timestamp, np.float64)), side="right")
        skip = np.full(len(user), -1, np.int64) if own_rows is None else self.position[np.asarray(own_rows)]
        return Pointers(start, end.astype(np.int64), skip)


def _keys(user: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
    # Exact in float64 while user rows < 9 * 10^5 and timestamps < 10^10 seconds (year 2286).
    return user.astype(np.float64) * 1e10 + timestamp


def _span(start: tf.Tensor, end: tf.Tensor, skip: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """Each query's history as (end, skip, whether skip is inside it, its number of rows)."""
    start, end, skip = (tf.cast(x, tf.int64) for x in (start, end, skip))
    inside = (skip >= start) & (skip < end)
    return end, skip, inside, tf.maximum(end - start - tf.cast(inside, tf.int64), 0)


def _back(span: tuple[tf.Tensor, ...], offsets) -> tf.Tensor | tf.RaggedTensor:
    """Timeline rows `offsets` back from each query's latest (offset 0 = latest)."""
    end, skip, inside, _ = span
    latest = tf.expand_dims(end - 1, 1) - offsets
    # Rows at or before the skipped one move one further back.
    return latest - tf.cast((latest <= tf.expand_dims(skip, 1)) & tf.expand_dims(inside, 1), tf.int64)


@tf.function(reduce_retracing=True)
def session(movie: tf.Tensor, rating: tf.Tensor, start: tf.Tensor, end: tf.Tensor, skip: tf.Tensor,
            size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The latest `size` ratings of each query's history, latest first, as dense [n, size].

    `movie` and `rating` are a timeline's columns. Returns movie rows + 1 (0 where a
    query has fewer ratings) and their stars (0 there). Dense from the start: a ragged
    gather and its padding cost 2.6 times as much per training batch.
    """
    span = _span(start, end, skip)
    offsets = tf.range(tf.cast(size, tf.int64))[None, :]
    there = offsets < tf.expand_dims(span[3], 1)
    rows = tf.where(there, _back(span, offsets), 0)
    ids = tf.where(there, tf.gather(tf.cast(movie, tf.int32), rows) + 1, PADDING)
    return ids, tf.where(there, tf.gather(tf.cast(rating, tf.float32), rows), 0.0)


@tf.function(reduce_retracing=True)
def bag(movie: tf.Tensor, rating: tf.Tensor, start: tf.Tensor, end: tf.Tensor, skip: tf.Tensor,
        n_movies: tf.Tensor) -> tf.Tensor:
    """Each query's whole history as one [n, n_movies] row: the stars of every movie rated.

    Dense, because the towers multiply it with embedding tables: one matrix product is
    far cheaper to train than gathering hundreds of embedding rows per query.
    """
    span = _span(start, end, skip)
    rows = _back(span, tf.ragged.range(span[3]))  # every row of each history
    ids = tf.gather(tf.cast(movie, tf.int32), rows)
    n = tf.cast(n_movies, tf.int32)
    return tf.math.bincount(ids, weights=tf.gather(tf.cast(rating, tf.float32), rows), minlength=n, maxlength=n,
                            axis=-1)


def query_features(movie: tf.Tensor, rating: tf.Tensor, pointers: dict, session_size: int,
                   n_movies: int = 0) -> dict[str, tf.Tensor]:
    """The history inputs of a batch of queries: `session` and `session_rating` (the latest
    `session_size`), and with `n_movies`, the whole `history` as stars per movie."""
    n = tf.shape(pointers["history_start"])[0]
    out = {"session": tf.zeros([n, 0], tf.int32), "session_rating": tf.zeros([n, 0], tf.float32)}
    ends = [pointers[k] for k in POINTER_KEYS]
    if session_size:
        out["session"], out["session_rating"] = session(movie, rating, *ends, session_size)
    if n_movies:
        out["history"] = bag(movie, rating, *ends, n_movies)
    return out


def per_user_items(part: dict[str, np.ndarray], n_users: int) -> list[np.ndarray]:
    """The movies each user rated in `part`, as one sorted array per user row."""
    order = np.argsort(part["user"], kind="stable")
    users, movies = part["user"][order], part["movie"][order]
    bounds = np.searchsorted(users, np.arange(n_users + 1))
    return [np.unique(movies[bounds[u]: bounds[u + 1]]) for u in range(n_users)]


def first_items(part: dict[str, np.ndarray], n_users: int) -> np.ndarray:
    """Each user's earliest movie in `part` (ties: the lowest movie row); -1 for users with none."""
    order = np.lexsort((part["movie"], part["timestamp"], part["user"]))
    users = part["user"][order]
    first = np.full(n_users, -1, np.int64)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.array([], int)
    first[users[starts]] = part["movie"][order][starts]
    return first
