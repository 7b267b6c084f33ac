"""The model's item-item part: the movies a user rated vote for the movies that go with them.

The towers answer "what will this user rate next, at time t?". A user's list is also
asked "what goes with everything they rated?", and a linear item-item model answers that
best among the classic ones (EASE, Steck 2019): B = I - P / diag(P) with
P = (X'X + l2 I)^-1 and a zero diagonal, X the training part as a 0/1 users x movies
matrix. A user's item-item score of movie j is the sum of B[i, j] over the movies i they
rated, divided by `scale` (the scores' standard deviation over the training users), so
its weight in a list is in units a person can compare across runs and datasets.

It is fitted in closed form once the towers have trained, on the same training ratings,
and stored with the model's weights (a non-trainable variable, so every saved run
carries it). How much it weighs in a user's list is chosen on validation with the rest
of the user's taste (recsys/taste.py). The closed form inverts a movies x movies
matrix, so catalogues above `MAX_MOVIES` go without it.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

# The preset's L2 was chosen on ML-100K's training part (bench/tuning.md, round 5):
# 72,000 ratings of 1,682 movies. EASE's L2 is weighed against X'X, whose diagonal holds
# each movie's number of ratings, so it is scaled with the ratings per movie: on the
# synthetic 1M copy (288 a movie) 300 becomes 2,018, where the EASE baseline's own
# validation choice is 2,000 (round 9). ML-100K's random split keeps 300 exactly.
REFERENCE_PER_MOVIE = 72_000 / 1_682
MAX_MOVIES = 8000  # an 8,000 x 8,000 inverse takes seconds; ML-20M's 27,000 movies would take hours
USER_CHUNK = 4096  # users whose 0/1 rows are held dense at once
FEW_USERS = 8


def interactions(part: dict[str, np.ndarray], n_users: int, n_movies: int) -> np.ndarray:
    """A part as a dense users x movies 0/1 matrix."""
    x = np.zeros((n_users, n_movies), np.float64)
    x[part["user"], part["movie"]] = 1.0
    return x


def ease_weights(x: np.ndarray, l2: float) -> np.ndarray:
    """EASE's item-item matrix B for the 0/1 matrix `x`."""
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += l2
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return b


def user_scores(weights: np.ndarray, scale: float, rated: list[np.ndarray]) -> np.ndarray:
    """[len(rated), movies]: each user's summed item-item rows over their rated movies, / scale."""
    if len(rated) <= FEW_USERS:  # a served list: summing a user's rows beats a matrix product
        return np.stack([weights[np.asarray(m, int)].sum(0) for m in rated]) / np.float32(scale)
    out = np.zeros((len(rated), weights.shape[1]), np.float32)
    for start in range(0, len(rated), USER_CHUNK):
        part = rated[start: start + USER_CHUNK]
        x = np.zeros((len(part), weights.shape[0]), np.float32)
        for i, movies in enumerate(part):
            x[i, np.asarray(movies, int)] = 1.0
        out[start: start + len(part)] = x @ weights
    return out / np.float32(scale)


def scaled_l2(l2: float, ratings: int, n_movies: int) -> float:
    """The L2 a training part of `ratings` ratings of `n_movies` movies takes for the preset's `l2`."""
    return l2 * (ratings / n_movies) / REFERENCE_PER_MOVIE


class ItemItem(tf.keras.layers.Layer):
    """EASE's item-item weights as a non-trainable part of the model (see the module doc)."""

    def __init__(self, n_movies: int, l2: float, **kwargs):
        super().__init__(**kwargs)
        self.l2 = float(l2)
        self.b = self.add_weight(name="b", shape=(n_movies, n_movies), initializer="zeros", trainable=False)
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones", trainable=False)
        self.fitted_l2: float | None = None  # set by `fit`; a reloaded part carries B, not its L2

    def fit(self, train: dict[str, np.ndarray], n_users: int) -> None:
        """Fit B in closed form on the training part (L2 `scaled_l2` to its density), and the
        scores' scale."""
        x = interactions(train, n_users, self.b.shape[0])
        self.fitted_l2 = scaled_l2(self.l2, len(train["user"]), self.b.shape[0])
        b = ease_weights(x, self.fitted_l2).astype(np.float32)
        self.b.assign(b)
        self.scale.assign(max(float((x.astype(np.float32) @ b).std()), 1e-12))

    def scores(self, rated: list[np.ndarray]) -> np.ndarray:
        """[len(rated), movies] item-item scores of users who rated `rated` (movie rows each)."""
        return user_scores(self.b.numpy(), float(self.scale.numpy()), rated)

    def call(self, rated: tf.Tensor) -> tf.Tensor:
        """Scores of a batch of 0/1 rated rows [batch, movies]: the same as `scores`, in TensorFlow."""
        return tf.matmul(rated, self.b) / self.scale


def applies(n_movies: int, l2: float) -> bool:
    """Whether a model over `n_movies` carries the item-item part (l2 0 switches it off)."""
    return bool(l2) and n_movies <= MAX_MOVIES
