"""The two-stage order (retrieve, then rank) and the choice of its blend on validation."""
import numpy as np
import pytest

from recsys import ranking
from recsys.errors import UserError


def test_blend_by_hand():
    retrieval = np.array([[3.0, 2.0, 1.0]])  # standardised: [1.2247, 0, -1.2247]
    predicted = np.array([[2.0, 4.5, 4.0]])
    z = np.array([1.2247449, 0.0, -1.2247449])
    got = ranking.blended(retrieval, predicted, np.array([3.5]), ranking.Blend(beta=1.0))
    np.testing.assert_allclose(got[0], z + (predicted[0] - 3.5), rtol=1e-6)
    # The guard: log sigmoid((p - 3.25) / 0.5) by hand is -log(1 + exp(-(p - 3.25) / 0.5)).
    guard = -np.log(1 + np.exp(-(predicted[0] - 3.25) / 0.5))  # [-1.7014, -0.2014, -0.3133]
    got = ranking.blended(retrieval, predicted, np.array([3.5]), ranking.Blend(beta=1.0, guard=2.0))
    np.testing.assert_allclose(got[0], z + (predicted[0] - 3.5) + 2.0 * guard, rtol=1e-6)


def test_the_guard_penalises_movies_below_its_knee_and_barely_those_above():
    p = ranking.guard_penalty(np.array([1.0, 2.0, 3.0, 3.25, 4.0, 5.0]))
    np.testing.assert_allclose(p[3], -np.log(2.0))
    assert np.all(np.diff(p) > 0) and np.all(p < 0)
    # Below the knee a star costs about 1/width (2); above it, far less.
    assert 1.8 < p[1] - p[0] < 2.0 and p[5] - p[4] < 0.2
    # For high predictions the guard keeps the retrieval order where beta reverses it.
    retrieval, predicted = np.array([[2.0, 1.0, 0.0]]), np.array([[4.2, 4.9, 2.0]])
    assert ranking.order(retrieval, predicted, "blend", ranking.Blend(beta=3.0))[0].tolist() == [1, 0, 2]
    assert ranking.order(retrieval, predicted, "blend", ranking.Blend(beta=0.0, guard=2.0))[0].tolist() == [0, 1, 2]
    # ... and pushes a movie predicted at 2 stars below both (z + 2 x guard: [-2.18, -0.16, -1.46]).
    predicted = np.array([[2.0, 4.5, 4.2]])
    assert ranking.order(retrieval, predicted, "blend", ranking.Blend(beta=0.0, guard=2.0))[0].tolist() == [1, 2, 0]


def test_the_three_orders():
    retrieval = np.array([[3.0, 2.0, 1.0]])
    predicted = np.array([[2.0, 4.5, 4.0]])
    one = ranking.Blend(beta=1.0)
    assert ranking.order(retrieval, predicted, "watch", one)[0].tolist() == [0, 1, 2]
    assert ranking.order(retrieval, predicted, "love", one)[0].tolist() == [1, 2, 0]
    # blend with beta 1: [1.22 - 1.5, 0 + 1, -1.22 + 0.5] = [-0.28, 1.0, -0.72]
    assert ranking.order(retrieval, predicted, "blend", one)[0].tolist() == [1, 0, 2]
    # beta 0 is the retrieval order
    assert ranking.order(retrieval, predicted, "blend", ranking.Blend(beta=0.0))[0].tolist() == [0, 1, 2]


def test_invalid_columns_go_last_and_the_user_mean_does_not_change_the_order():
    retrieval = np.array([[3.0, 2.0, 9.0]])
    predicted = np.array([[2.0, 4.5, 5.0]])
    valid = np.array([[True, True, False]])
    assert ranking.order(retrieval, predicted, "love", ranking.Blend(), valid)[0].tolist() == [1, 0, 2]
    two = ranking.Blend(beta=2.0, guard=1.0)
    a = ranking.blended(retrieval, predicted, np.array([1.0]), two)
    b = ranking.blended(retrieval, predicted, np.array([4.0]), two)
    assert np.argsort(-a).tolist() == np.argsort(-b).tolist()


def test_rerank_returns_movies_and_predictions_in_the_new_order():
    top = np.array([[7, 8, 9, -1]])
    movies, predicted = ranking.rerank(top, np.array([[3.0, 2.0, 1.0, 0.0]]), np.array([[1.0, 5.0, 3.0, 5.0]]),
                                       "love", ranking.Blend())
    assert movies.tolist() == [[8, 9, 7, -1]] and predicted.tolist() == [[5.0, 3.0, 1.0, 5.0]]


