"""Metric code against hand-computed examples."""
import numpy as np
import pytest

from recsys import metrics
from recsys.baseline import per_user_items, popularity_metrics


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


def test_popularity_baseline_by_hand():
    # Movie 0 rated 3 times, movie 1 twice, movie 2 once, movie 3 never.
    train = {"user": np.array([0, 1, 2, 0, 1, 2]), "movie": np.array([0, 0, 0, 1, 1, 2]),
             "rating": np.array([5, 4, 3, 2, 2, 1], np.float32)}
    test = {"user": np.array([0, 2, 1]), "movie": np.array([0, 1, 3]), "rating": np.array([4, 3, 4], np.float32)}
    m = popularity_metrics(train, test, n_users=3, n_movies=4)
    # Predictions: movie 0 -> 4.0, movie 1 -> 2.0, movie 3 unseen -> global mean 17/6.
    assert m["rmse"] == pytest.approx(np.sqrt((0 + (2 - 3) ** 2 + (17 / 6 - 4) ** 2) / 3))
    # Ranks by count: movie 0 -> 0, movie 1 -> 1, movie 3 -> 3; only the first is a top-1 hit.
    assert m["top_1_accuracy"] == pytest.approx(1 / 3)
    assert m["top_5_accuracy"] == 1.0
    # Filtered recall@10: user 0 saw {0, 1} in training, so test movie 0 can't be found;
    # user 2 finds 1 (unseen by them), user 1 finds 3: mean (0 + 1 + 1) / 3.
    assert m["recall_at_10"] == pytest.approx(2 / 3)


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
    got = full_softmax_loss(query, cands, np.array([1, 2]), temperature=0.5)
    assert got == pytest.approx(expected, rel=1e-5)
