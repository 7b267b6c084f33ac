"""Recommender on the tiny run: exact and Annoy answers against brute force, profiles, CLI."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import synthetic
from recsys import index, paths, runs
from recsys.cli import main
from recsys.errors import UserError
from recsys.evaluate import query_embeddings
from recsys.recommend import Recommender, open_run


@pytest.fixture(scope="module")
def rec(tiny_recommender):
    """The tiny run's Recommender, shared by the module (read-only)."""
    return tiny_recommender


@pytest.fixture
def run_copy(tiny_run, tmp_path, monkeypatch):
    """The tiny run copied into a private store, so a test may break its index."""
    _, run = tiny_run
    store = tmp_path / "private-artifacts"
    shutil.copytree(run.path, store / "runs" / run.run_id)
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(store))
    return runs.load(run.run_id)


def _raw():
    """The synthetic tables as written to disk, independent of recsys's loader."""
    ratings, items, users = synthetic.tables()
    return ratings.astype({"user_id": str, "movie_id": str}), items.astype({"movie_id": str}), \
        users.astype({"user_id": str})


def _rated_ids(user_id):
    ratings, _, _ = _raw()
    return set(ratings[ratings.user_id == user_id].movie_id)


def _brute_force(rec, user_id, k, exclude_rated=True):
    """Movie ids of the k best dot products, computed here with a plain sort."""
    row = rec.prep.spec.user_ids.index(user_id)
    scores = rec.candidates.astype(np.float64) @ rec.query(row).astype(np.float64)
    banned = _rated_ids(user_id) if exclude_rated else set()
    order = [rec.prep.spec.movie_ids[r] for r in np.argsort(-scores, kind="stable")]
    return [m for m in order if m not in banned][:k], scores


USERS = [str(u) for u in range(1, synthetic.N_USERS + 1)]


# --------------------------------------------------------------------------- recommend
def test_exact_recommendations_equal_brute_force(rec):
    for user in USERS:
        top = rec.recommend(user, k=5, method="exact")
        want, scores = _brute_force(rec, user, 5)
        assert top.movie_id.tolist() == want, user
        rows = [rec.prep.spec.movie_ids.index(m) for m in want]
        np.testing.assert_allclose(top.score, scores[rows], rtol=1e-5, atol=1e-6)
        assert top.title.tolist() == [rec.titles[r] for r in rows]


def test_exclude_rated_removes_every_rated_movie(rec):
    for user in USERS:
        rated = _rated_ids(user)
        for method in ("exact", "annoy"):
            every = rec.recommend(user, k=synthetic.N_MOVIES, method=method)
            # Asking for the whole catalogue returns exactly the movies the user has not rated.
            assert set(every.movie_id) == {str(m) for m in range(1, synthetic.N_MOVIES + 1)} - rated
            assert len(every) == synthetic.N_MOVIES - len(rated)


def test_include_rated_keeps_rated_movies_that_rank(rec):
    checked = 0
    for user in USERS:
        with_rated, _ = _brute_force(rec, user, 5, exclude_rated=False)
        ranked_rated = set(with_rated) & _rated_ids(user)
        if not ranked_rated:
            continue
        checked += 1
        kept = rec.recommend(user, k=5, exclude_rated=False)
        assert kept.movie_id.tolist() == with_rated
        assert ranked_rated <= set(kept.movie_id)
        assert not ranked_rated & set(rec.recommend(user, k=5).movie_id)
    assert checked >= 5  # half the catalogue is rated, so rated movies often rank


def test_annoy_agrees_with_exact_on_tiny_data(rec):
    overlap = []
    for user in USERS:
        exact = rec.recommend(user, k=10, method="exact")
        approx = rec.recommend(user, k=10, method="annoy")
        assert len(approx) == 10 and not set(approx.movie_id) & _rated_ids(user)
        overlap.append(len(set(exact.movie_id) & set(approx.movie_id)) / 10)
    assert np.mean(overlap) >= 0.95


def test_predicted_ratings_are_present_and_finite(rec):
    for method in ("exact", "annoy"):
        top = rec.recommend("7", k=8, method=method)
        assert list(top.columns) == ["movie_id", "title", "score", "predicted_rating"]
        assert np.isfinite(top.predicted_rating).all()
        assert top.predicted_rating.between(-1, 7).all()  # a rating-scale number, not a logit
        assert np.isfinite(top.score).all() and top.score.is_monotonic_decreasing


