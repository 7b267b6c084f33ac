"""Title keyword search: literal, case- and accent-blind, counted by hand; the top rater; CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import synthetic
from recsys import data, paths, search
from recsys.cli import main
from recsys.errors import UserError


@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    """The synthetic data through the real loader (no TensorFlow needed)."""
    return data.load(synthetic.write_grouplens(tmp_path_factory.mktemp("search")), expected=synthetic.EXPECTED)


@pytest.fixture(scope="module")
def rec(tiny_recommender):
    """The tiny run's Recommender, shared by the module (read-only)."""
    return tiny_recommender


def _raw():
    ratings, items, _ = synthetic.tables()
    return ratings.astype({"user_id": str, "movie_id": str}), items.astype({"movie_id": str})


def _ids_with(fragment):
    """Movie ids whose raw title contains `fragment` (plain str containment, by hand)."""
    _, items = _raw()
    return {m for m, t in zip(items.movie_id, items.movie_title) if fragment in t}


def _match(ml, word):
    return search.match_titles(ml.movies, ml.ratings, word)


# --------------------------------------------------------------------------- literal matching
def test_keyword_is_a_literal_substring_not_a_regex(ml):
    assert set(_match(ml, "(1995)").movie_id) == _ids_with("(1995)") == {"9", "17"}
    assert len(_match(ml, "(")) == synthetic.N_MOVIES  # every title has a "(year)"
    assert set(_match(ml, ", Les (").movie_id) == {"9"}
    for pattern in (".*", "[", "a+b", "^Batman", "Bat.an", "(?i)batman", "\\d"):
        with pytest.raises(UserError, match="no movie title contains"):
            _match(ml, pattern)


def test_keyword_ignores_case(ml):
    assert set(_match(ml, "BATMAN").movie_id) == {"3", "25"}
    assert set(_match(ml, "bAtMaN rEtUrNs").movie_id) == {"25"}
    assert set(_match(ml, "  batman  ").movie_id) == {"3", "25"}  # surrounding spaces are dropped


def test_keyword_ignores_accents_both_ways(ml):
    for word in ("miserables", "Misérables", "MISÉRABLES", "misérables, les"):
        got = _match(ml, word)
        assert got.movie_id.tolist() == ["9"] and got.movie_title.tolist() == [synthetic.MISERABLES], word
    assert set(_match(ml, "ceremonie").movie_id) == {"17"}


def test_a_keyword_that_folds_to_nothing_does_not_match_everything(ml):
    for word in ("€", "日本", "—"):
        with pytest.raises(UserError, match="no movie title contains"):
            _match(ml, word)


def test_a_keyword_that_folds_to_nothing_still_matches_literally():
    movies = pd.DataFrame({"movie_id": ["1", "2"], "movie_title": ["Plain (1995)", "Yen ¥ (1996)"]})
    ratings = pd.DataFrame({"user_id": ["1"], "movie_id": ["1"], "user_rating": [4.0], "timestamp": [1]})
    assert search.match_titles(movies, ratings, "¥").movie_id.tolist() == ["2"]


# --------------------------------------------------------------------------- counts and order
def test_matches_carry_rating_counts_and_means_computed_by_hand(ml):
    ratings, _ = _raw()
    got = _match(ml, "(19")  # every title
    assert list(got.columns) == ["movie_id", "movie_title", "ratings", "mean_rating"]
    for m, _, n, mean in got.itertuples(index=False):
        mine = ratings[ratings.movie_id == m].rating
        assert n == len(mine) and mean == pytest.approx(mine.mean()), m
    assert got.ratings.is_monotonic_decreasing  # most rated first
    assert got.ratings.dtype.kind == "i"


def test_both_chasing_amy_ids_are_separate_matches(ml):
    ratings, _ = _raw()
    got = _match(ml, "chasing amy")
    assert sorted(got.movie_id) == sorted(synthetic.CHASING_AMY_IDS)
    assert got.movie_title.tolist() == [synthetic.CHASING_AMY] * 2
    for m, _, n, mean in got.itertuples(index=False):
        assert n == (ratings.movie_id == m).sum()
        assert mean == pytest.approx(ratings[ratings.movie_id == m].rating.mean())
    assert got.ratings.iloc[0] >= got.ratings.iloc[1]


