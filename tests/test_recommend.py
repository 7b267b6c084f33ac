"""Recommender on the tiny run: exact and Annoy answers against brute force, profiles, CLI."""
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import synthetic
from recsys import baselines, index, newuser, paths, runs, taste
from recsys.cli import main
from recsys.errors import UserError
from recsys.evaluate import encode_queries, predict_ratings, query_embeddings
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
    """Movie ids of the k best retrieval scores, computed here with a plain sort."""
    row = rec.prep.spec.user_ids.index(user_id)
    scores = rec.list_scores(row).astype(np.float64)
    banned = _rated_ids(user_id) if exclude_rated else set()
    order = [rec.prep.spec.movie_ids[r] for r in np.argsort(-scores, kind="stable")]
    return [m for m in order if m not in banned][:k], scores


USERS = [str(u) for u in range(1, synthetic.N_USERS + 1)]


# --------------------------------------------------------------------------- recommend
def test_exact_recommendations_equal_brute_force(rec):
    for user in USERS:
        top = rec.recommend(user, k=5, method="exact", rank="watch")
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
        kept = rec.recommend(user, k=5, exclude_rated=False, rank="watch")
        assert kept.movie_id.tolist() == with_rated
        assert ranked_rated <= set(kept.movie_id)
        assert not ranked_rated & set(rec.recommend(user, k=5, rank="watch").movie_id)
    assert checked >= 5  # half the catalogue is rated, so rated movies often rank


def test_annoy_agrees_with_exact_on_tiny_data(rec):
    overlap = []
    for user in USERS:
        exact = rec.recommend(user, k=10, method="exact", rank="watch")
        approx = rec.recommend(user, k=10, method="annoy", rank="watch")
        assert len(approx) == 10 and not set(approx.movie_id) & _rated_ids(user)
        overlap.append(len(set(exact.movie_id) & set(approx.movie_id)) / 10)
    assert np.mean(overlap) >= 0.95


def test_predicted_ratings_are_present_and_finite(rec):
    for method in ("exact", "annoy"):
        top = rec.recommend("7", k=8, method=method, rank="watch")
        assert list(top.columns) == ["movie_id", "title", "score", "predicted_rating", "blended", "because"]
        assert np.isfinite(top.predicted_rating).all()
        assert top.predicted_rating.between(-1, 7).all()  # a rating-scale number, not a logit
        assert np.isfinite(top.score).all() and top.score.is_monotonic_decreasing


@pytest.mark.parametrize("user", ["3", "11", "29"])
def test_each_order_sorts_the_same_candidates_by_its_own_score(rec, user):
    n = rec.blend.candidates
    watch = rec.recommend(user, k=n, rank="watch")
    love = rec.recommend(user, k=n, rank="love")
    blend = rec.recommend(user, k=n, rank="blend")
    assert set(watch.movie_id) == set(love.movie_id) == set(blend.movie_id)
    assert love.predicted_rating.is_monotonic_decreasing and blend.blended.is_monotonic_decreasing
    # The blended score by hand: standardised retrieval + beta (prediction - the user's mean
    # rating) + guard log sigmoid((prediction - 3.25) / 0.5).
    row = rec.user_row(user)
    z = (watch.score - watch.score.mean()) / watch.score.std(ddof=0)
    guard = -np.log1p(np.exp(-(watch.predicted_rating - 3.25) / 0.5))
    expected = z + rec.blend.beta * (watch.predicted_rating - rec.mean_rating[row]) + rec.blend.guard * guard
    np.testing.assert_allclose(watch.blended, expected, rtol=1e-4, atol=1e-4)
    # A shorter list is the head of the same order.
    assert rec.recommend(user, k=3, rank="love").movie_id.tolist() == love.movie_id.tolist()[:3]