def test_query_is_at_the_users_latest_rating_time(rec):
    ratings, _, _ = _raw()
    latest = ratings.groupby("user_id").timestamp.max()
    for row, user in enumerate(rec.prep.spec.user_ids):
        assert rec.latest_time[row] == latest[user], user
    # Serving uses every rating, so users whose latest rating fell in the test split matter most.
    later_than_training = [row for row, user in enumerate(rec.prep.spec.user_ids)
                           if latest[user] > rec.prep.last_timestamp[row]]
    assert len(later_than_training) >= 3
    for row in [0, 1, *later_than_training]:
        user = rec.prep.spec.user_ids[row]
        context = rec.context["context"][[row]]
        at_latest = query_embeddings(rec.model, rec.prep, np.array([row]), np.array([float(latest[user])]), context)[0]
        np.testing.assert_allclose(rec.query(row), at_latest, rtol=1e-6, err_msg=user)
        at_training = query_embeddings(rec.model, rec.prep, np.array([row]), rec.prep.last_timestamp[[row]],
                                       context)[0]
        if row in later_than_training:
            assert not np.allclose(rec.query(row), at_training), user  # the time does enter the query


def test_serving_context_is_the_users_latest_ratings_of_all(rec):
    ratings, _, _ = _raw()
    movie_rows = {m: i for i, m in enumerate(rec.prep.spec.movie_ids)}
    k = rec.context["context"].shape[1]
    checked = 0
    for row, user in enumerate(rec.prep.spec.user_ids):
        mine = ratings[ratings.user_id == user].sort_values("timestamp", ascending=False)
        if len(mine) > k and mine.timestamp.iloc[k - 1] == mine.timestamp.iloc[k]:
            continue  # a tie at the cut: either movie may be kept
        expected = {movie_rows[m] + 1 for m in mine.movie_id.iloc[:k]}
        got = rec.context["context"][row]
        assert set(got[got > 0]) == expected, user
        ctx_ratings = rec.context["context_rating"][row]
        assert sorted(ctx_ratings[ctx_ratings > 0]) == sorted(mine.rating.iloc[:k].astype(float)), user
        checked += 1
    assert checked >= 5


def test_session_lists_the_latest_ratings_the_query_uses(rec):
    user = rec.prep.spec.user_ids[0]
    ratings, _, _ = _raw()
    session = rec.session(user)
    n = rec.model.preset.context_size
    mine = ratings[ratings.user_id == user].sort_values("timestamp", ascending=False)
    assert len(session) == min(n, len(mine)) > 0
    assert set(session.movie_id) <= set(mine.movie_id)
    assert session.user_rating.between(1, 5).all()
    assert session.movie_id.iloc[0] in set(mine.movie_id[mine.timestamp == mine.timestamp.iloc[0]])


def test_user_ids_are_looked_up_as_text(rec):
    assert rec.recommend(3, k=4).movie_id.tolist() == rec.recommend(" 3 ", k=4).movie_id.tolist()


@pytest.mark.parametrize("user", ["99999", "0", "", "abc", -1])
def test_unknown_user_is_a_user_error(rec, user):
    with pytest.raises(UserError, match="unknown user id.*ids run from 1 to 40"):
        rec.recommend(user)


@pytest.mark.parametrize("k", [0, -1, 10_000, 1001, 2.5, "5", None])
def test_bad_k_is_a_user_error(rec, k):
    with pytest.raises(UserError, match="k must be a whole number from 1 to 1000"):
        rec.recommend("1", k=k)
    with pytest.raises(UserError, match="k must be"):
        rec.similar("1", k=k)


def test_unknown_method_is_a_user_error(rec):
    with pytest.raises(UserError, match="method must be one of"):
        rec.recommend("1", method="magic")


# --------------------------------------------------------------------------- similar
def test_similar_never_returns_the_movie_itself(rec):
    for movie in rec.prep.spec.movie_ids:
        for method in ("exact", "annoy"):
            for k in (5, synthetic.N_MOVIES - 1, synthetic.N_MOVIES + 5):
                got = rec.similar(movie, k=k, method=method)
                assert movie not in set(got.movie_id), (movie, method, k)
                assert len(got) == min(k, synthetic.N_MOVIES - 1)


