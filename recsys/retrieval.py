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
        # Every step of the [B, U] matrix's path is a pass over B x U numbers, forward and
        # backward, and they are what a large batch pays for: the temperature scales the
        # queries, the logQ correction and the counts are one [U] bias, and the positive's
        # logit is its own dot product, so the matrix sees one add and the logsumexp.
        if self.temperature != 1.0:
            query = query / self.temperature
        logits = tf.linalg.matmul(query, candidates, transpose_b=True)
        bias = tf.math.log(tf.cast(counts, logits.dtype))
        positive_logit = tf.reduce_sum(query * tf.gather(candidates, positive), axis=1)
        if sampling_probability is not None:
            # The same clipping as tfrs.layers.loss.SamplingProbablityCorrection.
            log_q = tf.math.log(tf.clip_by_value(sampling_probability, 1e-6, 1.0))
            bias -= log_q
            positive_logit -= tf.gather(log_q, positive)
        total = tf.reduce_logsumexp(logits + bias[None, :], axis=1)  # log sum_j count_j e^logit_j
        if self.remove_accidental_hits:
            # Other rows of the positive's movie are masked out, so its column counts once:
            # take (count - 1) e^positive out of the sum. That is below (count - 1) / count
            # of it, so the log1p's argument stays above -1.
            extra = tf.cast(tf.gather(counts, positive), logits.dtype) - 1.0
            total += tf.math.log1p(-extra * tf.exp(positive_logit - total))
        return total - positive_logit