def test_a_movie_nobody_rated_matches_with_zero_ratings():
    movies = pd.DataFrame({"movie_id": ["1", "2"], "movie_title": ["Seen (1995)", "Unseen (1995)"]})
    ratings = pd.DataFrame({"user_id": ["1", "2"], "movie_id": ["1", "1"], "user_rating": [4.0, 2.0],
                            "timestamp": [1, 2]})
    got = search.match_titles(movies, ratings, "seen")
    assert got.movie_id.tolist() == ["1", "2"] and got.ratings.tolist() == [2, 0]
    assert got.mean_rating.iloc[0] == 3.0 and np.isnan(got.mean_rating.iloc[1])


# --------------------------------------------------------------------------- bad keywords
@pytest.mark.parametrize("word, message", [
    ("", "keyword is empty"),
    ("   ", "keyword is empty"),
    ("\t\n", "keyword is empty"),
    (None, "keyword is empty"),
    ("x" * 101, "the keyword is 101 characters long; keep it to 100"),
    ("zzzz", "no movie title contains 'zzzz'"),
])
def test_bad_keywords_are_user_errors_that_say_why(ml, word, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        _match(ml, word)


def test_a_100_character_keyword_is_allowed(ml):
    assert search.check_keyword("y" * 100) == "y" * 100
    assert search.check_keyword("  " + "y" * 100 + "  ") == "y" * 100  # length counts after stripping
    with pytest.raises(UserError, match="no movie title contains"):  # not "too long"
        _match(ml, "y" * 100)


# --------------------------------------------------------------------------- top rater
def _ratings(rows):
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "user_rating"]).assign(timestamp=0)


def test_top_rater_picks_the_highest_rating():
    r = _ratings([("1", "m", 3.0), ("2", "m", 5.0), ("3", "m", 4.0), ("1", "x", 5.0), ("1", "y", 5.0)])
    assert search.top_rater(r, "m") == "2"  # user 1 is more active but rated it lower


def test_top_rater_ties_go_to_the_user_with_more_ratings():
    r = _ratings([("10", "m", 5.0), ("2", "m", 5.0), ("7", "m", 5.0), ("9", "m", 2.0),
                  ("7", "a", 1.0), ("7", "b", 1.0),  # user 7: 3 ratings in all
                  ("2", "a", 3.0),  # user 2: 2 ratings
                  ("9", "a", 1.0), ("9", "b", 1.0), ("9", "c", 1.0), ("9", "d", 1.0)])  # most active, low
    assert search.top_rater(r, "m") == "7"
    # Same rating and activity: the smaller id (numerically, "2" < "10") wins, so the answer is stable.
    r2 = _ratings([("10", "m", 5.0), ("2", "m", 5.0), ("10", "a", 1.0), ("2", "b", 1.0)])
    assert search.top_rater(r2, "m") == "2"
    assert search.top_rater(r2.iloc[::-1], "m") == "2"


def test_top_rater_of_an_unrated_movie_is_a_user_error():
    with pytest.raises(UserError, match="nobody rated movie q"):
        search.top_rater(_ratings([("1", "m", 5.0)]), "q")


def test_top_rater_on_the_synthetic_data_by_hand(ml):
    ratings, _ = _raw()
    activity = ratings.user_id.value_counts()
    for movie in ("3", "12", "21"):
        rated = ratings[ratings.movie_id == movie]
        best = rated[rated.rating == rated.rating.max()]
        busiest = best[best.user_id.map(activity) == best.user_id.map(activity).max()]
        want = min(busiest.user_id, key=int)
        assert search.top_rater(ml.ratings, movie) == want, movie


# --------------------------------------------------------------------------- Recommender.keyword
def test_recommender_keyword_expands_the_most_rated_match(rec):
    found = rec.keyword("batman", k=5)
    assert set(found["matches"].movie_id) == {"3", "25"}
    chosen = found["matches"].movie_id.iloc[0]
    titles = dict(zip(_raw()[1].movie_id, _raw()[1].movie_title))
    assert found["movie_id"] == chosen and found["title"] == titles[chosen]
    neighbours = found["neighbours"]
    assert len(neighbours) == 5 and chosen not in set(neighbours.movie_id)
    assert neighbours.movie_id.tolist() == rec.similar(chosen, 5).movie_id.tolist()
    assert found["top_rater"] == search.top_rater(rec.prep.ml.ratings, chosen)
    recs = found["recommendations"]
    assert recs.movie_id.tolist() == rec.recommend(found["top_rater"], 5, method="annoy").movie_id.tolist()
    ratings, _ = _raw()
    assert not set(recs.movie_id) & set(ratings[ratings.user_id == found["top_rater"]].movie_id)