def test_the_rating_head_scores_each_movie_as_the_user_is_now(rec):
    top = rec.recommend("5", k=6, rank="watch")
    row = rec.user_row("5")
    now, side = rec.now(row)
    rows = [rec.movie_row(m) for m in top.movie_id]
    expected = predict_ratings(rec.model, np.repeat(now[None], 6, 0), rec.candidates, np.full(6, row),
                               np.array(rows), np.repeat(side[None], 6, 0))
    np.testing.assert_allclose(top.predicted_rating, expected, rtol=1e-5)


def test_the_now_query_is_at_the_users_latest_rating_with_every_rating_before(rec):
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
        queries = {"user": np.array([row], np.int32), "timestamp": np.array([float(latest[user])]),
                   **rec.timeline.pointers(np.array([row]), np.array([float(latest[user])])).as_dict()}
        expected, _ = query_embeddings(rec.model, rec.timeline, queries)
        np.testing.assert_allclose(rec.now(row)[0], expected[0], rtol=1e-5, err_msg=user)


def test_list_scores_follow_the_runs_taste_by_hand(rec):
    t, row, temp = rec.taste, 7, rec.model.preset.temperature
    counts_term = t.prior * rec.user_vectors[:, -1] / temp  # prior x log(1 + training count)
    if t.mixture and t.horizon != taste.NOW:
        found = taste.Moments.of(rec.timeline, np.array([row]))
        embedded, _ = query_embeddings(rec.model, rec.timeline, found.queries)
        w = taste.weights(found, rec.latest_time, t.horizon)
        logits = embedded @ rec.candidates.T / temp
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        expected = np.log((w[:, None] * probs).sum(0) / w.sum()) + counts_term
    else:
        expected = rec.user_vectors @ rec.query(row) / temp
    if t.item_item:  # every movie the user rated votes with its item-item row
        b, scale = rec.model.item_item.b.numpy(), float(rec.model.item_item.scale.numpy())
        expected = expected + t.item_item * b[rec.rated[row]].sum(0) / scale
    np.testing.assert_allclose(rec.list_scores(row), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["exact", "annoy"])
def test_an_item_item_weight_adds_the_rated_movies_rows_to_a_list(rec, monkeypatch, method):
    row = 7
    plain = rec.list_scores(row)
    monkeypatch.setattr(rec, "taste", replace(rec.taste, item_item=rec.taste.item_item + 2.0))
    b, scale = rec.model.item_item.b.numpy(), float(rec.model.item_item.scale.numpy())
    np.testing.assert_allclose(rec.list_scores(row) - plain, 2.0 * b[rec.rated[row]].sum(0) / scale,
                               rtol=1e-4, atol=1e-4)
    user = rec.prep.spec.user_ids[row]
    got = rec.recommend(user, 5, method=method, rank="watch")
    scores = rec.list_scores(row)
    # Annoy's pool is rescored by the list's scores too: its list is in their order.
    np.testing.assert_allclose(got.score, scores[[rec.movie_row(m) for m in got.movie_id]], rtol=1e-5, atol=1e-5)
    assert list(got.score) == sorted(got.score, reverse=True)


def test_each_list_is_timed_in_the_latency_log_when_asked(rec, tmp_path, monkeypatch):
    from recsys.recommend import LATENCY_LOG

    log = tmp_path / "latency.tsv"
    rec.recommend(USERS[0], 5)
    assert not log.exists()
    monkeypatch.setenv(LATENCY_LOG, str(log))
    rec.recommend(USERS[0], 5)
    rec.recommend_new([("3", 5.0)], k=5)
    lines = [line.split("\t") for line in log.read_text().splitlines()]
    assert [name for name, _ in lines] == ["recommend", "recommend_new"] and all(float(ms) > 0 for _, ms in lines)


def test_the_list_query_is_the_runs_validated_taste(rec):
    t = rec.taste
    row = 4
    if t.horizon == taste.NOW:
        np.testing.assert_allclose(rec.query(row)[:-1], rec.now(row)[0], rtol=1e-6)
    else:
        found = taste.Moments.of(rec.timeline, np.array([row]))
        embedded, _ = query_embeddings(rec.model, rec.timeline, found.queries)
        expected = taste.mean_queries(embedded, found, rec.latest_time, t.horizon, rec.prep.spec.n_users)[row]
        np.testing.assert_allclose(rec.query(row)[:-1], expected, rtol=1e-5)
    assert rec.query(row)[-1] == pytest.approx(t.prior)


