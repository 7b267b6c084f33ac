"""A faithful port of the seed notebook's model and training loop, for timing only.

Changed only where TF 2.15 requires it:
  * `layers.experimental.preprocessing.X` -> `layers.X`;
  * Normalization of a scalar feature: `axis=None` (the default axis=-1 fails on
    rank-1 inputs);
  * CategoryEncoding: `max_tokens` -> `num_tokens`, and a `[batch, 1]` integer input;
  * optional `compute_metrics=not training` so the "metrics off" loop can be timed.
Everything else — string lookups at every step, the towers, the deep rating head,
Ranger, batch 8192, FactorizedTopK over the streamed catalogue — is as written.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_addons as tfa
import tensorflow_recommenders as tfrs

L = tf.keras.layers


def notebook_inputs(ratings: pd.DataFrame, movies: pd.DataFrame, users: pd.DataFrame) -> dict:
    """The notebook's features (strings as tfds gives them) for a set of ratings."""
    r = ratings.merge(movies[["movie_id", "movie_title"]], on="movie_id").merge(users, on="user_id")
    return {"movie_title": r.movie_title.str.encode("utf-8").to_numpy(),
            "user_id": r.user_id.str.encode("utf-8").to_numpy(), "user_rating": r.user_rating.to_numpy(np.float32),
            "timestamp": r.timestamp.to_numpy(np.int64), "user_age": r.raw_user_age.to_numpy(np.float32),
            "gender": r.user_gender.to_numpy(np.float32)}


