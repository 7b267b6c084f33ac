"""Metric code against hand-computed examples."""
import numpy as np
import pytest

from recsys import metrics
from recsys.history import per_user_items


def test_rmse_by_hand():
    assert metrics.rmse([3, 4, 5], [1, 4, 4]) == pytest.approx(np.sqrt((4 + 0 + 1) / 3))


def test_top_k_accuracy_counts_strictly_higher_scores():
    scores = np.array([
        [0.9, 0.1, 0.5, 0.3],  # true 0: rank 0
        [0.9, 0.1, 0.5, 0.3],  # true 2: rank 1 (only 0.9 above)
        [0.9, 0.1, 0.5, 0.3],  # true 1: rank 3
        [0.5, 0.5, 0.5, 0.1],  # true 1: ties are not "higher", rank 0
    ])
    ranks = metrics.ranks_of_positives(scores, np.array([0, 2, 1, 1]))
    assert ranks.tolist() == [0, 1, 3, 0]
    acc = metrics.top_k_accuracy(ranks, ks=(1, 2, 4))
    assert acc == {"top_1_accuracy": 0.5, "top_2_accuracy": 0.75, "top_4_accuracy": 1.0}


def test_pair_ranks_chunks_agree_with_one_product():
    rng = np.random.RandomState(0)
    q, c = rng.randn(50, 4), rng.randn(30, 4)
    pos = rng.randint(0, 30, 50)
    whole = metrics.ranks_of_positives(q @ c.T, pos)
    assert (metrics.pair_ranks(q, c, pos, chunk=7) == whole).all()


def test_filtered_recall_excludes_seen_movies():
    # One user, five movies. Scores prefer 0 > 1 > 2 > 3 > 4; movie 0 was seen in training.
    scores = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    seen = [np.array([0])]
    relevant = [np.array([1, 4])]
    # top-2 after filtering = [1, 2] -> 1 of 2 relevant found.
    assert metrics.filtered_recall(scores, seen, relevant, ks=(2,)) == {"recall_at_2": 0.5}
    # Without the filter, movie 0 would take a slot: top-2 = [0, 1] -> still 0.5, top-1 differs:
    assert metrics.filtered_recall(scores, seen, relevant, ks=(1,)) == {"recall_at_1": 0.5}
    assert metrics.filtered_recall(scores, [np.array([], int)], relevant, ks=(1,)) == {"recall_at_1": 0.0}


def test_filtered_recall_averages_over_users_with_test_items():
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    seen = [np.array([], int)] * 3
    relevant = [np.array([0]), np.array([0]), np.array([], int)]  # third user has nothing to find
    assert metrics.filtered_recall(scores, seen, relevant, ks=(1,)) == {"recall_at_1": 0.5}


def test_top_k_excluding_orders_best_first():
    top = metrics.top_k_excluding(np.array([[1.0, 9.0, 5.0, 7.0]]), [np.array([1])], 2)
    assert top.tolist() == [[3, 2]]


def test_per_user_items():
    part = {"user": np.array([2, 0, 2, 2]), "movie": np.array([5, 1, 5, 3])}
    items = per_user_items(part, n_users=3)
    assert [i.tolist() for i in items] == [[1], [], [3, 5]]


def test_full_softmax_loss_matches_a_hand_computed_example():
    from recsys.evaluate import full_softmax_loss

    query = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    cands = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    # logits / 0.5: row 0 = [2, 0, 2], true movie 1; row 1 = [0, 4, 4], true movie 2
    expected = np.mean([np.log(2 * np.e**2 + 1) - 0.0, np.log(1 + 2 * np.e**4) - 4.0])
    from recsys.evaluate import Scores

    scores = Scores(pair_scores=lambda rows: (query @ cands.T)[rows], pair_ratings=None,
                    user_scores=np.zeros((1, 3)), user_ratings=None)
    got = full_softmax_loss(scores, np.array([1, 2]), temperature=0.5)
    assert got == pytest.approx(expected, rel=1e-5)


def test_unseen_ranks_skip_the_users_rated_movies():
    scores = np.array([[0.9, 0.8, 0.5, 0.3], [0.9, 0.8, 0.5, 0.3]])
    # Row 0: true movie 2, movies 0 and 1 score higher; the user rated movie 0 -> rank 1.
    # Row 1: true movie 3, nothing rated -> rank 3.
    ranks = metrics.unseen_ranks(scores, np.array([2, 3]), [np.array([0]), np.array([], int)])
    assert ranks.tolist() == [1, 3]
    assert metrics.top_k_accuracy(ranks, ks=(2,), suffix="_unseen") == {"top_2_accuracy_unseen": 0.5}


def test_recall_at_averages_users_with_relevant_movies_and_liked_subsets():
    top = np.array([[3, 1, 2], [0, 1, 2], [2, 0, 1]])
    relevant = [np.array([1, 5]), np.array([], int), np.array([0, 2, 4, 6])]
    # user 0: top-2 {3, 1} holds 1 of 2; user 2: top-2 {2, 0} holds 2 of 4; user 1 has nothing.
    assert metrics.recall_at(top, relevant, ks=(2,)) == {"recall_at_2": 0.5}
    assert metrics.recall_at(top, relevant, ks=(2,), prefix="liked_recall", suffix="_ranked") == {
        "liked_recall_at_2_ranked": 0.5}


