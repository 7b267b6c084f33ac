"""Recommendations for a user and neighbours of a movie, exact and through Annoy.

A list is made in two stages (recsys/ranking.py): the user's query retrieves the
run's validated number of candidates, exactly or through Annoy, and the rating head
scores them; the order is by retrieval ("watch"), predicted rating ("love") or the
validated blend of both (the default).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time

import numpy as np
import pandas as pd

from recsys import index as annoy_index
from recsys import baselines, datasets, features, itemitem, moviemap, newuser, ranking, runs, search, taste
from recsys.errors import UserError
from recsys.checkpoint import load_model
from recsys.evaluate import encode_queries, query_embeddings
from recsys.history import Timeline, per_user_items
from recsys.metrics import LIKED
from recsys.prepare import Prepared, latest_times

METHODS = ("exact", "annoy")
MAX_K = 1000
EXPLAINED = 3  # rated movies shown as the reason for each recommendation
EAGER_RATINGS = 2_000_000  # up to this many ratings every user's query is computed at start
ANNOY_POOL = 200  # movies an index retrieves for a mixture taste to rescore
# A file each list's milliseconds are appended to, when set: how bench/reliability.py
# measures the lists a Streamlit server makes for its browser sessions, in that server.
LATENCY_LOG = "RECSYS_LATENCY_LOG"


def _timed(method):
    """Append `method`'s name and milliseconds to $RECSYS_LATENCY_LOG after each call (if set)."""
    @functools.wraps(method)
    def timed(*args, **kwargs):
        path = os.environ.get(LATENCY_LOG)
        if not path:
            return method(*args, **kwargs)
        start = time.perf_counter()
        out = method(*args, **kwargs)
        try:
            with open(path, "a") as f:  # one short append per line: lines from many threads don't interleave
                f.write(f"{method.__name__}\t{(time.perf_counter() - start) * 1000:.3f}\n")
        except OSError:
            pass  # timing is for the bench: an unwritable log never costs a person their list
        return out
    return timed


