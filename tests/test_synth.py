"""The synthetic MovieLens-like generator and reading its copies back."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pandas as pd
import pytest

from recsys import data, synth
from recsys.errors import UserError

SIZES = synth.Sizes(users=2_000, movies=3_000, ratings=60_000, seed=7)


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "copy"
    marker = synth.generate(out, SIZES)
    ratings = pd.read_csv(out / "ratings.csv", dtype={"rating": str})
    movies = pd.read_csv(out / "movies.csv", dtype=str, keep_default_na=False)
    return out, marker, ratings, movies


def test_layout_and_marker(copy):
    out, marker, ratings, movies = copy
    assert (out / "ratings.csv").read_text().splitlines()[0] == "userId,movieId,rating,timestamp"
    assert (out / "movies.csv").read_text(encoding="utf-8").splitlines()[0] == "movieId,title,genres"
    assert marker == json.loads((out / "synthetic.json").read_text())
    assert marker == {"generator": "recsys.synth", "dataset": "ml-25m", "users": 2_000, "movies": 3_000,
                      "ratings": 60_000, "seed": 7}
    assert len(ratings) == 60_000 and ratings.userId.nunique() == 2_000 and len(movies) == 3_000
    # Sorted as GroupLens sorts ML-25M: by user, then movie.
    assert ratings[["userId", "movieId"]].apply(tuple, axis=1).is_monotonic_increasing


def test_ratings_are_half_stars_with_both_kinds(copy):
    ratings = copy[2]
    assert set(ratings.rating) <= {f"{s / 2:.1f}" for s in range(1, 11)}
    values = ratings.rating.astype(float)
    assert (values % 1 == 0).mean() > 0.5 and (values % 1 == 0.5).any()
    assert 3.0 < values.mean() < 4.0


def test_every_user_has_a_few_ratings_and_pairs_are_distinct(copy):
    ratings = copy[2]
    per_user = ratings.groupby("userId").size()
    assert per_user.min() >= synth.MIN_PER_USER
    assert set(per_user.index) == set(range(1, 2_001))
    assert not ratings.duplicated(["userId", "movieId"]).any()


def test_power_laws(copy):
    ratings = copy[2]
    per_movie = ratings.groupby("movieId").size().sort_values(ascending=False)
    assert per_movie.iloc[: len(per_movie) // 10].sum() > 0.3 * len(ratings)  # uniform: 0.1
    per_user = ratings.groupby("userId").size()
    assert per_user.max() > 5 * per_user.median()  # uniform: about 1.3


def _top_genre_share(ratings: pd.DataFrame, movies: pd.DataFrame) -> float:
    """Mean over users of the share of their ratings that carry their own most-rated genre."""
    genres = movies.set_index(movies.movieId.astype(int)).genres.str.get_dummies()
    per_user = genres.loc[ratings.movieId.to_numpy()].groupby(ratings.userId.to_numpy()).sum()
    return float((per_user.max(axis=1) / ratings.groupby("userId").size()).mean())


def test_users_have_tastes_that_popularity_does_not_explain(copy):
    """Which movies a user rated says something beyond popularity: their favourite genre
    holds more of their ratings than when every user's movies are drawn from the others'."""
    ratings, movies = copy[2], copy[3]
    own = _top_genre_share(ratings, movies)
    shuffled = ratings.assign(movieId=np.random.default_rng(0).permutation(ratings.movieId.to_numpy()))
    assert own > _top_genre_share(shuffled, movies) + 0.05  # 0.38 against 0.27 here; no taste: equal
    liked = ratings.rating.astype(float).groupby(ratings.userId).transform("mean")
    assert liked.std() > 0.2  # and users rate differently


def test_sessions(copy):
    ratings = copy[2].sort_values(["userId", "timestamp"])
    gaps = ratings.groupby("userId").timestamp.diff().dropna()
    assert (gaps == 0).mean() > 0.2  # many in the same second, as in ML-100K
    assert (gaps < 600).mean() > 0.6  # mostly minutes apart
    spans = ratings.groupby("userId").timestamp.agg(lambda t: t.max() - t.min())
    assert (spans > 30 * 86_400).mean() > 0.2  # but sessions spread over months for many users
    assert ratings.timestamp.between(synth.FIRST_TIME, synth.LAST_TIME).all()


def test_movies_titles_and_genres(copy):
    out, _, ratings, movies = copy
    assert all(re.fullmatch(r"\S.* \((19|20)\d\d\)", t) for t in movies.title)
    assert any(", The (" in t for t in movies.title)  # needs quoting in the CSV
    assert '"' in (out / "movies.csv").read_text(encoding="utf-8")
    assert any(not t.isascii() for t in movies.title)
    for genres in movies.genres:
        assert genres == synth.NO_GENRES or set(genres.split("|")) <= set(synth.GENRES)
    ids = movies.movieId.astype(int)
    assert set(ratings.movieId) <= set(ids)
    assert ids.max() > len(ids)  # ids have gaps, as in ML-25M


def test_same_seed_same_bytes(tmp_path, copy):
    again = synth.generate(tmp_path / "again", SIZES)
    assert again == copy[1]
    for name in ("ratings.csv", "movies.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (copy[0] / name).read_bytes()
    synth.generate(tmp_path / "other", synth.Sizes(2_000, 3_000, 60_000, seed=8))
    assert (tmp_path / "other" / "ratings.csv").read_bytes() != (copy[0] / "ratings.csv").read_bytes()


def test_reads_back_as_synthetic_ml25m(copy):
    out, marker, ratings, _ = copy
    ml = data.load(out)
    assert ml.dataset == "ml-25m" and ml.synthetic and ml.source == f"synthetic:{out}"
    summary = ml.summary()
    assert summary["synthetic"] is True and summary["user_features"] == []
    assert (summary["ratings"], summary["users"], summary["movies"]) == (60_000, 2_000, 3_000)
    assert ml.user_features == ()
    got = ml.ratings.assign(user_id=ml.ratings.user_id.astype(int), movie_id=ml.ratings.movie_id.astype(int))
    want = ratings.assign(rating=ratings.rating.astype(np.float32)).set_axis(list(got.columns), axis=1)
    key = ["user_id", "movie_id"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True), check_dtype=False)
    key = list(zip(got.user_id, got.movie_id, got.timestamp))
    assert key == sorted(key)  # canonical order
    with pytest.raises(UserError, match="holds a ml-25m copy, not ml-1m"):
        data.load(out, dataset="ml-1m")


def test_marker_counts_are_checked(tmp_path):
    out = tmp_path / "copy"
    synth.generate(out, synth.Sizes(50, 60, 1_000, seed=1))
    marker = json.loads((out / "synthetic.json").read_text())
    (out / "synthetic.json").write_text(json.dumps({**marker, "ratings": 999}))
    with pytest.raises(UserError, match=r"\(1000, 50, 60\), expected \(999, 50, 60\)"):
        data.load(out)
    (out / "synthetic.json").unlink()  # no marker: a real ML-25M is expected, and it is not one
    with pytest.raises(UserError, match="25000095"):
        data.load(out, dataset="ml-25m")


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(ratings=0), "--ratings must be"),
    (dict(ratings=4), "--ratings must be 5.."),
    (dict(ratings=10, users=5, movies=100), "need 25..300 ratings"),
    (dict(ratings=10_000, users=5, movies=100), "need 25..300 ratings"),
    (dict(ratings=100, users=0, movies=10), "must be positive"),
    (dict(ratings=100, seed=-1), "--seed"),
])
def test_impossible_sizes(kwargs, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)):
        synth.Sizes.for_ratings(**kwargs)


def test_a_catalogue_whose_movies_have_no_genre_still_gives_users_a_taste(tmp_path):
    # Seed 58 gives the one movie "(no genres listed)": the favourite genres are then
    # drawn alike over all genres instead of by a share of zero movies (a NaN before).
    synth.generate(tmp_path / "c", synth.Sizes(users=3, movies=1, ratings=3, seed=58))
    movies = pd.read_csv(tmp_path / "c" / "movies.csv")
    assert movies.genres.tolist() == [synth.NO_GENRES]
    assert len(pd.read_csv(tmp_path / "c" / "ratings.csv")) == 3


@pytest.mark.parametrize("ratings", [5, 7, 1_000, 54_321])
def test_default_sizes_always_work(tmp_path, ratings):
    sizes = synth.Sizes.for_ratings(ratings, seed=3)
    synth.generate(tmp_path / "c", sizes)
    frame = pd.read_csv(tmp_path / "c" / "ratings.csv")
    assert len(frame) == ratings and frame.userId.nunique() == sizes.users
    assert frame.groupby("userId").size().min() >= sizes.min_per_user


def test_heavy_users_reach_their_share(tmp_path):
    """Users who rate most of a small catalogue still get distinct movies (the fill-up path)."""
    sizes = synth.Sizes(users=4, movies=20, ratings=48, seed=0)  # at most 12 each: all full
    synth.generate(tmp_path / "c", sizes)
    frame = pd.read_csv(tmp_path / "c" / "ratings.csv")
    assert frame.groupby("userId").size().tolist() == [12, 12, 12, 12]
    assert not frame.duplicated(["userId", "movieId"]).any()


def test_refuses_to_overwrite_a_real_copy(tmp_path):
    real = tmp_path / "ml-25m"
    real.mkdir()
    (real / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(UserError, match="not synthetic"):
        synth.generate(real, synth.Sizes(5, 10, 25))
    assert (real / "ratings.csv").read_text() == "userId,movieId,rating,timestamp\n"
    synth.generate(tmp_path / "mine", synth.Sizes(5, 10, 25))
    synth.generate(tmp_path / "mine", synth.Sizes(5, 10, 30))  # its own copy: replaced
    assert json.loads((tmp_path / "mine" / "synthetic.json").read_text())["ratings"] == 30


def test_unwritable_out_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a folder"):
        synth.generate(tmp_path / "file", synth.Sizes(5, 10, 25))
    with pytest.raises(UserError, match="cannot write the synthetic copy"):
        synth.generate(tmp_path / "file" / "below", synth.Sizes(5, 10, 25))


def test_movies_csv_parses_as_csv(copy):
    with open(copy[0] / "movies.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert all(len(r) == 3 for r in rows)


def test_cli_synth_then_data(tmp_path):
    from test_datasets import _cli, _one_line_error

    out = _cli("synth", "--ratings", "5000", "--out", str(tmp_path / "s"), "--seed", "3", "--json")
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["ratings"] == 5000 and made["seed"] == 3 and made["out"] == str(tmp_path / "s")
    loaded = _cli("data", "--data", str(tmp_path / "s"), "--json")
    assert loaded.returncode == 0, loaded.stderr
    summary = json.loads(loaded.stdout)
    assert summary["synthetic"] is True and summary["dataset"] == "ml-25m"
    assert (summary["ratings"], summary["users"], summary["movies"]) == (5000, made["users"], made["movies"])
    assert "need" in _one_line_error(_cli("synth", "--ratings", "30", "--users", "10", "--out", str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()
