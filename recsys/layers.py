"""Keras layers that turn integer ids into feature vectors, and the dense stack.

The seed fed scalars straight into Normalization and CategoryEncoding, which fails on
TF 2.15; here every scalar is given a trailing unit axis first, so both layers see the
`[batch, 1]` shape they are defined for.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from recsys.features import FeatureSpec


def l2_regularizer(weight: float):
    """An L2 penalty of `weight`, or None for 0."""
    return tf.keras.regularizers.l2(weight) if weight else None


def _column(x: tf.Tensor) -> tf.Tensor:
    return tf.reshape(x, [-1, 1])


def _scalar_features(boundaries: np.ndarray, mean: float, var: float, dim: int, name: str) -> tuple:
    bucket = tf.keras.layers.Discretization(bin_boundaries=[float(b) for b in boundaries], name=f"{name}_bucket")
    embed = tf.keras.layers.Embedding(len(boundaries) + 1, dim, name=f"{name}_embedding")
    norm = tf.keras.layers.Normalization(axis=-1, mean=[mean], variance=[var], name=f"{name}_norm")
    return bucket, embed, norm


def _masked_mean(embedding: tf.keras.layers.Embedding, ids: tf.Tensor) -> tf.Tensor:
    """Mean of the embeddings of the non-zero ids in each row (zeros for an all-zero row)."""
    mask = tf.cast(ids > 0, tf.float32)[..., None]
    return tf.reduce_sum(embedding(ids) * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)


class UserFeatures(tf.keras.layers.Layer):
    """Query features: user id, timestamp bucket and value, age bucket and value, gender;
    optionally the mean embedding of the session (the `context_size` latest ratings at the
    query time) and of the whole history before it (`history_dim`-sized embeddings).

    Row `n_users` of the id embedding is the unknown user: a new user, or, in training,
    a known one whose id is hidden with probability `id_dropout`, so the tower learns to
    work from the ratings alone. Its age and gender are the training mean and "unknown".
    """

    def __init__(self, spec: FeatureSpec, dim: int, l2: float = 0.0, context_size: int = 0,
                 history_dim: int = 0, id_dropout: float = 0.0, session_dropout: float = 0.0,
                 time_features: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.n_users = spec.n_users
        self.context_size, self.history_dim, self.id_dropout = context_size, history_dim, id_dropout
        self.session_dropout, self.time_features = session_dropout, time_features
        if context_size:
            self.context_embedding = tf.keras.layers.Embedding(spec.n_movies + 1, dim, name="context_embedding")
        if history_dim:
            self.history_embedding = self.add_weight(
                name="history_embedding", shape=(spec.n_movies, history_dim),
                initializer=tf.keras.initializers.RandomUniform(-0.05, 0.05))
        self.user_embedding = tf.keras.layers.Embedding(
            spec.n_users + 1, dim, embeddings_regularizer=l2_regularizer(l2), name="user_embedding")
        self.ts_bucket, self.ts_embedding, self.ts_norm = _scalar_features(
            spec.timestamp_boundaries, spec.timestamp_mean, spec.timestamp_var, dim, "timestamp")
        # The dataset's own user features only: ML-20M and ML-25M have no ages or genders.
        self.has_age, self.has_gender = spec.user_age is not None, spec.user_gender is not None
        if self.has_age:
            self.age_bucket, self.age_embedding, self.age_norm = _scalar_features(
                spec.age_boundaries, spec.age_mean, spec.age_var, max(dim // 2, 1), "age")
            self.user_age = tf.constant(np.append(spec.user_age, spec.age_mean), tf.float32)
        if self.has_gender:
            self.gender_one_hot = tf.keras.layers.CategoryEncoding(num_tokens=3, output_mode="one_hot")
            self.user_gender = tf.constant(np.append(spec.user_gender, 2), tf.int32)  # 2: unknown

    def call(self, user: tf.Tensor, timestamp: tf.Tensor, session: tf.Tensor | None = None,
             history: tf.Tensor | None = None, age: tf.Tensor | None = None, gender: tf.Tensor | None = None,
             training: bool = False) -> tf.Tensor:
        """Concatenate the user's features; `timestamp` is seconds since the epoch.

        `session` is [batch, any] movie rows + 1, latest first, 0-padded; `history` is
        [batch, movies], the stars of every movie rated before the query, 0 for the
        others (recsys/history.py).
        `age` and `gender` (0 female, 1 male, 2 unknown) replace the user's own, for a
        new user who gives them.
        """
        ts = _column(tf.cast(timestamp, tf.float32))
        profile = []
        if self.has_age:
            age = _column(tf.gather(self.user_age, user) if age is None else tf.cast(age, tf.float32))
            profile += [tf.squeeze(self.age_embedding(self.age_bucket(age)), 1), self.age_norm(age)]
        if self.has_gender:
            gender = _column(tf.gather(self.user_gender, user) if gender is None else tf.cast(gender, tf.int32))
            profile.append(self.gender_one_hot(gender))
        if training and self.id_dropout:
            hidden = tf.random.uniform(tf.shape(user)) < self.id_dropout
            user = tf.where(hidden, tf.cast(self.n_users, user.dtype), user)
        extra = []
        if self.context_size:
            session = session[:, :self.context_size]
            if training and self.session_dropout:
                # Hidden sessions teach the tower to answer from the long-term history alone.
                hidden = tf.random.uniform([tf.shape(session)[0], 1]) < self.session_dropout
                session = tf.where(hidden, tf.zeros_like(session), session)
            extra.append(_masked_mean(self.context_embedding, session))
        if self.history_dim:
            rated = tf.cast(history > 0, tf.float32)
            count = tf.maximum(tf.reduce_sum(rated, 1, keepdims=True), 1.0)
            extra.append(tf.matmul(rated / count, self.history_embedding))
        time = [tf.squeeze(self.ts_embedding(self.ts_bucket(ts)), 1), self.ts_norm(ts)] if self.time_features else []
        return tf.concat(extra + [self.user_embedding(user)] + time + profile, axis=1)


class MovieFeatures(tf.keras.layers.Layer):
    """Candidate features: a movie id embedding plus its mean-pooled title words."""

    def __init__(self, spec: FeatureSpec, dim: int, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.movie_embedding = tf.keras.layers.Embedding(
            spec.n_movies, dim, embeddings_regularizer=l2_regularizer(l2), name="movie_embedding")
        self.word_embedding = tf.keras.layers.Embedding(len(spec.title_words), dim, name="word_embedding")
        self.title_tokens = tf.constant(spec.title_tokens, tf.int32)

    def call(self, movie: tf.Tensor) -> tf.Tensor:
        """Concatenate the movie embedding and the mean of its title word embeddings."""
        words = _masked_mean(self.word_embedding, tf.gather(self.title_tokens, movie))
        return tf.concat([self.movie_embedding(movie), words], axis=1)


def mlp(sizes: Sequence[int], dropout: float = 0.0, l2: float = 0.0, dropout_last: bool = False,
        name: str | None = None) -> tf.keras.Sequential:
    """ReLU layers with dropout between them and a linear last layer."""
    reg = l2_regularizer(l2)
    layers: list[tf.keras.layers.Layer] = []
    for i, size in enumerate(sizes):
        last = i == len(sizes) - 1
        layers.append(tf.keras.layers.Dense(size, activation=None if last else "relu", kernel_regularizer=reg))
        if dropout and (not last or dropout_last):
            layers.append(tf.keras.layers.Dropout(dropout))
    return tf.keras.Sequential(layers, name=name)
