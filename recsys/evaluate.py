"""Score a trained model: all movies in one matrix product over cached embeddings."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from recsys import metrics
from recsys.baseline import per_user_items
from recsys.model import MultiTaskModel
from recsys.prepare import Prepared


@tf.function(reduce_retracing=True)
def _query(model: MultiTaskModel, user: tf.Tensor, timestamp: tf.Tensor, context: tf.Tensor) -> tf.Tensor:
    return model.query_tower({"user": user, "timestamp": timestamp, "context": context})


def query_embeddings(model: MultiTaskModel, prep: Prepared, user: np.ndarray, timestamp: np.ndarray,
                     context: np.ndarray | None = None) -> np.ndarray:
    """Query-tower output for (user row, time) pairs.

    `context` is the pairs' precomputed context feature; by default it is looked up
    in `prep`'s training part.
    """
    if context is None:
        context = prep.context(user, timestamp)["context"]
    return _query(model, tf.constant(user, tf.int32), tf.constant(timestamp, tf.float32),
                  tf.constant(context, tf.int32)).numpy()


def predict_ratings(model: MultiTaskModel, query: np.ndarray, candidates: np.ndarray, user: np.ndarray,
                    movie: np.ndarray, context_rating: np.ndarray) -> np.ndarray:
    """Rating-head predictions for (user, movie) pairs, given their embeddings and context ratings."""
    out = model.rating_head(tf.constant(query), tf.constant(candidates[movie]), tf.constant(user, tf.int32),
                            tf.constant(movie, tf.int32), tf.constant(context_rating, tf.float32))
    return out.numpy().ravel()


def embed(model: MultiTaskModel, prep: Prepared, part: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Query embeddings of `part`'s pairs and the whole catalogue's candidate embeddings."""
    query = query_embeddings(model, prep, part["user"], part["timestamp"], part.get("context"))
    return query, model.candidate_embeddings(prep.spec.n_movies)


def evaluate(model: MultiTaskModel, prep: Prepared, part: dict[str, np.ndarray], recall: bool = True,
             embedded: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """RMSE, top-k accuracy (FactorizedTopK's definition) and filtered recall on `part`.

    `embedded` is `embed(model, prep, part)` when the caller already has it.
    """
    query, candidates = embedded or embed(model, prep, part)
    out = {"rmse": metrics.rmse(predict_ratings(model, query, candidates, part["user"], part["movie"],
                                                part["context_rating"]),
                                part["rating"])}
    ranks = metrics.pair_ranks(query, candidates, part["movie"])
    out.update(metrics.top_k_accuracy(ranks))
    if recall:
        users = np.arange(prep.spec.n_users)
        scores = query_embeddings(model, prep, users, prep.last_timestamp) @ candidates.T
        out.update(metrics.filtered_recall(scores, prep.seen, per_user_items(part, prep.spec.n_users)))
    return out


def full_softmax_loss(query: np.ndarray, candidates: np.ndarray, positives: np.ndarray, temperature: float) -> float:
    """Mean cross-entropy of each true movie against the whole catalogue (no sampling).

    In TensorFlow, not NumPy: it runs every epoch, and the [8,000, 1,682] exponentials are
    several times faster multi-threaded in float32.
    """
    logits = tf.linalg.matmul(query, candidates, transpose_b=True) / temperature
    positive = tf.gather(logits, tf.constant(positives, tf.int32), batch_dims=1)
    return float(tf.reduce_mean(tf.reduce_logsumexp(logits, axis=1) - positive))