def test_because_lists_the_liked_rated_movies_most_like_each_recommendation(rec):
    ratings, _, _ = _raw()
    for user in ("2", "9", "33"):
        mine = ratings[ratings.user_id == user]
        liked = set(mine.movie_id[mine.rating >= 4])
        pool = liked or set(mine.movie_id)
        top = rec.recommend(user, k=5)
        unit = rec.unit_candidates
        for movie, because in zip(top.movie_id, top.because):
            assert len(because) == min(3, len(pool)) and set(because) <= pool, user
            sims = {m: float(unit[rec.movie_row(m)] @ unit[rec.movie_row(movie)]) for m in pool}
            best = sorted(sims.values(), reverse=True)[:len(because)]
            np.testing.assert_allclose(sorted((sims[m] for m in because), reverse=True), best, rtol=1e-6)


def test_a_new_user_gets_a_list_from_their_ratings_alone(rec):
    rated = [("3", 5.0), ("25", 4.0), ("9", 1.0)]
    top = rec.recommend_new(rated, k=6)
    assert len(top) == 6 and not {"3", "25", "9"} & set(top.movie_id)
    assert top.blended.is_monotonic_decreasing
    assert all(set(b) == {"3", "25"} for b in top.because)  # the liked ones explain it, never the 1-star one
    # The scores are the model's own answers for the unknown user with these ratings as history:
    # the query after the latest rating, or the mixture of one query per rating, as validated.
    rows, stars = np.array([rec.movie_row(m) for m, _ in rated]), np.array([5, 4, 1.0])
    t, temp = rec.new_user_taste, rec.model.preset.temperature
    queries = np.stack([encode_queries(rec.model, newuser.inputs(rec.model, rows[:end], stars[:end],
                                                                 float(rec.latest_time.max()),
                                                                 rec.prep.spec.n_users))[0][0]
                        for end in ((1, 2, 3) if t.mixture else (3,))])
    if t.fold_in:  # the latest query refitted to the rated movies (fold_in is checked by hand below)
        queries = newuser.fold_in(queries, [rows], rec.candidates, temp, t.fold_in)
    logits = queries @ rec.candidates.T / temp
    if t.mixture:
        probs = np.exp(logits - logits.max(1, keepdims=True))
        expected = np.log((probs / probs.sum(1, keepdims=True)).mean(0))
    else:
        expected = logits[0]
    expected = expected + t.prior * rec.user_vectors[:, -1] / temp
    watch = rec.recommend_new(rated, k=6, rank="watch")
    np.testing.assert_allclose(watch.score, expected[[rec.movie_row(m) for m in watch.movie_id]], rtol=1e-4,
                               atol=1e-5)
    # Every further rating changes the answer.
    assert rec.recommend_new(rated + [("12", 5.0)], k=6, rank="watch").score.tolist() != watch.score.tolist()


