"""The session feature: each query's latest training ratings at or before its time."""
import numpy as np

from recsys.context import PADDING, TimeNeighbours


def _history():
    # user 0 rates movies 10..14 at t = 100..104; user 1 rates movie 20 at t = 50 and 21 at t = 200.
    return {"user": np.array([0, 0, 1, 0, 0, 1, 0], np.int32),
            "movie": np.array([12, 10, 20, 14, 11, 21, 13], np.int32),
            "timestamp": np.array([102, 100, 50, 104, 101, 200, 103], np.float64),
            "rating": np.array([3, 1, 4, 5, 2, 2, 4], np.float32)}


def test_latest_first_at_or_before_the_query_time():
    nb = TimeNeighbours(_history(), n_users=3)
    movies, ratings = nb.lookup(np.array([0, 0, 1]), np.array([102.0, 1000.0, 199.0]), k=3)
    np.testing.assert_array_equal(movies, [[13, 12, 11], [15, 14, 13], [21, PADDING, PADDING]])
    np.testing.assert_array_equal(ratings, [[3, 2, 1], [5, 4, 3], [4, 0, 0]])


def test_no_history_before_the_query_gives_padding():
    nb = TimeNeighbours(_history(), n_users=3)
    movies, _ = nb.lookup(np.array([0, 2]), np.array([99.0, 500.0]), k=2)
    np.testing.assert_array_equal(movies, np.zeros((2, 2)))


def test_a_training_row_never_sees_itself():
    h = _history()
    nb = TimeNeighbours(h, n_users=3)
    movies, _ = nb.lookup(h["user"], h["timestamp"], k=2, exclude=np.arange(len(h["user"])))
    assert not (movies == h["movie"][:, None] + 1).any()
    # row 0 is movie 12 at t = 102: its context is 11 (t = 101) then 10 (t = 100)
    np.testing.assert_array_equal(movies[0], [12, 11])


def test_matches_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    n = 3000
    h = {"user": rng.integers(0, 40, n).astype(np.int32), "movie": rng.integers(0, 500, n).astype(np.int32),
         "timestamp": rng.choice(10**9, n, replace=False).astype(np.float64),
         "rating": rng.integers(1, 6, n).astype(np.float32)}
    nb = TimeNeighbours(h, n_users=40)
    users, times = rng.integers(0, 40, 200), rng.uniform(0, 10**9, 200)
    movies, _ = nb.lookup(users, times, k=5)
    for u, t, got in zip(users, times, movies):
        before = np.where((h["user"] == u) & (h["timestamp"] <= t))[0]
        latest = before[np.argsort(-h["timestamp"][before])][:5]
        expected = np.pad(h["movie"][latest] + 1, (0, 5 - len(latest)))
        np.testing.assert_array_equal(got, expected)


def test_prepared_parts_carry_leak_free_context(_tiny_session):
    prep = _tiny_session[1]
    for part in (prep.train, prep.val, prep.test):
        assert part["context"].shape == part["context_rating"].shape == (len(part["user"]), 20)
        assert not (part["context"] == part["movie"][:, None] + 1).any()
        assert ((part["context"] > 0) == (part["context_rating"] > 0)).all()
    assert (prep.test["context"] > 0).any()
    # Every context movie was rated by the same user in training, at or before the query.
    train = prep.train
    for i in range(0, len(prep.test["user"]), 7):
        u, t = prep.test["user"][i], prep.test["timestamp"][i]
        allowed = set(train["movie"][(train["user"] == u) & (train["timestamp"] <= t)] + 1)
        ctx = prep.test["context"][i]
        assert set(ctx[ctx > 0]) <= allowed
