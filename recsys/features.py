"""Feature vocabularies and statistics, computed once from the training part.

Strings become integer ids here, once, so no training step ever looks up a string.
Per-user (age, gender) and per-movie (title words) features live in small tables
that the towers gather from by id.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys import datasets
from recsys.data import MovieLens

TIMESTAMP_BUCKETS = 1000  # boundaries, as the seed's np.linspace(min, max, num=1000)
AGE_BUCKETS = 11
MAX_TITLE_WORDS = 12


@dataclass(frozen=True)
class FeatureSpec:
    """Everything the feature layers need: vocabularies, boundaries, statistics, tables."""

    user_ids: tuple[str, ...]
    movie_ids: tuple[str, ...]
    timestamp_boundaries: np.ndarray
    timestamp_mean: float
    timestamp_var: float
    age_boundaries: np.ndarray | None  # None: the dataset has no ages (ML-20M, ML-25M)
    age_mean: float
    age_var: float
    user_age: np.ndarray | None  # float32 [users]: the age, or an age range's lower bound (ML-1M)
    user_gender: np.ndarray | None  # int32 [users], 1 = male as tfds encodes it; None: no genders
    title_words: tuple[str, ...]  # TextVectorization vocabulary: 0 padding, 1 unknown
    title_tokens: np.ndarray  # int32 [movies, MAX_TITLE_WORDS]

    @property
    def n_users(self) -> int:
        """Number of users in the vocabulary."""
        return len(self.user_ids)

    @property
    def n_movies(self) -> int:
        """Number of movies in the catalogue."""
        return len(self.movie_ids)


def fold_accents(text: str) -> str:
    """"Misérables" -> "Miserables", so accented and plain spellings share a word."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def vectorize_titles(titles: list[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Title words through Keras TextVectorization, run once here, not at every step."""
    import tensorflow as tf

    folded = [fold_accents(t) for t in titles]
    layer = tf.keras.layers.TextVectorization(output_sequence_length=MAX_TITLE_WORDS)
    layer.adapt(tf.constant(folded))
    tokens = layer(tf.constant(folded)).numpy().astype(np.int32)
    return tuple(layer.get_vocabulary()), tokens


AGE_COLUMNS = (datasets.RAW_AGE, datasets.AGE_BUCKET)  # whichever the dataset has


def build_spec(ml: MovieLens, train: pd.DataFrame) -> FeatureSpec:
    """Fit vocabularies and statistics; numeric statistics use the training part only.

    Only the user features the dataset has are built: ML-1M's ages are range lower
    bounds, and ML-20M/25M have neither ages nor genders.
    """
    ts = train.timestamp.to_numpy(np.float64)
    users = ml.users
    age_column = next((c for c in AGE_COLUMNS if c in users.columns), None)
    user_age = age_boundaries = None
    age_mean, age_var = 0.0, 1.0
    if age_column is not None:
        user_age = users[age_column].to_numpy(np.float32)
        train_ages = user_age[_codes(train.user_id, users.user_id)].astype(np.float64)
        age_boundaries = np.linspace(user_age.min(), user_age.max(), AGE_BUCKETS)
        age_mean, age_var = float(train_ages.mean()), float(train_ages.var())
    gender = users[datasets.GENDER].to_numpy(np.int32) if datasets.GENDER in users.columns else None
    vocab, tokens = vectorize_titles(list(ml.movies.movie_title))
    return FeatureSpec(
        user_ids=tuple(users.user_id),
        movie_ids=tuple(ml.movies.movie_id),
        timestamp_boundaries=np.linspace(ts.min(), ts.max(), TIMESTAMP_BUCKETS),
        timestamp_mean=float(ts.mean()),
        timestamp_var=float(ts.var()),
        age_boundaries=age_boundaries,
        age_mean=age_mean,
        age_var=age_var,
        user_age=user_age,
        user_gender=gender,
        title_words=vocab,
        title_tokens=tokens,
    )


def _codes(values: pd.Series, index) -> np.ndarray:
    """Row numbers of `values` in `index`: the categorical codes when they already are (no lookup)."""
    index = pd.Index(index)
    if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.categories.equals(index):
        return values.cat.codes.to_numpy().astype(np.int64)
    return index.get_indexer(values)


def encode(spec: FeatureSpec, ratings: pd.DataFrame) -> dict[str, np.ndarray]:
    """Ratings as model inputs: user and movie ids become row numbers, once."""
    user = _codes(ratings.user_id, spec.user_ids)
    movie = _codes(ratings.movie_id, spec.movie_ids)
    if (user < 0).any() or (movie < 0).any():
        raise ValueError("ratings refer to users or movies outside the vocabulary")
    return {
        "user": user.astype(np.int32),
        "movie": movie.astype(np.int32),
        "timestamp": ratings.timestamp.to_numpy(np.float64),
        "rating": ratings.user_rating.to_numpy(np.float32),
    }
