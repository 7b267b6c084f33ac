"""In-batch softmax retrieval over the batch's distinct movies.

A batch holds far fewer distinct movies than ratings, since popular movies repeat:
about 550 in a batch of 1,024 and 1,200 in a batch of 8,192 (medians over random
training batches). Columns of the in-batch logits that belong to the same movie are
equal, so the softmax over all B columns equals a softmax over the U distinct movies
with each column weighted by its count. That gives `tfrs.tasks.Retrieval`'s loss from a [B, U] matrix instead of [B, B],
with sparse labels instead of a dense identity matrix, and the candidate tower runs on
U rows instead of B.

The one difference from running the tower on every row: in training, duplicates of a
movie share one dropout mask per batch.
"""
from __future__ import annotations

import tensorflow as tf


class DistinctCandidateRetrieval(tf.keras.layers.Layer):
    """The loss of `tfrs.tasks.Retrieval`, computed over distinct candidates.

    Supports the options of TFRS's task that the presets use: temperature,
    sampling-probability (logQ) correction, accidental-hit removal and a sum or mean
    over the batch.
    """

    def __init__(self, temperature: float = 1.0, remove_accidental_hits: bool = False,
                 reduction: str = "sum", **kwargs):
        super().__init__(**kwargs)
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', not {reduction!r}")
        self.temperature = float(temperature)
        self.remove_accidental_hits = remove_accidental_hits
        self.reduction = reduction

    def call(self, query: tf.Tensor, candidates: tf.Tensor, positive: tf.Tensor, counts: tf.Tensor,
             sampling_probability: tf.Tensor | None = None) -> tf.Tensor:
        """Cross-entropy of each query's movie against the batch, summed or averaged.

        query: [B, d]; candidates: [U, d], one row per distinct movie of the batch;
        positive: [B] int, the row of `candidates` that query i rated;
        counts: [U], how often each distinct movie occurs in the batch;
        sampling_probability: [U], optional, each distinct movie's sampling probability.
        """
        loss = self.per_query(query, candidates, positive, counts, sampling_probability)
        return tf.reduce_sum(loss) if self.reduction == "sum" else tf.reduce_mean(loss)

    def per_query(self, query: tf.Tensor, candidates: tf.Tensor, positive: tf.Tensor, counts: tf.Tensor,
                  sampling_probability: tf.Tensor | None = None) -> tf.Tensor:
        """[B]: each query's cross-entropy, before the reduction (arguments as in `call`).

        The queries may be a part of the batch whose distinct movies `candidates` and
        `counts` describe: a tf.distribute replica's rows of the global batch.
        """
        logits = tf.linalg.matmul(query, candidates, transpose_b=True)
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if sampling_probability is not None:
            # The same clipping as tfrs.layers.loss.SamplingProbablityCorrection.
            logits = logits - tf.math.log(tf.clip_by_value(sampling_probability, 1e-6, 1.0))[None, :]
        log_counts = tf.math.log(tf.cast(counts, logits.dtype))[None, :]
        if self.remove_accidental_hits:
            # Other rows of the same movie are masked out: the positive column counts once.
            log_counts = log_counts * (1.0 - tf.one_hot(positive, tf.shape(candidates)[0], dtype=logits.dtype))
        positive_logit = tf.gather(logits, positive, batch_dims=1)
        return tf.reduce_logsumexp(logits + log_counts, axis=1) - positive_logit