def test_hit_rate_and_ndcg_by_hand():
    top = np.array([[4, 7, 9], [1, 2, 3], [5, 6, 8], [0, 1, 2]])
    target = np.array([4, 3, 7, -1])  # first place, third place, missed, no target
    m = metrics.hit_rate_ndcg(top, target, k=3)
    assert m["hr_at_3"] == pytest.approx(2 / 3)
    assert m["ndcg_at_3"] == pytest.approx((1 + 1 / np.log2(4)) / 3)


def test_beyond_accuracy_by_hand():
    top = np.array([[0, 1], [0, 2]])
    counts = np.array([6, 2, 0, 4])  # 12 ratings; movie 2 unrated counts as 1
    m = metrics.beyond_accuracy(top, counts, k=2)
    assert m["coverage_at_2"] == pytest.approx(3 / 4)
    expected = np.mean([-np.log2(6 / 12), -np.log2(2 / 12), -np.log2(6 / 12), -np.log2(1 / 12)])
    assert m["novelty_at_2"] == pytest.approx(expected)
    assert m["mean_popularity_at_2"] == pytest.approx((6 + 2 + 6 + 0) / 4)


def test_recall_by_activity_terciles():
    recall = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    activity = np.array([1, 2, 10, 11, 50, 60])
    assert metrics.recall_by_activity(recall, activity) == pytest.approx(
        {"light": 0.15, "medium": 0.35, "heavy": 0.55})


def test_low_share_counts_predictions_below_three_stars_in_shown_slots():
    predicted = np.array([[2.9, 3.0, 1.0], [4.0, 2.0, 5.0]])
    top = np.array([[1, 2, 3], [4, -1, 6]])  # the -1 slot is empty
    assert metrics.low_share(predicted, top, k=2) == pytest.approx(1 / 3)


def test_low_share_error_treats_each_list_as_one_sample():
    # Lists with 1, 2 and 0 of 2 movies low: share 3/6; per-list residuals 0, 1, -1.
    predicted = np.array([[2.0, 4.0], [2.0, 2.5], [4.0, 3.0]])
    share, error = metrics.low_share_error(predicted, np.zeros((3, 2), int), k=2)
    assert share == pytest.approx(0.5) and error == pytest.approx(np.sqrt(2) / 6)
    # Identical lists: no spread at all.
    assert metrics.low_share_error(np.array([[2.0, 4.0]] * 4), np.zeros((4, 2), int), k=2) == (0.5, 0.0)


def test_pair_metrics_are_the_same_in_any_chunking(tiny_run, monkeypatch):
    from recsys import evaluate as ev
    from recsys.checkpoint import load_model

    prep, run = tiny_run
    scores = ev.model_scores(load_model(run, prep), prep, "val")
    positives = ev.part_of(prep, "val").pairs["movie"]
    whole = ev.evaluate(scores, prep, "val", full=False), ev.full_softmax_loss(scores, positives, 0.5)
    monkeypatch.setattr(ev, "CHUNK_SCORES", 3 * prep.spec.n_movies)  # three pairs per chunk
    assert len(ev.pair_chunks(len(positives), prep.spec.n_movies)) > 5
    chunked = ev.evaluate(scores, prep, "val", full=False), ev.full_softmax_loss(scores, positives, 0.5)
    assert chunked[0] == whole[0]
    assert chunked[1] == pytest.approx(whole[1], rel=1e-6)


def test_top_k_excluding_splits_a_large_matrix_over_threads_with_the_same_lists(monkeypatch):
    # 600 x 1000 scores (over PARALLEL_CELLS): rounded to create ties, some rows with
    # nearly every column excluded so they pad with -1.
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=(600, 1000)), 1).astype(np.float32)
    exclude = [rng.choice(1000, 995 if row % 50 == 0 else 20, replace=False) for row in range(600)]
    assert scores.size >= metrics.PARALLEL_CELLS
    calls = []
    real = metrics._top_k
    monkeypatch.setattr(metrics, "_top_k", lambda cost, k: calls.append(len(cost)) or real(cost, k))
    got = metrics.top_k_excluding(scores, exclude, 100)
    assert len(calls) == min(metrics.cores(), 600) and sum(calls) == 600
    # Brute force: a stable full sort of each row, excluded columns dropped.
    for row in range(600):
        allowed = np.setdiff1d(np.arange(1000), exclude[row])
        best = allowed[np.argsort(-scores[row, allowed], kind="stable")][:100]
        np.testing.assert_array_equal(scores[row, got[row][got[row] >= 0]], scores[row, best])
        assert (got[row] >= 0).sum() == len(best) and set(got[row][got[row] >= 0]) <= set(allowed)