def test_recommender_keyword_can_expand_another_match(rec):
    found = rec.keyword("BATMAN", k=3, movie_id="25")
    assert found["movie_id"] == "25" and found["title"] == "Batman Returns (1992)"
    assert "25" not in set(found["neighbours"].movie_id)
    assert found["top_rater"] == search.top_rater(rec.prep.ml.ratings, "25")
    amy = rec.keyword("chasing amy", k=3, movie_id=21)
    assert amy["movie_id"] == "21" and len(amy["matches"]) == 2
    with pytest.raises(UserError, match="movie 7 does not match 'batman'"):
        rec.keyword("batman", movie_id="7")


def test_recommender_keyword_bad_input(rec):
    for word in ("", "   ", "z" * 101, "zzzz", ".*"):
        with pytest.raises(UserError):
            rec.keyword(word)


# --------------------------------------------------------------------------- CLI
def test_cli_search_json_lists_matches_neighbours_and_picks(tiny_run, capsys):
    _, run = tiny_run
    assert main(["search", "batman", "--json", "--k", "4", "--run", run.run_id]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_id"] == run.run_id
    assert {m["movie_title"] for m in out["matches"]} == {"Batman (1989)", "Batman Returns (1992)"}
    assert all(set(m) == {"movie_id", "movie_title", "ratings", "mean_rating"} for m in out["matches"])
    assert out["movie_id"] == out["matches"][0]["movie_id"]
    assert len(out["neighbours"]) == 4 and out["movie_id"] not in {n["movie_id"] for n in out["neighbours"]}
    assert out["top_rater"] and len(out["recommendations"]) == 4
    assert all("predicted_rating" in r for r in out["recommendations"])


def test_cli_search_accents_and_chasing_amy(tiny_run, capsys):
    _, run = tiny_run
    assert main(["search", "miserables", "--json", "--run", run.run_id]) == 0
    assert [m["movie_title"] for m in json.loads(capsys.readouterr().out)["matches"]] == [synthetic.MISERABLES]
    assert main(["search", "Chasing Amy", "--movie", "21", "--json", "--run", run.run_id]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(m["movie_id"] for m in out["matches"]) == ["12", "21"] and out["movie_id"] == "21"


@pytest.mark.parametrize("word, message", [
    ("zzzz", "no movie title contains 'zzzz'"),
    ("   ", "keyword is empty"),
    ("w" * 101, "101 characters"),
])
def test_cli_search_bad_keyword_exits_2_with_one_line(tiny_run, capsys, word, message):
    _, run = tiny_run
    assert main(["search", word, "--run", run.run_id]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_cli_search_rebuilds_a_deleted_index(tiny_run, tmp_path, monkeypatch, capsys):
    import shutil

    from recsys import index, runs

    _, run = tiny_run
    store = tmp_path / "private-artifacts"
    shutil.copytree(run.path, store / "runs" / run.run_id)
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(store))
    copy = runs.load(run.run_id)
    shutil.rmtree(copy.path / "index")
    with pytest.raises(UserError, match="has no index"):
        index.load(copy.path)
    assert main(["search", "batman", "--json", "--run", run.run_id]) == 0
    assert len(json.loads(capsys.readouterr().out)["neighbours"]) == 10
    assert index.exists(copy.path)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "recsys", *args], capture_output=True, text=True,
                          env=dict(os.environ), cwd=paths.ROOT, timeout=300)


@pytest.mark.parametrize("word, message", [("   ", "keyword is empty"), ("q" * 101, "101 characters long")])
def test_cli_process_bad_keyword_fails_before_loading_anything(word, message):
    out = _cli("search", word)  # no data source and no runs: the keyword check comes first
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr
    assert out.stdout == ""