class UserModel(tf.keras.Model):
    def __init__(self, unique_user_ids, timestamps, timestamp_buckets, unique_user_age, age_buckets):
        super().__init__()
        dim = 32
        self.user_embedding = tf.keras.Sequential([
            L.StringLookup(vocabulary=unique_user_ids, mask_token=None),
            L.Embedding(len(unique_user_ids) + 1, dim)])
        self.timestamp_embedding = tf.keras.Sequential([
            L.Discretization(timestamp_buckets.tolist()), L.Embedding(len(timestamp_buckets) + 1, dim)])
        self.normalized_timestamp = L.Normalization(axis=None)
        self.normalized_timestamp.adapt(timestamps)
        self.age_embedding = tf.keras.Sequential([
            L.Discretization(age_buckets.tolist()), L.Embedding(len(age_buckets) + 1, dim // 2)])
        self.normalized_age = L.Normalization(axis=None)
        self.normalized_age.adapt(unique_user_age)
        self.gender_embedding = L.CategoryEncoding(num_tokens=3)

    def call(self, inputs):
        return tf.concat([
            self.user_embedding(inputs["user_id"]),
            self.timestamp_embedding(inputs["timestamp"]),
            tf.reshape(self.normalized_timestamp(inputs["timestamp"]), [-1, 1]),
            self.age_embedding(inputs["user_age"]),
            tf.reshape(self.normalized_age(inputs["user_age"]), [-1, 1]),
            self.gender_embedding(tf.reshape(tf.cast(inputs["gender"], tf.int32), [-1, 1])),
        ], axis=1)


def dense_stack(sizes, dropout_between: bool) -> tf.keras.Sequential:
    model = tf.keras.Sequential()
    for size in sizes[:-1]:
        model.add(L.Dense(size, activation="relu"))
        if dropout_between:
            model.add(L.Dropout(0.2))
    model.add(L.Dense(sizes[-1]))
    if not dropout_between:
        model.add(L.Dropout(0.2))
    return model


class QueryModel(tf.keras.Model):
    def __init__(self, layer_sizes, **features):
        super().__init__()
        self.embedding_model = UserModel(**features)
        self.dense_layers = dense_stack(layer_sizes, dropout_between=False)

    def call(self, inputs):
        return self.dense_layers(self.embedding_model(inputs))


class MovieModel(tf.keras.Model):
    def __init__(self, unique_movie_titles):
        super().__init__()
        max_tokens, dim = 10_000, 32
        self.title_embedding = tf.keras.Sequential([
            L.StringLookup(vocabulary=unique_movie_titles, mask_token=None),
            L.Embedding(len(unique_movie_titles) + 1, dim)])
        self.title_vectorizer = L.TextVectorization(max_tokens=max_tokens)
        self.title_text_embedding = tf.keras.Sequential([
            self.title_vectorizer, L.Embedding(max_tokens, dim, mask_zero=True), L.GlobalAveragePooling1D()])
        self.title_vectorizer.adapt(unique_movie_titles)

    def call(self, titles):
        return tf.concat([self.title_embedding(titles), self.title_text_embedding(titles)], axis=1)


class CandidateModel(tf.keras.Model):
    def __init__(self, layer_sizes, unique_movie_titles):
        super().__init__()
        self.embedding_model = MovieModel(unique_movie_titles)
        self.dense_layers = dense_stack(layer_sizes, dropout_between=True)

    def call(self, inputs):
        return self.dense_layers(self.embedding_model(inputs))


class MovielensModel(tfrs.models.Model):
    def __init__(self, rating_weight, retrieval_weight, metrics_in_training, unique_movie_titles, **features):
        super().__init__()
        layer_sizes = [64, 32, 32, 32, 32]
        self.movie_model = CandidateModel(layer_sizes, unique_movie_titles)
        self.user_model = QueryModel(layer_sizes, **features)
        rating = []
        for size in (256, 128, 64, 64, 32):
            rating += [L.Dense(size, activation="relu"), L.Dropout(0.2)]
        self.rating_model = tf.keras.Sequential(rating + [L.Dense(32, activation="relu"), L.Dense(1)])
        self.rating_task = tfrs.tasks.Ranking(loss=tf.keras.losses.MeanSquaredError(),
                                              metrics=[tf.keras.metrics.RootMeanSquaredError()])
        titles = tf.data.Dataset.from_tensor_slices(unique_movie_titles)
        self.retrieval_task = tfrs.tasks.Retrieval(
            metrics=tfrs.metrics.FactorizedTopK(candidates=titles.batch(128).map(self.movie_model)))
        self.rating_weight, self.retrieval_weight = rating_weight, retrieval_weight
        self.metrics_in_training = metrics_in_training

    def call(self, features):
        user = self.user_model({k: features[k] for k in ("user_id", "timestamp", "user_age", "gender")})
        movie = self.movie_model(features["movie_title"])
        return user, movie, self.rating_model(tf.concat([user, movie], axis=1))

    def compute_loss(self, features, training=False):
        user, movie, rating = self(features)
        compute = self.metrics_in_training or not training
        rating_loss = self.rating_task(labels=features["user_rating"], predictions=rating, compute_metrics=compute)
        retrieval_loss = self.retrieval_task(user, movie, compute_metrics=compute)
        return self.rating_weight * rating_loss + self.retrieval_weight * retrieval_loss


def build(train: dict, all_inputs: dict, metrics_in_training: bool = False) -> MovielensModel:
    """The notebook's joint model (1, 1) compiled with its Ranger optimiser."""
    timestamps = all_inputs["timestamp"]
    ages = np.unique(all_inputs["user_age"])
    model = MovielensModel(
        1.0, 1.0, metrics_in_training, unique_movie_titles=np.unique(all_inputs["movie_title"]),
        unique_user_ids=np.unique(all_inputs["user_id"]), timestamps=timestamps,
        timestamp_buckets=np.linspace(timestamps.min(), timestamps.max(), num=1000),
        unique_user_age=ages, age_buckets=np.linspace(ages.min(), ages.max(), num=11))
    radam = tfa.optimizers.RectifiedAdam(learning_rate=0.1, total_steps=150, warmup_proportion=0.4, min_lr=0.01)
    model.compile(optimizer=tfa.optimizers.Lookahead(radam, sync_period=6, slow_step_size=0.5))
    return model


class EpochTimes(tf.keras.callbacks.Callback):
    """Wall time of every epoch."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t)


def epoch_seconds(train: dict, all_inputs: dict, epochs: int = 3, metrics_in_training: bool = False) -> list[float]:
    """Seconds per epoch of the notebook's loop (batch 8192, cached, prefetched)."""
    tf.keras.utils.set_random_seed(42)
    model = build(train, all_inputs, metrics_in_training)
    ds = (tf.data.Dataset.from_tensor_slices(train).shuffle(100_000).batch(8192).cache()
          .prefetch(tf.data.AUTOTUNE))
    cb = EpochTimes()
    model.fit(ds, epochs=epochs, verbose=0, callbacks=[cb])
    return cb.times