class Recommender:
    """A run's model, catalogue embeddings and indexes, ready to answer queries.

    Serving treats every known rating as the user's history: "now" is just after the
    user's latest rating, and "already rated" means rated anywhere in the data.
    """

    def __init__(self, run: runs.Run, prep: Prepared, build_index: bool = True):
        self.run, self.prep = run, prep
        self.auto_build = build_index  # build a missing index, rebuild a damaged one
        # One model call at a time: Streamlit sessions are threads sharing this object, and
        # concurrent Keras calls race while a Sequential builds for a new input shape
        # ("Could not compute output KerasTensor", seen with 8 sessions in bench/reliability.py).
        self._model_lock = threading.Lock()
        self.model = load_model(run, prep)
        self.candidates = self.model.candidate_embeddings(prep.spec.n_movies)
        self.rating_head = self.model.rating_head.frozen()  # lists are scored in NumPy
        self.taste = self._servable(taste.Taste.from_dict(run.info.get("taste")))
        # A run from before new users had their own taste: their latest query with the run's prior.
        self.new_user_taste = self._servable(taste.Taste.from_dict(run.info["new_user"]) if "new_user" in run.info
                                             else taste.Taste(taste.NOW, self.taste.prior))
        self.blend = ranking.Blend.from_dict(run.info.get("blend"))
        n_users = prep.spec.n_users
        encoded = features.encode(prep.spec, prep.ml.ratings)
        self.timeline = Timeline.of(encoded, n_users)
        self.rated = per_user_items(encoded, n_users)
        self.latest_time = latest_times(encoded, n_users, prep.spec.timestamp_boundaries[-1])
        self.mean_rating = (np.bincount(encoded["user"], encoded["rating"], n_users)
                            / np.maximum(np.bincount(encoded["user"], minlength=n_users), 1))
        counts = np.bincount(prep.train["movie"], minlength=prep.spec.n_movies)
        self.user_vectors = taste.user_vectors(self.candidates, counts, self.model.preset.temperature)
        self.user_rows = {u: i for i, u in enumerate(prep.spec.user_ids)}
        self.movie_rows = {m: i for i, m in enumerate(prep.spec.movie_ids)}
        self.titles = prep.ml.movies.movie_title.to_numpy()
        self._all_moments: tuple[taste.Moments, np.ndarray] | None = None
        # Every user's queries at once: an answer then calls the model only for the ratings.
        self.now_queries, self.user_sides, self.queries = self._all_queries()
        self._map: pd.DataFrame | None = None
        self._baselines: dict[str, baselines.Fitted] = {}
        self._lazy_queries: dict[int, np.ndarray] = {}
        self.map_variance: np.ndarray | None = None
        if build_index and not annoy_index.exists(run.path):
            self.build_index()

    def _servable(self, t: taste.Taste) -> taste.Taste:
        """`t`, without an item-item weight if the model has no item-item part to apply it with."""
        return t if self.model.item_item is not None else dataclasses.replace(t, item_item=0.0)

    def _item_item(self, t: taste.Taste, rated: np.ndarray) -> np.ndarray | None:
        """[movies] item-item scores of someone who rated the movie rows `rated`, if `t` uses them."""
        if not t.item_item:
            return None
        weights, scale = self._item_item_weights
        return itemitem.user_scores(weights, scale, [rated])[0]

    @functools.cached_property
    def _item_item_weights(self) -> tuple[np.ndarray, float]:
        # Read out of the variable once: every list of a session adds rows of it.
        return self.model.item_item.b.numpy(), float(self.model.item_item.scale.numpy())

    # ------------------------------------------------------------------ lookups
    def user_row(self, user_id) -> int:
        """Row of a user id, or a UserError naming the valid range."""
        try:
            return self.user_rows[str(user_id).strip()]
        except KeyError:
            ids = self.prep.spec.user_ids
            raise UserError(f"unknown user id {user_id!r}; ids run from {ids[0]} to {ids[-1]}") from None

    def movie_row(self, movie_id) -> int:
        """Row of a movie id, or a UserError."""
        try:
            return self.movie_rows[str(movie_id).strip()]
        except KeyError:
            raise UserError(f"unknown movie id {movie_id!r}") from None

    @functools.cached_property
    def index(self) -> annoy_index.RunIndex:
        """The run's Annoy indexes, checked against their checksums; a damaged index is rebuilt."""
        shape = {"dim": int(self.candidates.shape[1]), "n_items": int(len(self.candidates))}
        try:
            return annoy_index.load(self.run.path, **shape)
        except annoy_index.IndexDamaged:  # garbled, truncated, missing: never handed to annoy
            if not self.auto_build:
                raise
            self.build_index()
            return annoy_index.load(self.run.path, **shape)

    def build_index(self, **kwargs) -> None:
        """(Re)build the run's Annoy indexes from its candidate embeddings."""
        annoy_index.build(self.run.path, self.candidates, list(self.prep.spec.movie_ids),
                          user_vectors=self.user_vectors, **kwargs)
        self.__dict__.pop("index", None)

    @functools.cached_property
    def unit_candidates(self) -> np.ndarray:
        """Candidate embeddings scaled to length 1, for cosine similarity (computed once)."""
        return self.candidates / np.maximum(np.linalg.norm(self.candidates, axis=1, keepdims=True), 1e-12)

    # ------------------------------------------------------------------ queries
    def _all_queries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Every user's now query and rating-head user side, and their list query (the run's
        validated taste, with its prior coordinate); None for the latter on large data,
        where each user's is computed when first asked (`query`)."""
        n_users = self.prep.spec.n_users
        users = np.arange(n_users)
        queries = {"user": users.astype(np.int32), "timestamp": self.latest_time,
                   **self.timeline.pointers(users).as_dict()}
        with self._model_lock:
            now, sides = query_embeddings(self.model, self.timeline, queries)
        if self.taste.horizon == taste.NOW:
            lists = now
        elif len(self.timeline.movie) <= EAGER_RATINGS:
            lists = self._long_term(None)
        else:
            return now, sides, None
        prior = np.full((n_users, 1), self.taste.prior, np.float32)
        return now, sides, np.hstack([lists, prior]).astype(np.float32)

    def _moments(self, users: np.ndarray | None) -> tuple[taste.Moments, np.ndarray]:
        found = taste.Moments.of(self.timeline, users)
        with self._model_lock:
            embedded, _ = query_embeddings(self.model, self.timeline, found.queries)
        return found, embedded

    def _long_term(self, users: np.ndarray | None) -> np.ndarray:
        """[n_users, d] long-term mean queries of `users` (None: everyone); other rows are 0."""
        found, embedded = self._moments(users)
        if users is None and self.taste.mixes:
            self._all_moments = (found, embedded)  # the mixture rescores lists from them
        return taste.mean_queries(embedded, found, self.latest_time, self.taste.horizon, self.prep.spec.n_users)

    def list_scores(self, row: int) -> np.ndarray:
        """The user's retrieval score of every movie under the run's taste (logit units)."""
        item_item = self._item_item(self.taste, self.rated[row])
        if not self.taste.mixes:
            scores = self.user_vectors @ self.query(row) / self.model.preset.temperature
            return scores if item_item is None else scores + self.taste.item_item * item_item
        if self._all_moments is not None:
            found, embedded = self._all_moments
        else:
            found, embedded = self._moments(np.array([row]))
        temperature = self.model.preset.temperature
        mixed = taste.mixture_scores(embedded, found, self.latest_time, self.taste.horizon, self.candidates,
                                     temperature, np.array([row]))
        return taste.list_scores(self.taste, None, mixed, self.candidates, self.user_vectors[:, -1], temperature,
                                 item_item)[0]

    def now(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The user's moment query just after their latest rating, and the rating head's user side."""
        return self.now_queries[row], self.user_sides[row]

    def query(self, row: int) -> np.ndarray:
        """The user's query for lists (the run's validated taste), with its prior coordinate."""
        if self.queries is not None:
            return self.queries[row]
        if row not in self._lazy_queries:
            q = self._long_term(np.array([row]))[row]
            self._lazy_queries[row] = np.append(q, self.taste.prior).astype(np.float32)
        return self._lazy_queries[row]

    # ------------------------------------------------------------------ answers
    def _retrieve(self, query: np.ndarray, scores: np.ndarray, exclude: np.ndarray, n: int,
                  method: str, rescored: bool) -> np.ndarray:
        """The n best movies by `scores` (every movie's), exactly or from an Annoy pool."""
        if method == "exact":
            return annoy_index.exact_top_k(scores, n, exclude)
        # The index searches the one-vector query; its pool (with room for the rated ones
        # to drop out) is then ordered by the list scores, which a mixture taste changes.
        pool = max(n, ANNOY_POOL) if rescored else n
        found = np.array(self.index.user_neighbours(query, pool + len(exclude)), int)
        found = found[~np.isin(found, exclude)]
        return found[np.argsort(-scores[found], kind="stable")][:n]

    @_timed
    def recommend(self, user_id, k: int = 10, method: str = "exact", exclude_rated: bool = True,
                  rank: str = "blend", candidates: int | None = None) -> pd.DataFrame:
        """Top-k movies for a dataset user: retrieval score, predicted rating, blended score and
        the rated movies that explain each (`because`), in the order `rank` asks for."""
        k, n = self._sizes(method, rank, k, candidates)
        row = self.user_row(user_id)
        start, end = self.timeline.bounds[row], self.timeline.bounds[row + 1]
        exclude = self.rated[row] if exclude_rated else np.array([], int)
        now, side = self.now(row)
        return self._answer(self.query(row), self.list_scores(row), now, side, row, exclude, k, n, method, rank,
                            self.mean_rating[row], self.timeline.movie[start:end], self.timeline.rating[start:end],
                            rescored=self.taste.rescores)

    @_timed
    def recommend_new(self, rated: list[tuple[str, float]], k: int = 10, method: str = "exact",
                      rank: str = "blend", candidates: int | None = None, age: float | None = None,
                      gender: str | None = None) -> pd.DataFrame:
        """Top-k movies for someone the model never saw, from their (movie id, stars) ratings,
        oldest first; the rated movies are left out. Same columns as `recommend`."""
        k, n = self._sizes(method, rank, k, candidates)
        rated = newuser.check_rated(rated)
        age, gender_code = newuser.check_profile(age, gender)
        rows = np.array([self.movie_row(m) for m, _ in rated], int)
        stars = np.array([s for _, s in rated], np.float32)
        new_taste = self.new_user_taste
        inputs = newuser.inputs(self.model, rows, stars, float(self.latest_time.max()), self.prep.spec.n_users,
                                age, gender_code, ends=newuser.moment_ends(len(rows), new_taste))
        with self._model_lock:
            moments, sides = encode_queries(self.model, inputs)
        # The latest moment (every rating seen) is what the rating head reads, and the Annoy
        # query once refitted to the rated movies (if the taste folds in).
        temperature = self.model.preset.temperature
        latest = newuser.latest_query(moments, rows, self.candidates, temperature, new_taste)
        query = np.append(latest, new_taste.prior).astype(np.float32)
        scores = newuser.list_scores(np.vstack([moments[:-1], latest[None]]), self.candidates,
                                     self.user_vectors[:, -1], temperature, new_taste,
                                     self._item_item(new_taste, rows))
        return self._answer(query, scores, moments[-1], sides[-1], self.prep.spec.n_users, rows, k, n, method,
                            rank, float(stars.mean()), rows, stars, rescored=new_taste.rescores)

    def _sizes(self, method: str, rank: str, k, candidates) -> tuple[int, int]:
        if method not in METHODS:
            raise UserError(f"method must be one of {METHODS}")
        ranking.check_rank(rank)
        k = check_k(k)
        return k, max(k, check_candidates(candidates) if candidates is not None else self.blend.candidates)

    def _answer(self, query: np.ndarray, scores: np.ndarray, now: np.ndarray, side: np.ndarray, head_row: int,
                exclude: np.ndarray, k: int, n: int, method: str, rank: str, user_mean: float, history: np.ndarray,
                history_stars: np.ndarray, rescored: bool) -> pd.DataFrame:
        """Retrieve n, score them with the rating head, order by `rank`, keep k, explain each
        (`rescored`: `scores` are a mixture's, not the query's)."""
        rows = self._retrieve(query, scores, exclude, n, method, rescored)
        predicted = self.rating_head(np.repeat(now[None], len(rows), 0), self.candidates[rows],
                                     np.full(len(rows), head_row), rows, np.repeat(side[None], len(rows), 0))
        retrieval = scores[rows]
        blended = ranking.blended(retrieval[None], predicted[None], np.array([user_mean]), self.blend)[0]
        order = ranking.order(retrieval[None], predicted[None], rank, self.blend)[0][:k]
        shown = rows[order]
        ids = self.prep.spec.movie_ids
        return pd.DataFrame({"movie_id": [ids[r] for r in shown], "title": self.titles[shown],
                             "score": retrieval[order], "predicted_rating": predicted[order],
                             "blended": blended[order],
                             "because": [[ids[r] for r in b] for b in self.because(history, history_stars, shown)]})

    def because(self, history: np.ndarray, stars: np.ndarray, movies: np.ndarray, n: int = EXPLAINED) -> list:
        """For each movie, the `n` rated movies whose embeddings are most like it (cosine),
        among those rated 4 or 5 stars (all rated ones when none is), as movie rows."""
        history, stars = np.asarray(history, int), np.asarray(stars)
        liked = history[stars >= LIKED]
        pool = liked if len(liked) else history
        if not len(pool) or not len(movies):
            return [[] for _ in movies]
        unit = self.unit_candidates
        sim = unit[np.asarray(movies, int)] @ unit[pool].T
        best = np.argsort(-sim, axis=1, kind="stable")[:, :n]
        return [pool[b].tolist() for b in best]

    def baseline(self, name: str, user_id, k: int = 10) -> pd.DataFrame:
        """A classic baseline's top-k for a user (recsys/baselines.py), rated movies left out:
        its score and, where it predicts ratings, its predicted rating. Fitted on the run's
        training part, with the setting chosen on validation, once per baseline."""
        k = check_k(k)
        row = self.user_row(user_id)
        with self._model_lock:  # one fit per baseline, even with many sessions asking at once
            if name not in self._baselines:
                params = baselines.cached_metrics(self.prep)[baselines.check_name(name)]["params"]
                self._baselines[name] = baselines.refit(name, self.prep, params)
        fitted = self._baselines[name]
        top = annoy_index.exact_top_k(fitted.user_scores[row], k, self.rated[row])
        out = pd.DataFrame({"movie_id": [self.prep.spec.movie_ids[r] for r in top], "title": self.titles[top],
                            "score": fitted.user_scores[row, top]})
        if fitted.ratings is not None:
            out["predicted_rating"] = fitted.ratings[row, top]
        return out

    def similar(self, movie_id, k: int = 10, method: str = "annoy") -> pd.DataFrame:
        """Movies most like `movie_id` by cosine similarity of their embeddings."""
        k = check_k(k)
        row = self.movie_row(movie_id)
        unit = self.unit_candidates
        if method == "exact":
            top = annoy_index.exact_top_k(unit @ unit[row], k, exclude=np.array([row]))
        else:
            top = np.array(self.index.movie_neighbours(row, k), int)
        return pd.DataFrame({"movie_id": [self.prep.spec.movie_ids[r] for r in top], "title": self.titles[top],
                             "score": unit[top] @ unit[row]})

    def movie_map(self) -> pd.DataFrame:
        """Every movie at its place on the run's 2-D map (recsys/moviemap.py), cached with the run."""
        if self._map is None:
            xy, self.map_variance = moviemap.coordinates(self.run.path, self.candidates)
            counts = np.bincount(self.timeline.movie, minlength=self.prep.spec.n_movies)
            self._map = moviemap.frame(xy, self.prep.ml.movies, counts)
        return self._map

    def profile(self, user_id, top: int = 10) -> dict:
        """Number of ratings, mean rating and highest-rated movies of a user, and the profile
        fields the dataset has (age, gender, occupation, zip code; None where it has none)."""
        row = self.user_row(user_id)
        uid = self.prep.spec.user_ids[row]
        ml = self.prep.ml
        user = ml.users.iloc[row]
        start, end = self.timeline.bounds[row], self.timeline.bounds[row + 1]
        movies, stars = self.timeline.movie[start:end], self.timeline.rating[start:end]
        times = self.timeline.timestamp[start:end]
        best = np.lexsort((-times, -stars))[:top]  # highest stars first, the latest first among ties
        age = next((user[c] for c in features.AGE_COLUMNS if c in ml.users.columns), None)
        gender = user.get(datasets.GENDER)
        return {"user_id": uid, "age": None if age is None else int(age),
                "gender": None if gender is None else ("M" if gender else "F"),
                "occupation": user.get(datasets.OCCUPATION), "zip_code": user.get(datasets.ZIP_CODE),
                "ratings": int(end - start), "mean_rating": float(stars.mean()) if end > start else None,
                "top_rated": pd.DataFrame({"movie_id": [self.prep.spec.movie_ids[m] for m in movies[best]],
                                           "movie_title": self.titles[movies[best]],
                                           "user_rating": stars[best].astype(float)})}

    def session(self, user_id) -> pd.DataFrame:
        """The user's latest ratings that their moment query starts from, latest first (none
        for a preset without the session)."""
        row = self.user_row(user_id)
        n = self.model.preset.context_size
        start, end = self.timeline.bounds[row], self.timeline.bounds[row + 1]
        rows = np.arange(end - 1, max(start, end - n) - 1, -1)
        movies = self.timeline.movie[rows]
        return pd.DataFrame({"movie_id": [self.prep.spec.movie_ids[r] for r in movies],
                             "title": self.titles[movies], "user_rating": self.timeline.rating[rows].astype(int)})

    def keyword(self, word: str, k: int = 10, movie_id: str | None = None) -> dict:
        """Title search: matches, and for one match its neighbours and its top rater's picks."""
        ml = self.prep.ml
        matches = search.match_titles(ml.movies, ml.ratings, word)
        chosen = str(movie_id) if movie_id is not None else matches.movie_id.iloc[0]
        if chosen not in set(matches.movie_id):
            raise UserError(f"movie {chosen} does not match {word!r}")
        title = matches.loc[matches.movie_id == chosen, "movie_title"].iloc[0]
        out = {"matches": matches, "movie_id": chosen, "title": title,
               "neighbours": self.similar(chosen, k, method="annoy"), "top_rater": None, "recommendations": None}
        if (ml.ratings.movie_id == chosen).any():
            rater = search.top_rater(ml.ratings, chosen)
            out["top_rater"] = rater
            out["recommendations"] = self.recommend(rater, k, method="annoy")
        return out


def check_k(k) -> int:
    """`k` as an int, or a UserError unless it is a whole number from 1 to MAX_K."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise UserError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    return int(k)


def check_candidates(n) -> int:
    """The first stage's size, or a UserError unless it is a whole number from 1 to MAX_K."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_K:
        raise UserError(f"candidates must be a whole number from 1 to {MAX_K}, got {n!r}")
    return int(n)


def open_run(run_id: str | None = None, data_path: str | None = None) -> Recommender:
    """A Recommender for `run_id` (default: the app's default run) on the current data."""
    from recsys.catalog import default_run_id
    from recsys.prepare import prepare

    run_id = runs.check_run_id(run_id) if run_id is not None else default_run_id(data_path)
    if not runs.is_finished(run_id):
        raise UserError(f"no finished run {run_id!r}; train one with `python -m recsys train` or `make run`")
    run = runs.load(run_id)
    prep = prepare(data_path, run.config.split_seed, run.config.split, run.config.dataset)
    trained_on = run.info.get("data_fingerprint")
    if trained_on and trained_on != prep.fingerprint:
        raise UserError(f"run {run_id} was trained on other data ({trained_on}); the current data is "
                        f"{prep.fingerprint}")
    return Recommender(run, prep)
