"""The multi-task model: query tower, candidate tower, rating head, two TFRS tasks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from recsys import itemitem
from recsys.features import FeatureSpec
from recsys.layers import MovieFeatures, UserFeatures, l2_regularizer, mlp
from recsys.optim import large_tables
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
        # For large tables the factors' L2 is paid per use (`row_l2`), not on the whole table.
        self.row_l2 = (0.0, 0.0)
        if self.factors:
            # Own factors: the towers' embeddings are shaped mostly by retrieval.
            sizes = (spec.n_users + 1, spec.n_movies)
            reg = l2_regularizer(preset.rating_factor_l2)
            if large_tables(spec.n_users + 1 + spec.n_movies):
                reg, self.row_l2 = None, row_l2(preset.rating_factor_l2, sizes)
            self.user_factor, self.movie_factor = (
                tf.keras.layers.Embedding(n, self.factors, embeddings_regularizer=reg,
                                          embeddings_initializer=tf.keras.initializers.RandomNormal(stddev=0.01))
                for n in sizes)

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
            user_factor, movie_factor = self.user_factor(user), self.movie_factor(movie)
            out = out + tf.reduce_sum(user_factor * movie_factor, 1, keepdims=True)
            if training and any(self.row_l2):
                self.add_loss(self.row_l2[0] * tf.reduce_mean(tf.reduce_sum(tf.square(user_factor), 1))
                              + self.row_l2[1] * tf.reduce_mean(tf.reduce_sum(tf.square(movie_factor), 1)))
        if self.use_bias:
            out = out + self.mean_rating + self.user_bias(user) + self.movie_bias(movie)
        return out

    def frozen(self) -> "FrozenRatingHead":
        """The head with its current weights as NumPy arrays (inference: no dropout)."""
        dense = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in self.mlp.layers
                 if isinstance(layer, tf.keras.layers.Dense)]
        bias = (self.user_bias.embeddings.numpy()[:, 0], self.movie_bias.embeddings.numpy()[:, 0]) \
            if self.use_bias else None
        factors = (self.user_factor.embeddings.numpy(), self.movie_factor.embeddings.numpy()) if self.factors else None
        return FrozenRatingHead(dense, bool(self.context_size), float(self.mean_rating), bias, factors)


def row_l2(l2: float, sizes: tuple[int, ...]) -> tuple[float, ...]:
    """Per-use weights that stand for an L2 of `l2` on whole tables of `sizes` rows.

    The penalty l2 x sum of every row's square, whose gradient reaches every row at every
    step (a dense update of the whole table, 30% of a step at ML-25M's size), becomes
    weight x the batch's mean square of the rows it used: Funk's SVD regularisation,
    per rating. With weight = l2 x rows, a row used as often as the average row is
    pulled to 0 as hard as before; a popular row harder, a rare row less.
    """
    return tuple(l2 * n for n in sizes)


@dataclass(frozen=True)
class FrozenRatingHead:
    """`RatingHead.call` in NumPy, for serving. A list scores one user's few hundred
    candidates: in TensorFlow that call's overheads (tensor conversions, the op dispatch)
    cost more than its arithmetic, and in the app's server they grew to tens of ms."""

    dense: list[tuple[np.ndarray, np.ndarray]]  # (kernel, bias) per layer: ReLU between, linear last
    context: bool  # reads the user side's session offset
    mean_rating: float
    bias: tuple[np.ndarray, np.ndarray] | None  # per user row, per movie row
    factors: tuple[np.ndarray, np.ndarray] | None

    def __call__(self, query: np.ndarray, candidate: np.ndarray, user: np.ndarray, movie: np.ndarray,
                 user_side: np.ndarray) -> np.ndarray:
        """Predicted ratings [n] of n (query, candidate, user row, movie row, user side) rows."""
        x = np.concatenate([query, candidate] + ([user_side[:, :1]] if self.context else []), axis=1)
        for i, (kernel, bias) in enumerate(self.dense):
            x = x @ kernel + bias
            if i < len(self.dense) - 1:
                x = np.maximum(x, 0.0)
        out = x[:, 0]
        if self.factors is not None:
            out = out + np.einsum("ij,ij->i", self.factors[0][user], self.factors[1][movie])
        if self.bias is not None:
            out = out + self.mean_rating + self.bias[0][user] + self.bias[1][movie]
        return out


# An embedding's gradient is a tf.IndexedSlices, which tf.distribute sums with three
# collectives of its own (lengths, values, indices), one after another: ten embeddings
# made a step latency-bound. Up to this size it is made dense instead, and every dense
# gradient travels in the one packed all-reduce. The optimizer merges a sparse gradient's
# duplicate rows before it applies it, so Adam's update is the same arithmetic either way.
DENSE_GRADIENT_BYTES = 4 << 20


def _dense_if_small(gradient):
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    shape = tf.TensorShape(tf.get_static_value(gradient.dense_shape))
    if shape.num_elements() is None or shape.num_elements() * gradient.dtype.size > DENSE_GRADIENT_BYTES:
        return gradient
    return tf.convert_to_tensor(gradient)


def _local_result(metric: tf.keras.metrics.Metric) -> tf.Tensor:
    """A mean metric's value from this replica's own variables (`result()` would sum
    them over the replicas, a collective per metric per step)."""
    value = tf.math.divide_no_nan(metric.total, metric.count)
    return tf.sqrt(value) if isinstance(metric, tf.keras.metrics.RootMeanSquaredError) else value


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
        # Fitted in closed form after the towers train (recsys/train.py), not by gradients.
        self.item_item = (itemitem.ItemItem(spec.n_movies, preset.item_item_l2)
                          if itemitem.applies(spec.n_movies, preset.item_item_l2) else None)
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
        # Under tf.distribute, what train_step returns is already the same on every
        # replica (see _replica_train_step): fit takes it as is instead of summing it.
        # One process returns plain tensors, which no reduction touches.
        self.distribute_reduction_method = "first"

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

    def train_step(self, inputs: dict) -> dict:
        """tfrs.Model's step in one process; under tf.distribute with several replicas, `_replica_train_step`."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas == 1:
            return super().train_step(inputs)
        return self._replica_train_step(inputs, replicas)

    def _replica_losses(self, features: dict) -> tuple[tf.Tensor, tf.Tensor]:
        """This replica's shares of the global batch's rating and retrieval losses.

        Each replica holds a contiguous part of the global batch (recsys/train.py,
        `training_batches`), so gathering the parts' movies in replica order gives the global
        batch's movies in the one-process order. The retrieval softmax of every query
        then runs over the global batch's distinct movies with their global counts, as
        in one process (each replica embeds those movies with its own copy of the
        candidate tower; their gradients are summed by the optimizer). A share is the sum
        of the replica's per-rating losses over the global batch size (mean reduction),
        or the plain sum (sum reduction): the shares of all replicas add up to the
        one-process loss of the global batch, so the summed gradients are its gradients.
        """
        ctx = tf.distribute.get_replica_context()
        movie = features["movie"]
        # The global batch's movies, in replica order. (An input tensor has no device of its
        # own, which all_gather needs: tf.identity makes one on the replica's device.)
        everyone = ctx.all_gather(tf.identity(movie), axis=0)
        n, replica, replicas = tf.shape(everyone)[0], ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync
        start, end = n * replica // replicas, n * (replica + 1) // replicas  # the rows `training_batches` gave this replica
        tf.debugging.assert_equal(tf.shape(movie)[0], end - start, "a replica's rows are not its share of the batch")
        global_size = tf.cast(n, tf.float32)
        distinct, rows, counts = tf.unique_with_counts(everyone)
        row = rows[start:end]
        query = self.query_tower(features, training=True)
        candidates = self.candidate_tower(distinct, training=True)
        side = self.rating_head.user_side(features["session_rating"])
        rating_share = retrieval_share = tf.constant(0.0)
        if self.rating_weight > 0:
            rating = self.rating_head(query, tf.gather(candidates, row), features["user"], movie, side, training=True)
            error = tf.reshape(rating, [-1]) - tf.cast(features["rating"], rating.dtype)
            rating_share = tf.reduce_sum(tf.square(error)) / global_size  # the task's mean squared error
        if self.retrieval_weight > 0:
            probability = (None if self.sampling_probability is None
                           else tf.gather(self.sampling_probability, distinct))
            per_query = self.retrieval_task.per_query(query, candidates, row, counts, probability)
            retrieval_share = tf.reduce_sum(per_query)
            if self.retrieval_task.reduction == "mean":
                retrieval_share /= global_size
        return rating_share, retrieval_share

    def _replica_train_step(self, inputs: dict, replicas: int) -> dict:
        """One step of one replica: its shares of the global batch's loss, gradients summed.

        The optimizer sums the replicas' gradients (an all-reduce), so each replica's
        loss must be its share of the one-process loss (`_replica_losses`), and each adds
        1/replicas of the L2 penalties: a whole-table one is the same on every replica, and
        a per-use one (`row_l2`) is a mean over the replica's equal part of the batch.
        What it returns is the same on every replica, and needs no further collective:
        the task losses are all-reduced before every replica adds them to its own epoch
        means, so each replica's means are those of one process.
        """
        ctx = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            rating_share, retrieval_share = self._replica_losses(inputs)
            loss = tf.constant(0.0)
            if self.rating_weight > 0:
                loss += self.rating_weight * rating_share
            if self.retrieval_weight > 0:
                loss += self.retrieval_weight * retrieval_share
            regularization_loss = sum(self.losses)
            total_share = loss + regularization_loss / replicas
        gradients = [_dense_if_small(g) for g in tape.gradient(total_share, self.trainable_variables)]
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))

        rating_loss, retrieval_loss, loss = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                                           [rating_share, retrieval_share, loss])
        if self.rating_weight > 0:
            self.rating_loss_tracker.update_state(rating_loss)
        if self.retrieval_weight > 0:
            self.retrieval_loss_tracker.update_state(retrieval_loss)
        metrics = {metric.name: _local_result(metric) for metric in self.metrics}
        metrics["loss"] = loss
        metrics["regularization_loss"] = regularization_loss
        metrics["total_loss"] = loss + regularization_loss
        return metrics

    def candidate_embeddings(self, n_movies: int) -> np.ndarray:
        """Embeddings of the whole catalogue, computed once for evaluation and search."""
        return self.candidate_tower(tf.range(n_movies, dtype=tf.int32)).numpy()
