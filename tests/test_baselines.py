"""Classic baselines against hand-computed examples, and on the tiny data end to end."""
from dataclasses import replace

import numpy as np
import pytest

from recsys import baselines
from recsys.evaluate import evaluate, user_objective


def _part(users, movies, ratings=None):
    ratings = np.ones(len(users), np.float32) if ratings is None else np.asarray(ratings, np.float32)
    return {"user": np.asarray(users), "movie": np.asarray(movies), "rating": ratings}


def test_popularity_scores_counts_and_predicts_movie_means():
    # Movie 0 rated 3 times (5, 4, 3), movie 1 twice (2, 2), movie 2 once (1), movie 3 never.
    train = _part([0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 2], [5, 4, 3, 2, 2, 1])
    fit = baselines.popularity_fit(train, n_users=3, n_movies=4)
    np.testing.assert_array_equal(fit.user_scores[1], [3, 2, 1, 0])
    np.testing.assert_allclose(fit.ratings[2], [4.0, 2.0, 1.0, 17 / 6])  # unrated: the global mean


def test_ease_two_movies_by_hand():
    # X = [[1, 1], [1, 0]], lambda = 1: each column is a ridge regression on the other one.
    # B01 = x0.x1 / (x0.x0 + 1) = 1/3; B10 = x1.x0 / (x1.x1 + 1) = 1/2.
    fit = baselines.ease_fit(_part([0, 0, 1], [0, 1, 0]), n_users=2, n_movies=2, lam=1.0)
    np.testing.assert_allclose(fit.user_scores, [[0.5, 1 / 3], [0.0, 1 / 3]])
    assert fit.ratings is None and fit.params == {"lambda": 1.0}


def test_ease_columns_are_ridge_regressions_without_themselves():
    rng = np.random.default_rng(3)
    x = (rng.random((30, 6)) < 0.4).astype(float)
    lam = 2.5
    b = baselines.ease_weights(x.copy(), lam)
    assert np.allclose(np.diag(b), 0)
    for j in range(6):
        others = [i for i in range(6) if i != j]
        xo = x[:, others]
        ridge = np.linalg.solve(xo.T @ xo + lam * np.eye(5), xo.T @ x[:, j])
        np.testing.assert_allclose(b[others, j], ridge, rtol=1e-8, atol=1e-10)


def test_item_knn_by_hand():
    # X = [[1, 1, 0], [1, 0, 1], [0, 1, 0]]: column norms sqrt2, sqrt2, 1;
    # co-occurrence 0-1 = 1, 0-2 = 1, 1-2 = 0. Without shrinkage s01 = 1/2, s02 = 1/sqrt2.
    train = _part([0, 0, 1, 1, 2], [0, 1, 0, 2, 1], [5, 3, 4, 2, 1])
    fit = baselines.itemknn_fit(train, n_users=3, n_movies=3, k=3, shrink=0.0)
    s01, s02 = 0.5, 1 / np.sqrt(2)
    # user 2 rated only movie 1: scores are its similarities to each movie.
    np.testing.assert_allclose(fit.user_scores[2], [s01, 0.0, 0.0])
    # user 0 rated 0 and 1: movie 2 scores s02 + s12 = s02.
    np.testing.assert_allclose(fit.user_scores[0, 2], s02)
    # k = 1 keeps each movie's single best neighbour: movie 0's is movie 2 (1/sqrt2 > 1/2).
    pruned = baselines.itemknn_fit(train, n_users=3, n_movies=3, k=1, shrink=0.0)
    np.testing.assert_allclose(pruned.user_scores[2], [0.0, 0.0, 0.0])  # movie 1 is nobody's best
    np.testing.assert_allclose(pruned.user_scores[1, 0], s02)


def test_item_knn_rating_is_baseline_plus_weighted_neighbour_deviations():
    train = _part([0, 0, 1, 1, 2], [0, 1, 0, 2, 1], [5, 3, 4, 2, 1])
    fit = baselines.itemknn_fit(train, n_users=3, n_movies=3, k=3, shrink=0.0)
    base = baselines.biases(train, 3, 3)
    # User 2 rated movie 1 only; movie 0's neighbour among them is movie 1 (s01 = 1/2).
    dev = 1 - base[2, 1]
    assert fit.ratings[2, 0] == pytest.approx(np.clip(base[2, 0] + 0.5 * dev / 0.5, 1, 5))
    # Movie 2 has no neighbour among user 2's movies (s12 = 0): the baseline alone.
    assert fit.ratings[2, 2] == pytest.approx(np.clip(base[2, 2], 1, 5))


def test_biases_by_hand():
    train = _part([0, 0, 1], [0, 1, 0], [4, 2, 3])
    mu = 3.0
    movie = np.array([(1 + 0) / (2 + 10), (-1) / (1 + 10)])
    user0 = ((4 - mu - movie[0]) + (2 - mu - movie[1])) / (2 + 10)
    np.testing.assert_allclose(baselines.biases(train, 2, 2)[0], mu + user0 + movie)


def test_prune_keeps_the_k_best_of_each_column():
    sim = np.array([[0, 3, 1], [2, 0, 5], [4, 1, 0]], float)
    np.testing.assert_array_equal(baselines.prune(sim, 1), [[0, 3, 0], [0, 0, 5], [4, 0, 0]])


def test_every_baseline_on_the_tiny_split_has_a_runs_metric_keys(_tiny_session):
    prep = _tiny_session[1]
    out = baselines.metrics(prep)
    assert set(out) == {"popularity", "ease", "itemknn"}
    for name, m in out.items():
        for key in ("top_10_accuracy", "top_10_accuracy_unseen", "recall_at_10", "recall_at_100",
                    "liked_recall_at_10", "hr_at_10", "ndcg_at_10", "coverage_at_10", "novelty_at_10"):
            assert np.isfinite(m[key]), (name, key)
        assert ("rmse" in m) == (name != "ease")
    assert out["ease"]["params"]["lambda"] in baselines.EASE_LAMBDAS
    assert out["itemknn"]["params"]["k"] in baselines.KNN_SIZES


def test_baselines_choose_their_setting_without_the_test_split(_tiny_session):
    prep = _tiny_session[1]
    chosen = baselines.ease(prep)
    # Scramble the test ratings: the choice must not move, and it must move with validation.
    rng = np.random.default_rng(0)
    scrambled = replace(prep, test=dict(prep.test, movie=rng.permutation(prep.test["movie"])))
    assert baselines.ease(scrambled).params == chosen.params
    grid = {lam: baselines.ease_fit(prep.train, prep.spec.n_users, prep.spec.n_movies, lam)
            for lam in baselines.EASE_LAMBDAS}
    best = max(grid, key=lambda lam: user_objective(evaluate(grid[lam].scores(prep, "val"), prep, "val",
                                                             full=False)))
    assert chosen.params == {"lambda": best}
