"""The model's item-item part: EASE's closed form, its scores, and that a run carries it."""
import dataclasses

import numpy as np
import pytest

from recsys import itemitem, taste

X = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1], [1, 1, 1, 0], [0, 0, 1, 1]], np.float64)


@pytest.mark.parametrize("l2", [0.5, 3.0])
def test_ease_weights_solve_each_columns_constrained_ridge(l2):
    # EASE minimises |X - XB|^2 + l2 |B|^2 with diag(B) = 0: each column j is the ridge
    # regression of movie j's column on the other movies' columns, solved here directly.
    b = itemitem.ease_weights(X.copy(), l2)
    assert np.allclose(np.diag(b), 0.0)
    for j in range(X.shape[1]):
        others = [i for i in range(X.shape[1]) if i != j]
        xo = X[:, others]
        column = np.linalg.solve(xo.T @ xo + l2 * np.eye(len(others)), xo.T @ X[:, j])
        np.testing.assert_allclose(b[others, j], column, rtol=1e-8, atol=1e-10)


def test_user_scores_sum_the_rated_movies_rows_over_the_scale():
    b = np.arange(16, dtype=np.float32).reshape(4, 4)
    got = itemitem.user_scores(b, 2.0, [np.array([0, 2]), np.array([], int), np.array([3])])
    np.testing.assert_allclose(got, np.stack([(b[0] + b[2]) / 2, np.zeros(4), b[3] / 2]))


def test_the_layer_fits_eases_weights_and_the_scores_scale():
    part = {"user": np.nonzero(X)[0], "movie": np.nonzero(X)[1]}
    layer = itemitem.ItemItem(X.shape[1], 2.0)
    layer.fit(part, X.shape[0])
    assert layer.fitted_l2 == pytest.approx(2.0 * (12 / 4) / (72_000 / 1_682))  # 12 ratings of 4 movies
    b = itemitem.ease_weights(X.copy(), layer.fitted_l2)
    np.testing.assert_allclose(layer.b.numpy(), b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(layer.scale.numpy()), (X @ b).std(), rtol=1e-5)
    rated = [np.flatnonzero(row) for row in X]
    np.testing.assert_allclose(layer.scores(rated), X @ b / (X @ b).std(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer(X.astype(np.float32)).numpy(), layer.scores(rated), rtol=1e-5, atol=1e-5)


def test_the_l2_grows_with_the_ratings_per_movie_and_is_the_presets_on_ml100k():
    assert itemitem.scaled_l2(300.0, 72_000, 1_682) == 300.0  # exactly: ML-100K's runs are unchanged
    assert itemitem.scaled_l2(300.0, 720_000, 2_500) == pytest.approx(300.0 * 288 / (72_000 / 1_682))
    assert itemitem.scaled_l2(300.0, 144_000, 1_682) == pytest.approx(600.0)


def test_large_catalogues_and_l2_zero_go_without_it():
    assert itemitem.applies(1682, 300.0)
    assert not itemitem.applies(1682, 0.0)
    assert not itemitem.applies(itemitem.MAX_MOVIES + 1, 300.0)


def test_a_trained_run_stores_the_fitted_part_and_reloads_it(_tiny_session):
    from recsys.checkpoint import load_model, read_weights

    _, prep, run = _tiny_session
    stored = read_weights(run)
    assert stored["item_item/b"].shape == (prep.spec.n_movies, prep.spec.n_movies)
    x = itemitem.interactions(prep.train, prep.spec.n_users, prep.spec.n_movies)
    l2 = itemitem.scaled_l2(run.preset.item_item_l2, len(prep.train["user"]), prep.spec.n_movies)
    assert run.info["item_item_l2"] == pytest.approx(l2, abs=0.05)  # the run says what it fitted with
    np.testing.assert_allclose(stored["item_item/b"], itemitem.ease_weights(x, l2), rtol=1e-4, atol=1e-5)
    model = load_model(run, prep)
    np.testing.assert_array_equal(model.item_item.b.numpy(), stored["item_item/b"])
    assert float(model.item_item.scale.numpy()) == pytest.approx(float(stored["item_item/scale"]))


def test_a_tastes_item_item_weight_adds_its_share_of_the_scores():
    rng = np.random.default_rng(0)
    query, candidates = rng.normal(size=(2, 3)), rng.normal(size=(5, 3))
    prior_col, item_item = rng.random(5), rng.normal(size=(2, 5))
    plain = taste.Taste(taste.NOW, 0.5)
    weighted = dataclasses.replace(plain, item_item=2.0)
    got = taste.list_scores(weighted, query, None, candidates, prior_col, 0.5, item_item)
    np.testing.assert_allclose(got, taste.list_scores(plain, query, None, candidates, prior_col, 0.5) + 2 * item_item)
    assert weighted.rescores and not plain.rescores
    assert taste.Taste.from_dict(weighted.to_dict()) == weighted
    assert "go with theirs x 2" in weighted.describe()
