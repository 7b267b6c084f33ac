"""The seed's 80/20 split, made independent of the source, plus a validation part."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data import MovieLens


@dataclass(frozen=True)
class Split:
    """Row positions of `MovieLens.ratings` for each part; train excludes validation."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def frames(self, ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The three parts as data frames."""
        return ratings.iloc[self.train], ratings.iloc[self.val], ratings.iloc[self.test]


def split(ml: MovieLens, seed: int = 42, train_fraction: float = 0.8, val_fraction: float = 0.1) -> Split:
    """Shuffle the canonical order with `seed`; 80% train (its last 10% is validation), 20% test.

    The ratings are already in canonical (user, movie, timestamp) order, so the
    permutation picks the same ratings whatever the source was.
    """
    n = len(ml.ratings)
    order = np.random.RandomState(seed).permutation(n)
    n_train = int(round(n * train_fraction))
    n_val = int(round(n_train * val_fraction))
    fit = order[: n_train - n_val]
    return Split(train=np.sort(fit), val=np.sort(order[n_train - n_val: n_train]), test=np.sort(order[n_train:]))