def test_similar_ranks_by_cosine(rec):
    unit = rec.candidates / np.linalg.norm(rec.candidates, axis=1, keepdims=True)
    row = rec.prep.spec.movie_ids.index("3")
    cos = unit @ unit[row]
    want = [rec.prep.spec.movie_ids[r] for r in np.argsort(-cos) if r != row][:6]
    exact = rec.similar("3", k=6, method="exact")
    assert exact.movie_id.tolist() == want
    assert rec.similar("3", k=6, method="annoy").movie_id.tolist() == want
    assert "predicted_rating" not in exact.columns


def test_similar_unknown_movie_is_a_user_error(rec):
    with pytest.raises(UserError, match="unknown movie id"):
        rec.similar("4242")


# --------------------------------------------------------------------------- profile
def test_profile_fields_match_the_raw_tables(rec):
    ratings, items, users = _raw()
    for uid in ("1", "17", "40"):
        got = rec.profile(uid)
        user = users[users.user_id == uid].iloc[0]
        mine = ratings[ratings.user_id == uid]
        assert got["user_id"] == uid
        assert got["age"] == user.age and got["gender"] == user.gender
        assert got["occupation"] == user.occupation and got["zip_code"] == user.zip_code
        assert got["ratings"] == len(mine)
        assert got["mean_rating"] == pytest.approx(mine.rating.mean())
        top = got["top_rated"]
        assert list(top.columns) == ["movie_id", "movie_title", "user_rating"]
        assert len(top) == min(10, len(mine))
        assert top.user_rating.is_monotonic_decreasing
        assert top.user_rating.tolist() == sorted(mine.rating, reverse=True)[:10]
        titles = dict(zip(items.movie_id, items.movie_title))
        for m, title, r in top.itertuples(index=False):
            assert titles[m] == title
            assert mine[mine.movie_id == m].rating.iloc[0] == r
    assert len(rec.profile("1", top=3)["top_rated"]) == 3


def test_profile_of_an_unknown_user_is_a_user_error(rec):
    with pytest.raises(UserError, match="unknown user id"):
        rec.profile("4040")


# --------------------------------------------------------------------------- missing index
def test_a_deleted_index_is_a_user_error_then_rebuilt_on_open(run_copy):
    original = {p.name: p.read_bytes() for p in (run_copy.path / "index").iterdir()}
    shutil.rmtree(run_copy.path / "index")
    with pytest.raises(UserError, match=f"run {run_copy.run_id} has no index"):
        index.load(run_copy.path)

    lazy = Recommender(run_copy, _prep_for(run_copy), build_index=False)
    assert lazy.recommend("1", k=3, method="exact").shape[0] == 3  # exact needs no index
    with pytest.raises(UserError, match="has no index"):
        lazy.recommend("1", k=3, method="annoy")
    assert not index.exists(run_copy.path)

    opened = open_run(run_copy.run_id)  # builds the missing index by default
    assert index.exists(run_copy.path)
    rebuilt = {p.name: p.read_bytes() for p in (run_copy.path / "index").iterdir()}
    assert rebuilt == original  # same embeddings, same deterministic build
    assert len(opened.recommend("1", k=3, method="annoy")) == 3


def _prep_for(run):
    from recsys.prepare import prepare

    return prepare(None, run.config.split_seed)


def test_build_index_replaces_a_cached_index(run_copy):
    opened = open_run(run_copy.run_id)
    assert opened.index.meta["n_trees"] == index.N_TREES
    opened.build_index(n_trees=3, search_k=50)
    assert opened.index.meta["n_trees"] == 3 and opened.index.search_k == 50


def test_open_run_of_an_unknown_run_is_a_user_error(tiny_run):
    with pytest.raises(UserError, match="'nope' is not a run id"):
        open_run("nope")
    with pytest.raises(UserError, match="no finished run '0123456789ab'"):
        open_run("0123456789ab")


