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
    """Query features: user id, timestamp bucket and value, age bucket and value, gender,
    and optionally the mean embedding of the `context_size` movies rated last before the query time."""

    def __init__(self, spec: FeatureSpec, dim: int, l2: float = 0.0, context_size: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.context_size = context_size
        if context_size:
            self.context_embedding = tf.keras.layers.Embedding(spec.n_movies + 1, dim, name="context_embedding")
        self.user_embedding = tf.keras.layers.Embedding(
            spec.n_users, dim, embeddings_regularizer=l2_regularizer(l2), name="user_embedding")
        self.ts_bucket, self.ts_embedding, self.ts_norm = _scalar_features(
            spec.timestamp_boundaries, spec.timestamp_mean, spec.timestamp_var, dim, "timestamp")
        self.age_bucket, self.age_embedding, self.age_norm = _scalar_features(
            spec.age_boundaries, spec.age_mean, spec.age_var, max(dim // 2, 1), "age")
        self.gender_one_hot = tf.keras.layers.CategoryEncoding(num_tokens=2, output_mode="one_hot")
        self.user_age = tf.constant(spec.user_age, tf.float32)
        self.user_gender = tf.constant(spec.user_gender, tf.int32)

    def call(self, user: tf.Tensor, timestamp: tf.Tensor, context: tf.Tensor | None = None) -> tf.Tensor:
        """Concatenate the user's features; `timestamp` is seconds since the epoch.

        `context` is [batch, >= context_size] movie rows + 1, latest first, 0-padded.
        """
        ts = _column(tf.cast(timestamp, tf.float32))
        age = _column(tf.gather(self.user_age, user))
        gender = _column(tf.gather(self.user_gender, user))
        extra = [_masked_mean(self.context_embedding, context[:, :self.context_size])] if self.context_size else []
        return tf.concat(extra + [
            self.user_embedding(user),
            tf.squeeze(self.ts_embedding(self.ts_bucket(ts)), 1),
            self.ts_norm(ts),
            tf.squeeze(self.age_embedding(self.age_bucket(age)), 1),
            self.age_norm(age),
            self.gender_one_hot(gender),
        ], axis=1)


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
