"""The distinct-candidate retrieval loss equals tfrs.tasks.Retrieval's in-batch softmax."""
import itertools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from recsys.retrieval import DistinctCandidateRetrieval

# A batch of 12 ratings of 5 distinct movies, so every trick has duplicates to act on.
MOVIES = np.array([3, 1, 3, 4, 1, 3, 0, 2, 4, 3, 1, 0], np.int32)
PROBABILITY = np.array([0.1, 0.3, 0.05, 0.4, 0.15], np.float32)


def _tfrs_loss(query, movie_table, temperature, logq, hits, reduction):
    """The reference: every row's own candidate, TFRS's dense [B, B] formulation."""
    task = tfrs.tasks.Retrieval(
        loss=tf.keras.losses.CategoricalCrossentropy(
            from_logits=True, reduction=tf.keras.losses.Reduction.SUM if reduction == "sum"
            else tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE),
        temperature=temperature if temperature != 1.0 else None, remove_accidental_hits=hits)
    kwargs = {}
    if logq:
        kwargs["candidate_sampling_probability"] = tf.gather(PROBABILITY, MOVIES)
    if hits:
        kwargs["candidate_ids"] = tf.constant(MOVIES)
    return task(query, tf.gather(movie_table, MOVIES), compute_metrics=False, **kwargs)


def _distinct_loss(query, movie_table, temperature, logq, hits, reduction):
    distinct, row, counts = tf.unique_with_counts(tf.constant(MOVIES))
    layer = DistinctCandidateRetrieval(temperature, hits, reduction)
    return layer(query, tf.gather(movie_table, distinct), row, counts,
                 tf.gather(PROBABILITY, distinct) if logq else None)


@pytest.mark.parametrize("temperature,logq,hits,reduction",
                         list(itertools.product([1.0, 0.5], [False, True], [False, True], ["sum", "mean"])))
def test_loss_and_gradients_match_tfrs(temperature, logq, hits, reduction):
    rng = np.random.default_rng(0)
    query = tf.Variable(rng.normal(size=(len(MOVIES), 6)).astype(np.float32))
    table = tf.Variable(rng.normal(size=(5, 6)).astype(np.float32))
    grads = []
    for loss_fn in (_tfrs_loss, _distinct_loss):
        with tf.GradientTape() as tape:
            loss = loss_fn(query, table, temperature, logq, hits, reduction)
        grads.append((float(loss), *[tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, [query, table])]))
    (ref, ref_q, ref_t), (got, got_q, got_t) = grads
    assert got == pytest.approx(ref, rel=1e-5)
    np.testing.assert_allclose(got_q, ref_q, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_t, ref_t, rtol=1e-4, atol=1e-6)


def test_options_change_the_loss():
    """Each option matters on this batch, so the comparison above can fail."""
    rng = np.random.default_rng(1)
    query = tf.constant(rng.normal(size=(len(MOVIES), 6)).astype(np.float32))
    table = tf.constant(rng.normal(size=(5, 6)).astype(np.float32))
    base = float(_distinct_loss(query, table, 1.0, False, False, "sum"))
    for args in [(0.5, False, False, "sum"), (1.0, True, False, "sum"), (1.0, False, True, "sum"),
                 (1.0, False, False, "mean")]:
        assert float(_distinct_loss(query, table, *args)) != pytest.approx(base, rel=1e-3)


def test_a_batch_of_distinct_movies_is_plain_softmax():
    rng = np.random.default_rng(2)
    query = rng.normal(size=(4, 3)).astype(np.float32)
    cands = rng.normal(size=(4, 3)).astype(np.float32)
    logits = query @ cands.T
    expected = np.mean(np.log(np.exp(logits).sum(1)) - np.diag(logits))
    got = DistinctCandidateRetrieval(reduction="mean")(query, cands, tf.range(4), tf.ones(4, tf.int32))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction"):
        DistinctCandidateRetrieval(reduction="max")


def test_a_repeated_positive_that_dominates_its_row_keeps_an_exact_loss():
    """Accidental hits come out of the sum by a log1p, never by exp: exact even where the
    logits are far past float32's exp (about 88) and the positive holds almost all of the
    softmax, checked against float64 by hand."""
    movies = np.array([0, 0, 0, 1, 2], np.int32)
    distinct, row, counts = tf.unique_with_counts(tf.constant(movies))
    table = np.array([[4.0, 0.0], [0.0, 1.0], [-1.0, 0.5]], np.float32)
    query = 25 * np.array([[5.0, 0.0], [4.0, 1.0], [6.0, -1.0], [0.0, 2.0], [1.0, 1.0]], np.float32)
    got = DistinctCandidateRetrieval(1.0, True, "sum").per_query(
        tf.constant(query), tf.constant(table), row, counts).numpy()
    logits = query.astype(np.float64) @ table.astype(np.float64).T
    want = []
    for i, m in enumerate(movies):
        weights = np.bincount(movies, minlength=3).astype(np.float64)
        weights[m] = 1.0  # the other rows of the positive's movie are masked out
        want.append(np.log(np.sum(weights * np.exp(logits[i]))) - logits[i, m])
    assert np.isfinite(got).all()
    # float32 keeps about 7 digits of logits up to 600, so the error is absolute
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    assert max(want[:3]) < 1e-6 and want[4] > 100  # the repeated positive dominates; the last row is far off
