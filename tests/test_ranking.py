"""The two-stage order (retrieve, then rank) and the choice of its blend on validation."""
import numpy as np
import pytest

from recsys import ranking
from recsys.errors import UserError


def test_blend_by_hand():
    retrieval = np.array([[3.0, 2.0, 1.0]])  # standardised: [1.2247, 0, -1.2247]
    predicted = np.array([[2.0, 4.5, 4.0]])
    z = np.array([1.2247449, 0.0, -1.2247449])
    got = ranking.blended(retrieval, predicted, np.array([3.5]), beta=1.0)
    np.testing.assert_allclose(got[0], z + (predicted[0] - 3.5), rtol=1e-6)


def test_the_three_orders():
    retrieval = np.array([[3.0, 2.0, 1.0]])
    predicted = np.array([[2.0, 4.5, 4.0]])
    assert ranking.order(retrieval, predicted, "watch", 1.0)[0].tolist() == [0, 1, 2]
    assert ranking.order(retrieval, predicted, "love", 1.0)[0].tolist() == [1, 2, 0]
    # blend with beta 1: [1.22 - 1.5, 0 + 1, -1.22 + 0.5] = [-0.28, 1.0, -0.72]
    assert ranking.order(retrieval, predicted, "blend", 1.0)[0].tolist() == [1, 0, 2]
    # beta 0 is the retrieval order
    assert ranking.order(retrieval, predicted, "blend", 0.0)[0].tolist() == [0, 1, 2]


def test_invalid_columns_go_last_and_the_user_mean_does_not_change_the_order():
    retrieval = np.array([[3.0, 2.0, 9.0]])
    predicted = np.array([[2.0, 4.5, 5.0]])
    valid = np.array([[True, True, False]])
    assert ranking.order(retrieval, predicted, "love", 1.0, valid)[0].tolist() == [1, 0, 2]
    a = ranking.blended(retrieval, predicted, np.array([1.0]), 2.0)
    b = ranking.blended(retrieval, predicted, np.array([4.0]), 2.0)
    assert np.argsort(-a).tolist() == np.argsort(-b).tolist()


def test_rerank_returns_movies_and_predictions_in_the_new_order():
    top = np.array([[7, 8, 9, -1]])
    movies, predicted = ranking.rerank(top, np.array([[3.0, 2.0, 1.0, 0.0]]), np.array([[1.0, 5.0, 3.0, 5.0]]),
                                       "love", 0.0)
    assert movies.tolist() == [[8, 9, 7, -1]] and predicted.tolist() == [[5.0, 3.0, 1.0, 5.0]]


def test_choose_picks_the_best_liked_recall_and_prefers_the_smaller_beta_on_ties():
    # Two users, 200 candidates each (best-retrieved first). Each user's liked movie sits
    # at retrieval rank 30 but has the highest predicted rating: any beta large enough
    # lifts it into the top 10; beta 0 cannot.
    n = max(ranking.CANDIDATES)
    top = np.tile(np.arange(n), (2, 1))
    retrieval = np.tile(np.linspace(10, 0, n), (2, 1))
    predicted = np.full((2, n), 3.0)
    predicted[:, 30] = 5.0
    blend, grid = ranking.choose(top, retrieval, predicted, [np.array([30]), np.array([30])], k=10)
    assert grid["0@50"] == 0.0 and grid[f"{blend.beta:g}@{blend.candidates}"] == 1.0
    perfect = [(b, n) for b in ranking.BETAS for n in ranking.CANDIDATES if grid[f"{b:g}@{n}"] == 1.0]
    assert (blend.beta, blend.candidates) == min(perfect)


def test_unknown_order_is_a_user_error():
    with pytest.raises(UserError, match="unknown order 'random'"):
        ranking.check_rank("random")


def test_blend_round_trips_through_json():
    b = ranking.Blend(beta=2.0, candidates=50)
    assert ranking.Blend.from_dict(b.to_dict()) == b
    assert ranking.Blend.from_dict(None) == ranking.Blend()
