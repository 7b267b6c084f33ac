"""Data, split, features and encoded arrays, prepared once per process."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from recsys import data, features
from recsys.baseline import per_user_items
from recsys.context import CONTEXT_KEYS, TimeNeighbours
from recsys.split import Split, split


@dataclass(frozen=True)
class Prepared:
    """Everything training, evaluation and search need from the data."""

    ml: data.MovieLens
    split: Split
    spec: features.FeatureSpec
    train: dict[str, np.ndarray]
    val: dict[str, np.ndarray]
    test: dict[str, np.ndarray]

    @property
    def fingerprint(self) -> str:
        """The data fingerprint that enters every run id (with the split seed)."""
        return self.ml.fingerprint()

    @functools.cached_property
    def train_all(self) -> dict[str, np.ndarray]:
        """Train plus validation: everything a user is known to have rated before test."""
        return {k: np.concatenate([self.train[k], self.val[k]]) for k in self.train}

    @functools.cached_property
    def seen(self) -> list[np.ndarray]:
        """Per user row, the movies rated in train or validation."""
        return per_user_items(self.train_all, self.spec.n_users)

    @functools.cached_property
    def neighbours(self) -> TimeNeighbours:
        """Latest-before-a-time lookups into the training part (the query tower's context)."""
        return TimeNeighbours(self.train, self.spec.n_users)

    def context(self, user: np.ndarray, timestamp: np.ndarray) -> dict[str, np.ndarray]:
        """The context features for new (user row, time) queries, e.g. recommendations."""
        return dict(zip(CONTEXT_KEYS, self.neighbours.lookup(user, timestamp)))

    @functools.cached_property
    def last_timestamp(self) -> np.ndarray:
        """Per user row, the latest training rating time (the query time for recall)."""
        return latest_times(self.train_all, self.spec.n_users, self.spec.timestamp_boundaries[-1])


def latest_times(part: dict[str, np.ndarray], n_users: int, fallback: float) -> np.ndarray:
    """Per user row, the time of their latest rating in `part`; `fallback` for users with none."""
    latest = np.full(n_users, -np.inf)
    np.maximum.at(latest, part["user"], part["timestamp"])
    return np.where(np.isfinite(latest), latest, fallback)


def prepare_from(ml: data.MovieLens, split_seed: int = 42) -> Prepared:
    """Split `ml`, fit features on the training part and encode all three parts."""
    sp = split(ml, seed=split_seed)
    train, val, test = sp.frames(ml.ratings)
    spec = features.build_spec(ml, train)
    parts = [features.encode(spec, frame) for frame in (train, val, test)]
    prep = Prepared(ml, sp, spec, *parts)
    for i, part in enumerate(parts):
        # A training row's context never includes the row itself.
        exclude = np.arange(len(part["user"])) if i == 0 else None
        part.update(zip(CONTEXT_KEYS, prep.neighbours.lookup(part["user"], part["timestamp"], exclude=exclude)))
    return prep


@functools.lru_cache(maxsize=4)
def prepare(data_path: str | None = None, split_seed: int = 42) -> Prepared:
    """Load the data (first available source) and prepare it; cached per process."""
    return prepare_from(data.load(data_path), split_seed)
