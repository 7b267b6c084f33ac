"""The evaluation protocols: which ratings train, which validate, which test.

  random    the seed's: shuffle the canonical order with the split seed; 80% train
            (its last 10% is validation), 20% test.
  temporal  per user, by time (ties by movie id): the latest 20% of each user's
            ratings are test, the 10% of the rest just before them validation.

Either way validation is taken from the training data, early stopping and every
choice made after training (the ranking blend) use it, and test is only reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data import MovieLens
from recsys.errors import UserError

PROTOCOLS = ("random", "temporal")
DEFAULT_SEED = 42  # the seed notebook's split
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1  # of what remains for training


@dataclass(frozen=True)
class Split:
    """Row positions of `MovieLens.ratings` for each part; train excludes validation."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def frames(self, ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The three parts as data frames."""
        return ratings.iloc[self.train], ratings.iloc[self.val], ratings.iloc[self.test]


def check_protocol(protocol: str) -> str:
    """The protocol's name, or a UserError listing the valid ones."""
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown split {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    return protocol


def split(ml: MovieLens, seed: int = DEFAULT_SEED, protocol: str = "random") -> Split:
    """The three parts of `ml.ratings` under `protocol` (the seed matters for "random" only)."""
    if check_protocol(protocol) == "temporal":
        return temporal_split(ml.ratings)
    return random_split(len(ml.ratings), seed)


def random_split(n: int, seed: int = DEFAULT_SEED) -> Split:
    """Shuffle the canonical order with `seed`; 80% train (its last 10% is validation), 20% test.

    The ratings are already in canonical (user, movie, timestamp) order, so the
    permutation picks the same ratings whatever the source was.
    """
    order = np.random.RandomState(seed).permutation(n)
    n_train = int(round(n * (1 - TEST_FRACTION)))
    n_val = int(round(n_train * VAL_FRACTION))
    fit = order[: n_train - n_val]
    return Split(train=np.sort(fit), val=np.sort(order[n_train - n_val: n_train]), test=np.sort(order[n_train:]))


def temporal_split(ratings: pd.DataFrame) -> Split:
    """Per user: the latest 20% test, the 10% of the rest just before them validation.

    `ratings` is in canonical order (user, then movie id), so a stable sort by time
    breaks ties by movie id.
    """
    user = ratings.user_id.to_numpy()
    # Canonical order groups each user's rows; number the groups 0, 1, ... in order.
    group = np.concatenate([[0], np.cumsum(user[1:] != user[:-1])])
    order = np.lexsort((ratings.timestamp.to_numpy(), group))  # stable: ties keep movie order
    sizes = np.bincount(group)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(len(order)) - np.repeat(first, sizes)  # 0 = the user's earliest rating
    n_test = np.round(sizes * TEST_FRACTION).astype(int)
    n_val = np.round((sizes - n_test) * VAL_FRACTION).astype(int)
    from_end = np.repeat(sizes, sizes) - rank  # 1 = the user's latest rating
    test = from_end <= np.repeat(n_test, sizes)
    val = ~test & (from_end <= np.repeat(n_test + n_val, sizes))
    return Split(train=np.sort(order[~test & ~val]), val=np.sort(order[val]), test=np.sort(order[test]))