def test_fold_in_by_hand():
    # One dimension, two movies at +1 and -1, the first one rated, temperature 1.
    candidates, rated = np.array([[1.0], [-1.0]]), [np.array([0])]
    one = newuser.fold_in(np.zeros((1, 1)), rated, candidates, 1.0, steps=1, rate=0.25, l2=0.1)
    assert one[0, 0] == pytest.approx(0.25)  # gradient 1 - (0.5 - 0.5) - 0 at q = 0
    p0 = 1 / (1 + math.exp(-0.5))  # the softmax of (0.25, -0.25)
    gradient = 1 - (p0 - (1 - p0)) - 2 * 0.1 * 0.25
    two = newuser.fold_in(np.zeros((1, 1)), rated, candidates, 1.0, steps=2, rate=0.25, l2=0.1)
    assert two[0, 0] == pytest.approx(0.25 + 0.25 * gradient, rel=1e-6)
    assert newuser.fold_in(np.full((1, 1), 0.3), rated, candidates, 1.0, steps=0)[0, 0] == pytest.approx(0.3)
    # Two rated movies of three (at +1, 0 and -1): the likelihood and the L2 are per rated movie.
    candidates, rated = np.array([[1.0], [0.0], [-1.0]]), [np.array([0, 1])]
    one = newuser.fold_in(np.zeros((1, 1)), rated, candidates, 1.0, steps=1, rate=0.25, l2=0.1)
    assert one[0, 0] == pytest.approx(0.25 * (1 - 2 * 0.0) / 2)  # (sum of rated c - 2 x E[c]) / 2, E[c] = 0
    p = np.exp([0.125, 0.0, -0.125]) / np.exp([0.125, 0.0, -0.125]).sum()
    gradient = (1 - 2 * (p[0] - p[2])) / 2 - 2 * 0.1 * 0.125 / 2
    two = newuser.fold_in(np.zeros((1, 1)), rated, candidates, 1.0, steps=2, rate=0.25, l2=0.1)
    assert two[0, 0] == pytest.approx(0.125 + 0.25 * gradient, rel=1e-6)


def test_fold_in_raises_each_users_rated_movies_likelihood():
    rng = np.random.default_rng(3)
    candidates, queries = rng.normal(size=(40, 8)), rng.normal(size=(2, 8))
    rated = [np.array([1, 5, 7]), np.array([30])]

    def loglik(q):
        logits = q @ candidates.T / 0.5
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        return [logp[u, r].mean() for u, r in enumerate(rated)]

    folded = newuser.fold_in(queries, rated, candidates, 0.5, steps=20)
    assert all(after > before for before, after in zip(loglik(queries), loglik(folded)))


def test_a_new_user_list_folds_in_when_its_taste_says_so(rec, monkeypatch):
    rated = [("3", 5.0), ("25", 4.0), ("9", 1.0)]
    rows, temp = np.array([rec.movie_row(m) for m, _ in rated]), rec.model.preset.temperature
    plain = taste.Taste(taste.NOW, 0.5)
    monkeypatch.setattr(rec, "new_user_taste", plain)
    before = rec.recommend_new(rated, k=6, rank="watch")
    monkeypatch.setattr(rec, "new_user_taste", replace(plain, fold_in=10))
    for method in ("exact", "annoy"):
        watch = rec.recommend_new(rated, k=6, rank="watch", method=method)
        latest = encode_queries(rec.model, newuser.inputs(rec.model, rows, np.array([5, 4, 1.0]),
                                                          float(rec.latest_time.max()), rec.prep.spec.n_users))[0]
        query = newuser.fold_in(latest, [rows], rec.candidates, temp, 10)[0]
        expected = query @ rec.candidates.T / temp + 0.5 * rec.user_vectors[:, -1] / temp
        np.testing.assert_allclose(watch.score, expected[[rec.movie_row(m) for m in watch.movie_id]], rtol=1e-4,
                                   atol=1e-5)
        assert not {"3", "25", "9"} & set(watch.movie_id)
    assert watch.score.tolist() != before.score.tolist()


def test_a_new_users_moments_are_the_queries_of_their_first_ratings(rec):
    rows, stars, now = np.array([3, 11, 5, 20]), np.array([5.0, 2, 4, 3]), float(rec.latest_time.max())
    n_users = rec.prep.spec.n_users
    moments, _ = encode_queries(rec.model, newuser.inputs(rec.model, rows, stars, now, n_users, ends=[1, 2, 4]))
    for j, end in enumerate((1, 2, 4)):
        alone, _ = encode_queries(rec.model, newuser.inputs(rec.model, rows[:end], stars[:end], now, n_users))
        np.testing.assert_allclose(moments[j], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mixture", [False, True])
def test_new_user_list_scores_by_hand(mixture):
    rng = np.random.default_rng(1)
    embedded, candidates = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)
    prior_col = np.log1p(np.arange(len(candidates), dtype=np.float32)) * 0.5  # temperature x log1p(count)
    t = taste.Taste(math.inf if mixture else taste.NOW, 0.75, mixture)
    got = newuser.list_scores(embedded, candidates, prior_col, 0.5, t)
    logits = embedded @ candidates.T / 0.5
    if mixture:
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        expected = np.log(probs.mean(0))
    else:
        expected = logits[-1]  # the latest moment's query
    np.testing.assert_allclose(got, expected + 0.75 * prior_col / 0.5, rtol=1e-5, atol=1e-5)