def _lists(users: int, stars: float, movie: int, its_stars: float):
    """`users` identical candidate lists (max(CANDIDATES) movies, best-retrieved first), each
    predicted at `stars` but `movie`, predicted at `its_stars`."""
    n = max(ranking.CANDIDATES)
    predicted = np.full((users, n), stars)
    predicted[:, movie] = its_stars
    return np.tile(np.arange(n), (users, 1)), np.tile(np.linspace(10, 0, n), (users, 1)), predicted


def test_choose_picks_the_best_recall_plus_liked_recall_and_prefers_the_simpler_blend_on_ties():
    # Two users. Each user's liked movie sits at retrieval rank 30 but has the highest
    # predicted rating: a blend that leans on the prediction enough lifts it into the top
    # 10; the retrieval order (beta 0, no guard) cannot.
    top, retrieval, predicted = _lists(2, 3.0, 30, 5.0)
    hit = [np.array([30]), np.array([30])]
    blend, grid = ranking.choose(top, retrieval, predicted, hit, hit, k=10)
    assert grid["0@50"] == [0.0, 0.0, 0.0, 0.0] and grid[blend.key()] == [1.0, 1.0, 0.0, 0.0]
    perfect = [(b, g, c) for b in ranking.BETAS for g in ranking.GUARDS for c in ranking.CANDIDATES
               if grid[ranking.Blend(b, c, g).key()][:2] == [1.0, 1.0]]
    assert (blend.beta, blend.guard, blend.candidates) == min(perfect)


def test_choose_keeps_the_share_of_movies_predicted_below_three_stars_under_the_limit():
    # 20 users whose retrieval top 10 holds one movie predicted at 2 stars (rank 0), and
    # that movie is what they watched: the retrieval order has the best recall, but 10% of
    # what it shows is predicted below 3 stars. Only blends that push it out are allowed.
    top, retrieval, predicted = _lists(20, 4.0, 0, 2.0)
    watched, liked = [np.array([0])] * 20, [np.array([], int)] * 20
    blend, grid = ranking.choose(top, retrieval, predicted, watched, liked, k=10)
    # Every list shows the same one low movie: the share has no spread, its bound is itself.
    assert grid["0@50"] == [1.0, pytest.approx(float("nan"), nan_ok=True), 0.1, 0.1]
    assert grid[blend.key()][3] <= ranking.MAX_LOW_SHARE and grid[blend.key()][0] == 0.0
    assert blend.beta > 0 or blend.guard > 0


def test_choose_wants_the_share_under_the_limit_with_its_standard_error_to_spare():
    # 5 users who each watched their best-retrieved movie; for 2 of them the rating head
    # predicts it at 2 stars. The retrieval order shows 4% predicted low, under the 5% limit,
    # but it rests on 2 lists of 5: its one-sided 95% bound (7.6%) is over the limit. The
    # rule takes a blend that pushes those two out (recall 0.6, nothing predicted low).
    top, retrieval, predicted = _lists(5, 4.0, 0, 2.0)
    predicted[2:, 0] = 4.0
    watched, liked = [np.array([0])] * 5, [np.array([], int)] * 5
    blend, grid = ranking.choose(top, retrieval, predicted, watched, liked, k=10)
    recall, _, share, bound = grid["0@50"]
    assert (recall, share) == (1.0, 0.04) and bound == pytest.approx(0.04 + ranking.LOW_SHARE_Z * np.sqrt(1.2) / 50,
                                                                     abs=1e-5)
    assert grid[blend.key()][0] == pytest.approx(0.6) and grid[blend.key()][2:] == [0.0, 0.0]


def test_unknown_order_is_a_user_error():
    with pytest.raises(UserError, match="unknown order 'random'"):
        ranking.check_rank("random")


def test_blend_round_trips_through_json():
    b = ranking.Blend(beta=2.0, candidates=50, guard=0.5)
    assert ranking.Blend.from_dict(b.to_dict()) == b
    assert ranking.Blend.from_dict(None) == ranking.Blend()
    # A run stored before the guard reads as no guard: its old order.
    assert ranking.Blend.from_dict({"beta": 1.5, "candidates": 200}) == ranking.Blend(1.5, 200, 0.0)
    assert b.key() == "2+guard 0.5@50" and ranking.Blend(1.5, 200).key() == "1.5@200"


@pytest.mark.parametrize("stored", [{"beta": "many"}, {"guard": None}, {"candidates": "all"}, {"beta": float("nan")},
                                    {"candidates": 0}])
def test_a_damaged_stored_blend_is_a_user_error(stored):
    with pytest.raises(UserError, match="stored blend is damaged"):
        ranking.Blend.from_dict({"beta": 0.5, "candidates": 100, **stored})
