"""The evaluation protocols: the seed's random split and the per-user temporal split."""
import numpy as np
import pandas as pd
import pytest

from recsys.data import MovieLens
from recsys.errors import UserError
from recsys.split import check_protocol, random_split, split, temporal_split


def _ratings(rows):
    # rows: (user, movie, timestamp), given in canonical order (user, then movie id)
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "timestamp"]).assign(user_rating=4.0)


def test_temporal_split_by_hand():
    # User 1 rates 10 movies at t = 10..1 (movie 1 latest); user 2 rates 5, two in the same second.
    user1 = [("1", str(m), 11 - m) for m in range(1, 11)]
    user2 = [("2", "1", 5), ("2", "2", 9), ("2", "3", 9), ("2", "4", 1), ("2", "5", 3)]
    s = temporal_split(_ratings(user1 + user2))
    # User 1: 10 ratings -> 2 test (t = 10, 9: movies 1, 2), 1 validation (8 * 0.1 -> 1: movie 3).
    # User 2: 5 -> 1 test; ties at t = 9 break by movie id, so movie 3 is the latest (test), and
    # round(4 * 0.1) = 0 validation.
    assert sorted(s.test.tolist()) == [0, 1, 12]
    assert s.val.tolist() == [2]
    assert sorted(s.train.tolist()) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14]


def test_temporal_split_puts_every_test_rating_after_the_users_training():
    rng = np.random.default_rng(1)
    rows = [(str(u), str(m), int(rng.integers(0, 50))) for u in range(1, 30)
            for m in sorted(rng.choice(200, int(rng.integers(5, 40)), replace=False) + 1)]
    ratings = _ratings(rows)
    s = temporal_split(ratings)
    assert len(s.train) + len(s.val) + len(s.test) == len(ratings)
    assert not (set(s.train) & set(s.test) or set(s.val) & set(s.test) or set(s.train) & set(s.val))
    for user, group in ratings.groupby("user_id"):
        idx = group.index
        train, val, test = (group.timestamp[idx.isin(p)] for p in (s.train, s.val, s.test))
        assert len(test) == round(len(group) * 0.2)
        if len(test) and len(train):
            assert train.max() <= test.min() and (val.max() if len(val) else -1) <= test.min()
        if len(val) and len(train):
            assert train.max() <= val.min()


def test_random_split_is_the_seeds_and_fills_eighty_ten_twenty():
    s = random_split(1000, seed=42)
    assert (len(s.train), len(s.val), len(s.test)) == (720, 80, 200)
    order = np.random.RandomState(42).permutation(1000)
    assert set(s.test) == set(order[800:])


def test_split_dispatches_on_the_protocol_and_rejects_others():
    ml = MovieLens(_ratings([("1", "1", 1), ("1", "2", 2), ("1", "3", 3), ("1", "4", 4), ("1", "5", 5)]),
                   pd.DataFrame(), pd.DataFrame(), "test")
    assert split(ml, protocol="temporal").test.tolist() == [4]
    assert len(split(ml, seed=1, protocol="random").test) == 1
    with pytest.raises(UserError, match="unknown split 'future'"):
        check_protocol("future")