def test_the_new_user_taste_is_chosen_on_validation_alone(_tiny_session):
    from recsys.checkpoint import load_model

    _, prep, run = _tiny_session
    model = load_model(run, prep)
    candidates = model.candidate_embeddings(prep.spec.n_movies)
    chosen, grid = newuser.choose_new_user_taste(model, prep, candidates)
    assert len(grid) == len(newuser.new_user_tastes(model)) and max(grid.values()) == grid[
        taste.grid_key(chosen, "mixture" if chosen.mixture else "latest")]
    assert {t.fold_in for t in newuser.new_user_tastes(model)} == {0, *newuser.FOLD_STEPS}
    assert run.info["new_user"] == chosen.to_dict()  # what training stored is this choice
    rng = np.random.default_rng(0)
    scrambled = replace(prep, test=dict(prep.test, movie=rng.permutation(prep.test["movie"])))
    assert newuser.choose_new_user_taste(model, scrambled, candidates) == (chosen, grid)
    quality = newuser.cold_start_metrics(model, prep, candidates, chosen)
    assert set(quality) == {"model", "ease", "popularity"} and all(0 <= v <= 1 for v in quality.values())


def test_a_new_users_age_and_gender_enter_the_query(rec):
    rated = [("3", 5.0), ("25", 4.0)]
    plain = rec.recommend_new(rated, k=5, rank="watch").score.to_numpy()
    older = rec.recommend_new(rated, k=5, rank="watch", age=70, gender="F").score.to_numpy()
    assert not np.allclose(plain, older)


@pytest.mark.parametrize("rated, message", [
    ([("4242", 5.0)], "unknown movie id"),
    ([("3", 6.0)], "whole number from 1 to 5"),
    ([("3", 0.0)], "whole number from 1 to 5"),
    ([("3", 4.5)], "whole number from 1 to 5"),
    ([("3", 5.0), ("3", 4.0)], "rated twice"),
    ([], "at least one rating"),
    ([(str(i), 5.0) for i in range(10_000)], "at most 500"),
])
def test_a_bad_new_user_list_is_a_user_error(rec, rated, message):
    with pytest.raises(UserError, match=message):
        rec.recommend_new(rated)


@pytest.mark.parametrize("text, message", [
    ("", "at least one rating"), ("50", "not MOVIE:STARS"), ("50:x", "not a number"), (":5", "not MOVIE:STARS"),
    ("1:5,1:4", "rated twice"), ("1:7", "from 1 to 5"), (",".join(f"{i}:5" for i in range(10_000)), "at most 500"),
])
def test_parse_rated_rejects_bad_lists(text, message):
    with pytest.raises(UserError, match=message):
        newuser.parse_rated(text)


def test_parse_rated_reads_a_list():
    assert newuser.parse_rated(" 50:5, 181:4 ,100:5 ") == [("50", 5.0), ("181", 4.0), ("100", 5.0)]


def test_cli_recommend_for_a_new_user(tiny_run, capsys, rec):
    _, run = tiny_run
    assert main(["recommend", "--rated", "3:5,25:4,9:1", "--k", "4", "--json", "--run", run.run_id]) == 0
    out = json.loads(capsys.readouterr().out)
    got = [r["movie_id"] for r in out["recommendations"]]
    assert got == rec.recommend_new([("3", 5.0), ("25", 4.0), ("9", 1.0)], k=4).movie_id.tolist()
    assert len(got) == 4 and not {"3", "25", "9"} & set(got)
    assert all(isinstance(r["because"], list) and r["because"] for r in out["recommendations"])


