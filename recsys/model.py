"""The multi-task model: query tower, candidate tower, rating head, two TFRS tasks."""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from recsys.features import FeatureSpec
from recsys.layers import MovieFeatures, UserFeatures, l2_regularizer, mlp
from recsys.presets import Preset
from recsys.retrieval import DistinctCandidateRetrieval


class QueryTower(tf.keras.Model):
    """User features through a dense stack: one embedding per (user, time)."""

    def __init__(self, spec: FeatureSpec, preset: Preset):
        super().__init__()
        self.features = UserFeatures(spec, preset.embedding_dim, preset.embedding_l2, preset.context_size,
                                     preset.history_dim, preset.id_dropout, preset.session_dropout,
                                     preset.time_features)
        # The seed puts dropout after the last query layer too; kept for fidelity.
        self.dense = mlp(preset.tower_layers, preset.tower_dropout, preset.l2, dropout_last=True)

    def call(self, inputs: dict, training: bool = False) -> tf.Tensor:
        """Embed `inputs["user"]` at `inputs["timestamp"]`, with its session and history if used."""
        features = self.features(inputs["user"], inputs["timestamp"], inputs.get("session"), inputs.get("history"),
                                 inputs.get("age"), inputs.get("gender"), training=training)
        return self.dense(features, training=training)


