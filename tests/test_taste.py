"""A user's one query: the moments it averages, their weights, and the popularity prior."""
import math

import numpy as np
import pytest

from recsys import taste
from recsys.history import Timeline


def _timeline():
    # user 0: two ratings at t = 100, one at t = 200; user 1: one at t = 50.
    part = {"user": np.array([0, 0, 0, 1], np.int32), "movie": np.array([3, 1, 2, 0], np.int32),
            "timestamp": np.array([100.0, 100.0, 200.0, 50.0]), "rating": np.ones(4, np.float32)}
    return Timeline.of(part, n_users=2)


def test_moments_are_distinct_user_times_with_their_counts_and_no_later_history():
    m = taste.Moments.of(_timeline())
    assert m.user.tolist() == [0, 0, 1] and m.time.tolist() == [100.0, 200.0, 50.0]
    assert m.count.tolist() == [2, 1, 1]
    # The moment at t = 100 holds both ratings of that second, not the one at 200.
    q = m.queries
    assert (q["history_end"] - q["history_start"]).tolist() == [2, 3, 1]
    assert (q["history_skip"] == -1).all()


def test_weights_count_ratings_and_decay_with_age():
    m = taste.Moments.of(_timeline())
    now = np.array([200.0, 50.0])
    np.testing.assert_allclose(taste.weights(m, now, math.inf), [2, 1, 1])
    np.testing.assert_allclose(taste.weights(m, now, 100.0), [2 * math.exp(-1), 1, 1])


def test_mean_queries_by_hand():
    m = taste.Moments.of(_timeline())
    embedded = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    got = taste.mean_queries(embedded, m, np.array([200.0, 50.0]), math.inf, n_users=3)
    np.testing.assert_allclose(got, [[2 / 3, 1 / 3], [5, 5], [0, 0]], rtol=1e-6)


def test_prior_adds_log_counts_through_one_extra_coordinate():
    candidates = np.array([[1.0, 0.0], [0.0, 1.0]])
    counts = np.array([9, 0])
    vectors = taste.user_vectors(candidates, counts, temperature=0.5)
    t = taste.Taste(taste.NOW, prior=2.0)
    q = np.array([[0.3, 0.4]])
    expected = q @ candidates.T + 2.0 * 0.5 * np.log1p(counts)[None, :]
    np.testing.assert_allclose(taste.scores(q, candidates, vectors[:, -1], t), expected, rtol=1e-6)
    np.testing.assert_allclose(vectors @ np.append(q[0], t.prior), expected[0], rtol=1e-6)


@pytest.mark.parametrize("t", [taste.Taste(), taste.Taste(math.inf, 0.5), taste.Taste(3600.0, 0.25),
                               taste.Taste(taste.NOW, 2.0, False, 1.0, fold_in=20)])
def test_taste_round_trips_through_json(t):
    import json

    assert taste.Taste.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    assert t.describe() and ("refitted" in t.describe()) == bool(t.fold_in)


@pytest.mark.parametrize("field, value", [("prior", "many"), ("fold_in", "many"), ("horizon", None),
                                          ("fold_in", 10 ** 9), ("fold_in", -1)])
def test_a_damaged_stored_taste_is_a_user_error(field, value):
    from recsys.errors import UserError

    with pytest.raises(UserError, match="stored taste is damaged"):
        taste.Taste.from_dict({"horizon": 0.0, "prior": 2.0, field: value})


def test_a_taste_stored_before_fold_in_reads_as_none():
    stored = {"horizon": "inf", "prior": 2.0, "mixture": True, "item_item": 2.0}  # a version-5 run's new_user
    assert taste.Taste.from_dict(stored).fold_in == 0
    assert taste.grid_key(taste.Taste(taste.NOW, 2.0, False, 1.0, 20), "latest") == "fold 20|latest|2|item-item 1"


def test_mixture_scores_by_hand():
    m = taste.Moments.of(_timeline())  # user 0: moments of 2 and 1 ratings; user 1: one moment
    embedded = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    candidates = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    got = taste.mixture_scores(embedded, m, np.array([200.0, 50.0]), math.inf, candidates, 0.5, np.array([0, 1]))

    def softmax(x):
        e = np.exp(x - x.max())
        return e / e.sum()

    p0 = (2 * softmax(np.array([2.0, 0, 0])) + 1 * softmax(np.array([0, 2.0, 0]))) / 3
    p1 = softmax(np.array([2.0, 2.0, 0]))
    np.testing.assert_allclose(np.exp(got), [p0, p1], rtol=1e-9)


def test_a_one_moment_mixture_orders_movies_as_its_query_does():
    part = {"user": np.array([0], np.int32), "movie": np.array([1], np.int32),
            "timestamp": np.array([5.0]), "rating": np.ones(1, np.float32)}
    m = taste.Moments.of(Timeline.of(part, n_users=1))
    rng = np.random.default_rng(0)
    embedded, candidates = rng.normal(size=(1, 4)), rng.normal(size=(9, 4))
    mixed = taste.mixture_scores(embedded, m, np.array([5.0]), math.inf, candidates, 0.5, np.array([0]))[0]
    assert np.argsort(-mixed).tolist() == np.argsort(-(candidates @ embedded[0])).tolist()