# --------------------------------------------------------------------------- CLI, in process
def test_cli_recommend_json(tiny_run, capsys, rec):
    _, run = tiny_run
    assert main(["recommend", "--user", "1", "--k", "5", "--json", "--run", run.run_id]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_id"] == run.run_id and out["user"] == "1" and out["method"] == "exact"
    assert len(out["recommendations"]) == 5
    assert [r["movie_id"] for r in out["recommendations"]] == _brute_force(rec, "1", 5)[0]
    assert all(set(r) == {"movie_id", "title", "score", "predicted_rating"} for r in out["recommendations"])


def test_cli_recommend_annoy_and_include_rated(tiny_run, capsys, rec):
    _, run = tiny_run
    assert main(["recommend", "--user", "2", "--k", "30", "--annoy", "--json", "--run", run.run_id]) == 0
    annoy = json.loads(capsys.readouterr().out)
    assert annoy["method"] == "annoy"
    assert not {r["movie_id"] for r in annoy["recommendations"]} & _rated_ids("2")
    assert main(["recommend", "--user", "2", "--k", "30", "--include-rated", "--json", "--run", run.run_id]) == 0
    every = json.loads(capsys.readouterr().out)["recommendations"]
    assert len(every) == synthetic.N_MOVIES and _rated_ids("2") <= {r["movie_id"] for r in every}


@pytest.mark.parametrize("args, message", [
    (["--user", "99999"], "unknown user id '99999'"),
    (["--user", "1", "--k", "0"], "k must be"),
    (["--user", "1", "--k", "10000"], "k must be"),
    (["--user", "1", "--k", "five"], "not an integer"),
    (["--user", "1", "--exact", "--annoy"], "not allowed with"),
])
def test_cli_recommend_bad_input_exits_2_with_one_line(tiny_run, capsys, args, message):
    _, run = tiny_run
    assert main(["recommend", *args, "--run", run.run_id]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err


def test_cli_index_reports_recall_for_users_and_movies(tiny_run, capsys):
    _, run = tiny_run
    assert main(["index", "--run", run.run_id, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_id"] == run.run_id
    assert out["n_trees"] == index.N_TREES and out["search_k"] == index.SEARCH_K
    for part in ("users", "movies"):
        assert set(out[part]) == {"recall_at_10", "p50_ms", "p95_ms"}
        assert out[part]["recall_at_10"] == 1.0  # search_k covers the 30 movies
    assert 0 <= out["annoy_dot_metric_recall_at_10"] <= 1


def test_cli_recommend_annoy_rebuilds_a_deleted_index(run_copy, capsys):
    shutil.rmtree(run_copy.path / "index")
    assert main(["recommend", "--user", "1", "--annoy", "--k", "3", "--json", "--run", run_copy.run_id]) == 0
    assert len(json.loads(capsys.readouterr().out)["recommendations"]) == 3
    assert index.exists(run_copy.path)


def test_cli_index_rebuild(run_copy, capsys):
    shutil.rmtree(run_copy.path / "index")
    assert main(["index", "--run", run_copy.run_id, "--rebuild", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["users"]["recall_at_10"] == 1.0
    assert index.exists(run_copy.path)
    assert [p.name for p in run_copy.path.iterdir() if p.name.startswith("index")] == ["index"]


# --------------------------------------------------------------------------- CLI, subprocess
def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "recsys", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=paths.ROOT, timeout=300)


def test_cli_process_recommend_for_a_missing_run_exits_2(tmp_path):
    out = _cli("recommend", "--user", "1", "--run", "0123456789ab")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no finished run '0123456789ab'"), out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import synthetic
from recsys import data
data.ML100K = synthetic.EXPECTED  # the tiny run's synthetic data passes the count check
from recsys.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_cli_process_on_the_tiny_run(tiny_run):
    """A real process: the exit code and the one-line error survive TensorFlow's start-up."""
    _, run = tiny_run
    driver = DRIVER.format(tests=os.path.dirname(__file__))
    env = {"RECSYS_ARTIFACTS": os.environ["RECSYS_ARTIFACTS"], "RECSYS_DATA": os.environ["RECSYS_DATA"]}
    bad = subprocess.run([sys.executable, "-c", driver, "recommend", "--user", "99999", "--run", run.run_id],
                         capture_output=True, text=True, env={**os.environ, **env}, cwd=paths.ROOT, timeout=300)
    assert bad.returncode == 2, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown user id '99999'"), bad.stderr