class CandidateTower(tf.keras.Model):
    """Movie features through a dense stack: one embedding per movie."""

    def __init__(self, spec: FeatureSpec, preset: Preset):
        super().__init__()
        self.features = MovieFeatures(spec, preset.embedding_dim, preset.embedding_l2)
        self.dense = mlp(preset.tower_layers, preset.tower_dropout, preset.l2)

    def call(self, movie: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Embed movie row numbers."""
        return self.dense(self.features(movie), training=training)


class RatingHead(tf.keras.Model):
    """An MLP over both embeddings, plus optional learned biases and matrix-factorisation
    term, and the offset of the user's session ratings from the mean.

    What the head reads of a user's ratings is summed up once per query (`user_side`),
    so scoring many movies for one query never copies the ratings per movie.
    """

    def __init__(self, spec: FeatureSpec, preset: Preset, mean_rating: float):
        super().__init__()
        self.mlp = mlp(preset.rating_layers, preset.rating_dropout, preset.l2)
        self.mean_rating = mean_rating
        self.context_size = preset.context_size if preset.context_rating else 0
        self.use_bias = preset.rating_bias
        if self.use_bias:
            zeros = tf.keras.initializers.Zeros()
            # Row n_users: the unknown user (recsys/layers.py), who has no bias of their own.
            self.user_bias = tf.keras.layers.Embedding(spec.n_users + 1, 1, embeddings_initializer=zeros)
            self.movie_bias = tf.keras.layers.Embedding(spec.n_movies, 1, embeddings_initializer=zeros)
        self.factors = preset.rating_factors
        if self.factors:
            # Own factors: the towers' embeddings are shaped mostly by retrieval.
            reg = l2_regularizer(preset.rating_factor_l2)
            self.user_factor, self.movie_factor = (
                tf.keras.layers.Embedding(n, self.factors, embeddings_regularizer=reg,
                                          embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.01))
                for n in (spec.n_users + 1, spec.n_movies))

    def user_side(self, session_rating: tf.Tensor) -> tf.Tensor:
        """[n, 1 or 0]: what the head reads of each query's ratings, the session's mean
        offset from the global mean (`session_rating` is [n, any], latest first, 0: none)."""
        if not self.context_size:
            return tf.zeros([tf.shape(session_rating)[0], 0])
        ratings = session_rating[:, :self.context_size]
        given = tf.cast(ratings > 0, tf.float32)
        offset = tf.reduce_sum((ratings - self.mean_rating) * given, 1, keepdims=True)
        return offset / tf.maximum(tf.reduce_sum(given, 1, keepdims=True), 1.0)

    def call(self, query: tf.Tensor, candidate: tf.Tensor, user: tf.Tensor, movie: tf.Tensor,
             user_side: tf.Tensor | None = None, training: bool = False) -> tf.Tensor:
        """Predicted rating, shape [batch, 1]; `user_side` is `self.user_side(...)` per row."""
        inputs = [query, candidate]
        if self.context_size:
            inputs.append(user_side[:, :1])
        out = self.mlp(tf.concat(inputs, axis=1), training=training)
        if self.factors:
            out = out + tf.reduce_sum(self.user_factor(user) * self.movie_factor(movie), 1, keepdims=True)
        if self.use_bias:
            out = out + self.mean_rating + self.user_bias(user) + self.movie_bias(movie)
        return out


class MultiTaskModel(tfrs.Model):
    """Rating (MSE) and retrieval (in-batch softmax) tasks over shared towers.

    The total loss is rating_weight * rating loss + retrieval_weight * retrieval loss.
    A task whose weight is 0 is not computed at all, so it contributes no gradient.
    """

    def __init__(self, spec: FeatureSpec, preset: Preset, rating_weight: float, retrieval_weight: float,
                 mean_rating: float = 3.5, movie_popularity: np.ndarray | None = None):
        super().__init__()
        self.preset = preset
        self.n_movies = spec.n_movies
        self.query_tower = QueryTower(spec, preset)
        self.candidate_tower = CandidateTower(spec, preset)
        self.rating_head = RatingHead(spec, preset, mean_rating)
        self.rating_weight = float(rating_weight)
        self.retrieval_weight = float(retrieval_weight)
        self.rating_task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.MeanSquaredError(), metrics=[tf.keras.metrics.RootMeanSquaredError()])
        self.retrieval_task = DistinctCandidateRetrieval(
            temperature=preset.temperature, remove_accidental_hits=preset.remove_accidental_hits,
            reduction=preset.retrieval_reduction)
        # In-batch negatives are sampled in proportion to popularity; logQ correction
        # subtracts log(p) so popular movies are not over-penalised.
        self.sampling_probability = None
        if preset.logq_correction and movie_popularity is not None:
            p = movie_popularity.astype(np.float64) + 1.0
            self.sampling_probability = tf.constant(p / p.sum(), tf.float32)
        self.rating_loss_tracker = tf.keras.metrics.Mean("rating_loss")
        self.retrieval_loss_tracker = tf.keras.metrics.Mean("retrieval_loss")

    def _forward(self, features: dict, training: bool) -> tuple:
        """Both towers and the rating head; the candidate tower runs once per distinct movie."""
        query = self.query_tower(features, training=training)
        distinct, row, counts = tf.unique_with_counts(features["movie"])
        candidates = self.candidate_tower(distinct, training=training)
        side = self.rating_head.user_side(features["session_rating"])
        rating = self.rating_head(query, tf.gather(candidates, row), features["user"], features["movie"], side,
                                  training=training)
        return query, candidates, distinct, row, counts, rating

    def call(self, features: dict, training: bool = False) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Query embeddings, candidate embeddings and predicted ratings for a batch."""
        query, candidates, _, row, _, rating = self._forward(features, training)
        return query, tf.gather(candidates, row), rating

    def compute_loss(self, features: dict, training: bool = False) -> tf.Tensor:
        """The weighted sum of the two task losses (plus any L2 penalty)."""
        query, candidates, distinct, row, counts, rating = self._forward(features, training)
        total = tf.constant(0.0)
        if self.rating_weight > 0:
            rating_loss = self.rating_task(labels=features["rating"], predictions=rating,
                                           compute_metrics=not training)
            self.rating_loss_tracker.update_state(rating_loss)
            total += self.rating_weight * rating_loss
        if self.retrieval_weight > 0:
            probability = (None if self.sampling_probability is None
                           else tf.gather(self.sampling_probability, distinct))
            retrieval_loss = self.retrieval_task(query, candidates, row, counts, probability)
            self.retrieval_loss_tracker.update_state(retrieval_loss)
            total += self.retrieval_weight * retrieval_loss
        return total

    def candidate_embeddings(self, n_movies: int) -> np.ndarray:
        """Embeddings of the whole catalogue, computed once for evaluation and search."""
        return self.candidate_tower(tf.range(n_movies, dtype=tf.int32)).numpy()
