"""The multi-task model: query tower, candidate tower, rating head, two TFRS tasks."""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from recsys.features import FeatureSpec
from recsys.layers import MovieFeatures, UserFeatures, mlp
from recsys.presets import Preset


class QueryTower(tf.keras.Model):
    """User features through a dense stack: one embedding per (user, time)."""

    def __init__(self, spec: FeatureSpec, preset: Preset):
        super().__init__()
        self.features = UserFeatures(spec, preset.embedding_dim, preset.embedding_l2)
        # The seed puts dropout after the last query layer too; kept for fidelity.
        self.dense = mlp(preset.tower_layers, preset.tower_dropout, preset.l2, dropout_last=True)

    def call(self, inputs: dict, training: bool = False) -> tf.Tensor:
        """Embed `inputs["user"]` at `inputs["timestamp"]`."""
        return self.dense(self.features(inputs["user"], inputs["timestamp"]), training=training)


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
    """An MLP over both embeddings, plus optional global, user and movie biases."""

    def __init__(self, spec: FeatureSpec, preset: Preset, mean_rating: float):
        super().__init__()
        self.mlp = mlp(preset.rating_layers, preset.rating_dropout, preset.l2)
        self.use_bias = preset.rating_bias
        if self.use_bias:
            zeros = tf.keras.initializers.Zeros()
            self.user_bias = tf.keras.layers.Embedding(spec.n_users, 1, embeddings_initializer=zeros)
            self.movie_bias = tf.keras.layers.Embedding(spec.n_movies, 1, embeddings_initializer=zeros)
            self.mean_rating = mean_rating

    def call(self, query: tf.Tensor, candidate: tf.Tensor, user: tf.Tensor, movie: tf.Tensor,
             training: bool = False) -> tf.Tensor:
        """Predicted rating, shape [batch, 1]."""
        out = self.mlp(tf.concat([query, candidate], axis=1), training=training)
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
        self.query_tower = QueryTower(spec, preset)
        self.candidate_tower = CandidateTower(spec, preset)
        self.rating_head = RatingHead(spec, preset, mean_rating)
        self.rating_weight = float(rating_weight)
        self.retrieval_weight = float(retrieval_weight)
        self.rating_task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.MeanSquaredError(), metrics=[tf.keras.metrics.RootMeanSquaredError()])
        reduction = (tf.keras.losses.Reduction.SUM if preset.retrieval_reduction == "sum"
                     else tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE)
        self.retrieval_task = tfrs.tasks.Retrieval(
            loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=reduction),
            temperature=preset.temperature if preset.temperature != 1.0 else None,
            remove_accidental_hits=preset.remove_accidental_hits,
        )
        # In-batch negatives are sampled in proportion to popularity; logQ correction
        # subtracts log(p) so popular movies are not over-penalised.
        self.sampling_probability = None
        if preset.logq_correction and movie_popularity is not None:
            p = movie_popularity.astype(np.float64) + 1.0
            self.sampling_probability = tf.constant(p / p.sum(), tf.float32)
        self.rating_loss_tracker = tf.keras.metrics.Mean("rating_loss")
        self.retrieval_loss_tracker = tf.keras.metrics.Mean("retrieval_loss")

    def call(self, features: dict, training: bool = False) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Query embeddings, candidate embeddings and predicted ratings for a batch."""
        query = self.query_tower(features, training=training)
        candidate = self.candidate_tower(features["movie"], training=training)
        rating = self.rating_head(query, candidate, features["user"], features["movie"], training=training)
        return query, candidate, rating

    def compute_loss(self, features: dict, training: bool = False) -> tf.Tensor:
        """The weighted sum of the two task losses (plus any L2 penalty)."""
        query, candidate, rating = self(features, training=training)
        total = tf.constant(0.0)
        if self.rating_weight > 0:
            rating_loss = self.rating_task(labels=features["rating"], predictions=rating,
                                           compute_metrics=not training)
            self.rating_loss_tracker.update_state(rating_loss)
            total += self.rating_weight * rating_loss
        if self.retrieval_weight > 0:
            ids = features["movie"]
            kwargs = {}
            if self.preset.remove_accidental_hits:
                kwargs["candidate_ids"] = ids
            if self.sampling_probability is not None:
                kwargs["candidate_sampling_probability"] = tf.gather(self.sampling_probability, ids)
            retrieval_loss = self.retrieval_task(query, candidate, compute_metrics=not training, **kwargs)
            self.retrieval_loss_tracker.update_state(retrieval_loss)
            total += self.retrieval_weight * retrieval_loss
        return total

    def candidate_embeddings(self, n_movies: int) -> np.ndarray:
        """Embeddings of the whole catalogue, computed once for evaluation and search."""
        return self.candidate_tower(tf.range(n_movies, dtype=tf.int32)).numpy()
