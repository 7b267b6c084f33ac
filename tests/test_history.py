"""History and session features: each query's ratings at or before its time, never its own."""
import numpy as np
import pytest

from recsys.history import PADDING, Timeline, bag, first_items, per_user_items, session


def _part():
    # user 0 rates movies 10..14 at t = 100..104; user 1 rates movie 20 at t = 50 and 21 at t = 200.
    return {"user": np.array([0, 0, 1, 0, 0, 1, 0], np.int32),
            "movie": np.array([12, 10, 20, 14, 11, 21, 13], np.int32),
            "timestamp": np.array([102, 100, 50, 104, 101, 200, 103], np.float64),
            "rating": np.array([3, 1, 4, 5, 2, 2, 4], np.float32)}


def _session(timeline, pointers, size):
    ids, stars = session(timeline.movie, timeline.rating, pointers.start, pointers.end, pointers.skip, size)
    return ids.numpy(), stars.numpy()


def test_latest_first_at_or_before_the_query_time():
    tl = Timeline.of(_part(), n_users=3)
    ids, stars = _session(tl, tl.pointers(np.array([0, 0, 1]), np.array([102.0, 1000.0, 199.0])), 3)
    np.testing.assert_array_equal(ids, [[13, 12, 11], [15, 14, 13], [21, PADDING, PADDING]])
    np.testing.assert_array_equal(stars, [[3, 2, 1], [5, 4, 3], [4, 0, 0]])


def test_no_history_before_the_query_gives_padding():
    tl = Timeline.of(_part(), n_users=3)
    ids, _ = _session(tl, tl.pointers(np.array([0, 2]), np.array([99.0, 500.0])), 2)
    assert (ids == PADDING).all()


def test_a_training_row_never_sees_itself():
    part = _part()
    tl = Timeline.of(part, n_users=3)
    rows = np.arange(len(part["user"]))
    ids, _ = _session(tl, tl.pointers(part["user"], part["timestamp"], own_rows=rows), 2)
    assert not (ids == part["movie"][:, None] + 1).any()
    # row 0 is movie 12 at t = 102: its session is 11 (t = 101) then 10 (t = 100)
    np.testing.assert_array_equal(ids[0], [12, 11])
    # row 3 is movie 14 at t = 104, the user's latest: everything before it
    np.testing.assert_array_equal(ids[3], [14, 13])


def test_same_second_ratings_are_history_but_the_row_itself_is_not():
    part = {"user": np.zeros(3, np.int32), "movie": np.array([5, 6, 7], np.int32),
            "timestamp": np.array([10.0, 10.0, 10.0]), "rating": np.array([1, 2, 3], np.float32)}
    tl = Timeline.of(part, n_users=1)
    ids, _ = _session(tl, tl.pointers(part["user"], part["timestamp"], own_rows=np.arange(3)), 5)
    assert [sorted(set(r[r > 0]) ) for r in ids] == [[7, 8], [6, 8], [6, 7]]


def test_bag_holds_the_stars_of_the_whole_history():
    part = _part()
    tl = Timeline.of(part, n_users=3)
    p = tl.pointers(part["user"], part["timestamp"], own_rows=np.arange(len(part["user"])))
    rows = bag(tl.movie, tl.rating, p.start, p.end, p.skip, 25).numpy()
    for i, (u, t, m) in enumerate(zip(part["user"], part["timestamp"], part["movie"])):
        expected = {mm: r for uu, tt, mm, r in zip(part["user"], part["timestamp"], part["movie"], part["rating"])
                    if uu == u and tt <= t and mm != m}
        assert {int(j): float(rows[i, j]) for j in np.flatnonzero(rows[i])} == expected


def test_matches_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    n = 3000
    part = {"user": rng.integers(0, 40, n).astype(np.int32), "movie": rng.integers(0, 500, n).astype(np.int32),
            "timestamp": rng.integers(0, 400, n).astype(np.float64),  # many ties in time
            "rating": rng.integers(1, 6, n).astype(np.float32)}
    tl = Timeline.of(part, n_users=40)
    users, times = rng.integers(0, 40, 200), rng.uniform(0, 400, 200).round()
    ids, _ = _session(tl, tl.pointers(users, times), 5)
    for u, t, got in zip(users, times, ids):
        before = np.where((part["user"] == u) & (part["timestamp"] <= t))[0]
        # Latest first; ties in time by descending movie (the timeline's order read backwards).
        latest = before[np.lexsort((-part["movie"][before], -part["timestamp"][before]))][:5]
        np.testing.assert_array_equal(got[:len(latest)], part["movie"][latest] + 1)
        assert (got[len(latest):] == PADDING).all()


def test_prepared_parts_read_only_earlier_training_ratings(_tiny_session):
    prep = _tiny_session[1]
    tl = prep.timeline
    train = prep.train
    for name, part in (("train", prep.train), ("val", prep.val), ("test", prep.test)):
        p = {k: part[k] for k in ("history_start", "history_end", "history_skip")}
        ids, _ = session(tl.movie, tl.rating, p["history_start"], p["history_end"], p["history_skip"], 50)
        ids = ids.numpy()
        for i in range(0, len(part["user"]), 3):
            u, t, m = part["user"][i], part["timestamp"][i], part["movie"][i]
            allowed = set(train["movie"][(train["user"] == u) & (train["timestamp"] <= t)] + 1)
            got = set(ids[i][ids[i] > 0])
            assert got <= allowed, (name, i)
            assert m + 1 not in got or name != "train", (name, i)
            if name != "train":
                assert got == allowed or len(got) == 50
    assert (session(tl.movie, tl.rating, prep.test["history_start"], prep.test["history_end"],
                    prep.test["history_skip"], 5)[0].numpy() > 0).any()


def test_per_user_items_and_first_items():
    part = {"user": np.array([2, 0, 2, 2]), "movie": np.array([5, 1, 4, 3]), "timestamp": np.array([9, 1, 3, 3])}
    assert [i.tolist() for i in per_user_items(part, n_users=3)] == [[1], [], [3, 4, 5]]
    # user 2: t = 3 holds movies 4 and 3 -> the lower movie row wins the tie
    assert first_items(part, n_users=3).tolist() == [1, -1, 3]


@pytest.mark.parametrize("size", [1, 3, 10])
def test_the_session_is_dense_at_its_size_and_padded_past_the_history(size):
    # User 0 has 5 ratings, user 1 has 2, user 2 none: every row is `size` wide.
    tl = Timeline.of(_part(), n_users=3)
    ids, stars = _session(tl, tl.pointers(np.array([0, 1, 2]), None), size)
    assert ids.shape == stars.shape == (3, size)
    for row, count in enumerate((5, 2, 0)):
        assert (ids[row, :count] != PADDING).all() and (ids[row, count:] == PADDING).all()
        assert (stars[row, count:] == 0).all()