@pytest.mark.parametrize("args, message", [
    (["--rated", "4242:5"], "unknown movie id"), (["--rated", "3:9"], "from 1 to 5"),
    (["--rated", "3:5,3:4"], "rated twice"), (["--rated", ""], "at least one rating"),
    (["--rated", "3:5", "--user", "1"], "not allowed with"), ([], "one of the arguments --user --rated"),
])
def test_cli_new_user_bad_input_exits_2(tiny_run, capsys, args, message):
    _, run = tiny_run
    assert main(["recommend", *args, "--run", run.run_id]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and message in lines[0], captured.err


def test_session_is_the_users_latest_ratings_of_all(rec):
    ratings, _, _ = _raw()
    k = rec.model.preset.context_size
    checked = 0
    for row, user in enumerate(rec.prep.spec.user_ids):
        mine = ratings[ratings.user_id == user].sort_values("timestamp", ascending=False)
        if len(mine) > k and mine.timestamp.iloc[k - 1] == mine.timestamp.iloc[k]:
            continue  # a tie at the cut: either movie may be kept
        got = rec.session(user)
        assert set(got.movie_id) == set(mine.movie_id.iloc[:k]), user
        assert sorted(got.user_rating) == sorted(mine.rating.iloc[:k].astype(int)), user
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
    assert out["rank"] == "blend"
    assert [r["movie_id"] for r in out["recommendations"]] == rec.recommend("1", k=5).movie_id.tolist()
    assert all(set(r) == {"movie_id", "title", "score", "predicted_rating", "blended", "because"}
               for r in out["recommendations"])
    blended = [r["blended"] for r in out["recommendations"]]
    assert blended == sorted(blended, reverse=True)


@pytest.mark.parametrize("rank", ["watch", "love"])
def test_cli_recommend_rank(tiny_run, capsys, rec, rank):
    _, run = tiny_run
    assert main(["recommend", "--user", "4", "--k", "6", "--rank", rank, "--candidates", "20", "--json",
                 "--run", run.run_id]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rank"] == rank and out["candidates"] == 20
    key = {"watch": "score", "love": "predicted_rating"}[rank]
    values = [r[key] for r in out["recommendations"]]
    assert values == sorted(values, reverse=True)
    assert [r["movie_id"] for r in out["recommendations"]] == rec.recommend(
        "4", k=6, rank=rank, candidates=20).movie_id.tolist()


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
    (["--user", "1", "--rank", "best"], "unknown order 'best'"),
    (["--user", "1", "--candidates", "0"], "candidates must be"),
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


@pytest.mark.parametrize("name", ["popularity", "ease", "itemknn"])
def test_a_baselines_list_for_a_user_leaves_rated_movies_out(rec, name):
    top = rec.baseline(name, "6", k=5)
    assert len(top) == 5 and not set(top.movie_id) & _rated_ids("6")
    assert top.score.is_monotonic_decreasing
    assert ("predicted_rating" in top) == (name != "ease")
    fitted = baselines.refit(name, rec.prep, baselines.cached_metrics(rec.prep)[name]["params"])
    row = rec.user_row("6")
    np.testing.assert_allclose(top.score, fitted.user_scores[row, [rec.movie_row(m) for m in top.movie_id]])


def test_an_unknown_baseline_is_a_user_error(rec):
    with pytest.raises(UserError, match="unknown baseline 'svd'"):
        rec.baseline("svd", "1")


def test_an_unwritable_latency_log_never_costs_a_list(rec, tmp_path, monkeypatch):
    from recsys.recommend import LATENCY_LOG

    monkeypatch.setenv(LATENCY_LOG, str(tmp_path))  # a folder: opening it for appending fails
    assert len(rec.recommend(USERS[0], 5)) == 5
