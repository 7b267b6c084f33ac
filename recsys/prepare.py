"""Data, split, features and encoded arrays, prepared once per process."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from recsys import data, features
from recsys.history import Pointers, Timeline, per_user_items
from recsys.split import DEFAULT_SEED, Split, split


@dataclass(frozen=True)
class Prepared:
    """Everything training, evaluation and search need from the data.

    Each part is a dict of arrays (user and movie rows, rating, timestamp) plus the
    pointers of each rating's history into the training timeline: every feature a
    query sees comes from the training part, at or before the query's time.
    """

    ml: data.MovieLens
    split: Split
    spec: features.FeatureSpec
    train: dict[str, np.ndarray]
    val: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    timeline: Timeline  # the training part in time order: where histories come from
    protocol: str = "random"
    split_seed: int = DEFAULT_SEED

    @property
    def fingerprint(self) -> str:
        """The data fingerprint that enters every run id (with the split seed)."""
        return self.ml.fingerprint()

    @functools.cached_property
    def train_all(self) -> dict[str, np.ndarray]:
        """Train plus validation: everything a user is known to have rated before test."""
        keys = ("user", "movie", "rating", "timestamp")
        return {k: np.concatenate([self.train[k], self.val[k]]) for k in keys}

    @functools.cached_property
    def seen(self) -> list[np.ndarray]:
        """Per user row, the movies rated in train or validation: never recommended in test."""
        return per_user_items(self.train_all, self.spec.n_users)

    @functools.cached_property
    def seen_train(self) -> list[np.ndarray]:
        """Per user row, the movies rated in train: never recommended in validation."""
        return per_user_items(self.train, self.spec.n_users)

    @functools.cached_property
    def last_timestamp(self) -> np.ndarray:
        """Per user row, the latest rating time before test (the time of user-level queries)."""
        return latest_times(self.train_all, self.spec.n_users, self.spec.timestamp_boundaries[-1])

    def user_queries(self, users: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """One query per user at `last_timestamp`, whose history is all of their training part."""
        users = np.arange(self.spec.n_users) if users is None else np.asarray(users)
        pointers = self.timeline.pointers(users)
        return {"user": users.astype(np.int32), "timestamp": self.last_timestamp[users], **pointers.as_dict()}


def latest_times(part: dict[str, np.ndarray], n_users: int, fallback: float) -> np.ndarray:
    """Per user row, the time of their latest rating in `part`; `fallback` for users with none."""
    latest = np.full(n_users, -np.inf)
    np.maximum.at(latest, part["user"], part["timestamp"])
    return np.where(np.isfinite(latest), latest, fallback)


def prepare_from(ml: data.MovieLens, split_seed: int = DEFAULT_SEED, protocol: str = "random") -> Prepared:
    """Split `ml`, fit features on the training part and encode all three parts."""
    sp = split(ml, seed=split_seed, protocol=protocol)
    train, val, test = sp.frames(ml.ratings)
    spec = features.build_spec(ml, train)
    parts = [features.encode(spec, frame) for frame in (train, val, test)]
    timeline = Timeline.of(parts[0], spec.n_users)
    for i, part in enumerate(parts):
        # A training rating's history never includes the rating itself.
        own = np.arange(len(part["user"])) if i == 0 else None
        pointers: Pointers = timeline.pointers(part["user"], part["timestamp"], own_rows=own)
        part.update(pointers.as_dict())
    return Prepared(ml, sp, spec, *parts, timeline=timeline, protocol=protocol, split_seed=split_seed)


@functools.lru_cache(maxsize=4)
def prepare(data_path: str | None = None, split_seed: int = DEFAULT_SEED, protocol: str = "random",
            dataset: str | None = None) -> Prepared:
    """Load the data (first available source of `dataset`) and prepare it; cached per process."""
    return prepare_from(data.load(data_path, dataset=dataset), split_seed, protocol)
