"""Recommendations for a user and neighbours of a movie, exact and through Annoy."""
from __future__ import annotations

import functools
import threading

import numpy as np
import pandas as pd

from recsys import index as annoy_index
from recsys import runs, search
from recsys.baseline import per_user_items
from recsys.context import CONTEXT_KEYS, TimeNeighbours
from recsys.errors import UserError
from recsys.evaluate import predict_ratings, query_embeddings
from recsys.features import encode
from recsys.prepare import Prepared, latest_times
from recsys.checkpoint import load_model

METHODS = ("exact", "annoy")


class Recommender:
    """A run's model, catalogue embeddings and indexes, ready to answer queries.

    Serving treats every known rating as the user's history: the query time is the
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
        ratings = prep.ml.ratings
        encoded = encode(prep.spec, ratings)
        self.rated = per_user_items(encoded, prep.spec.n_users)
        self.latest_time = latest_times(encoded, prep.spec.n_users, prep.spec.timestamp_boundaries[-1])
        users = np.arange(prep.spec.n_users)
        # The session feature at the query time: each user's latest ratings of all.
        self.context = dict(zip(CONTEXT_KEYS, TimeNeighbours(encoded, prep.spec.n_users).lookup(
            users, self.latest_time)))
        # Every user's query at once: serving then calls the model once per answer, not twice.
        self.queries = query_embeddings(self.model, prep, users, self.latest_time, self.context["context"])
        self.user_rows = {u: i for i, u in enumerate(prep.spec.user_ids)}
        self.movie_rows = {m: i for i, m in enumerate(prep.spec.movie_ids)}
        self.titles = prep.ml.movies.movie_title.to_numpy()
        if build_index and not annoy_index.exists(run.path):
            self.build_index()

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
            annoy_index.build(self.run.path, self.candidates, list(self.prep.spec.movie_ids))
            return annoy_index.load(self.run.path, **shape)

    def build_index(self, **kwargs) -> None:
        """(Re)build the run's Annoy indexes from its candidate embeddings."""
        annoy_index.build(self.run.path, self.candidates, list(self.prep.spec.movie_ids), **kwargs)
        self.__dict__.pop("index", None)

    @functools.cached_property
    def unit_candidates(self) -> np.ndarray:
        """Candidate embeddings scaled to length 1, for cosine similarity (computed once)."""
        return self.candidates / np.maximum(np.linalg.norm(self.candidates, axis=1, keepdims=True), 1e-12)

    def query(self, row: int) -> np.ndarray:
        """The user's query embedding at their latest rating time (computed for every user at start)."""
        return self.queries[row]

    # ------------------------------------------------------------------ answers
    def _frame(self, rows, scores, query: np.ndarray | None, user_row: int | None) -> pd.DataFrame:
        rows = np.asarray(rows, int)
        out = pd.DataFrame({"movie_id": [self.prep.spec.movie_ids[r] for r in rows],
                            "title": self.titles[rows], "score": np.asarray(scores, float)})
        if query is not None and len(rows):
            q = np.repeat(query[None, :], len(rows), axis=0)
            with self._model_lock:
                out["predicted_rating"] = predict_ratings(
                    self.model, q, self.candidates, np.full(len(rows), user_row), rows,
                    np.repeat(self.context["context_rating"][[user_row]], len(rows), axis=0))
        return out

    def recommend(self, user_id, k: int = 10, method: str = "exact", exclude_rated: bool = True) -> pd.DataFrame:
        """Top-k movies for a user, with dot-product scores and predicted ratings."""
        if method not in METHODS:
            raise UserError(f"method must be one of {METHODS}")
        k = _check_k(k)
        row = self.user_row(user_id)
        query = self.query(row)
        exclude = self.rated[row] if exclude_rated else np.array([], int)
        if method == "exact":
            top = annoy_index.exact_top_k(self.candidates @ query, k, exclude)
        else:
            # Ask for enough extra neighbours that k remain after dropping rated ones.
            found = self.index.user_neighbours(query, k + len(exclude))
            banned = set(exclude.tolist())
            top = np.array([r for r in found if r not in banned][:k], int)
        return self._frame(top, self.candidates[top] @ query, query, row)

    def similar(self, movie_id, k: int = 10, method: str = "annoy") -> pd.DataFrame:
        """Movies most like `movie_id` by cosine similarity of their embeddings."""
        k = _check_k(k)
        row = self.movie_row(movie_id)
        unit = self.unit_candidates
        if method == "exact":
            top = annoy_index.exact_top_k(unit @ unit[row], k, exclude=np.array([row]))
        else:
            top = np.array(self.index.movie_neighbours(row, k), int)
        return self._frame(top, unit[top] @ unit[row], None, None)

    def profile(self, user_id, top: int = 10) -> dict:
        """Age, gender, occupation, number of ratings and highest-rated movies of a user."""
        self.user_row(user_id)
        uid = str(user_id).strip()
        ml = self.prep.ml
        user = ml.users[ml.users.user_id == uid].iloc[0]
        mine = ml.ratings[ml.ratings.user_id == uid].merge(ml.movies[["movie_id", "movie_title"]], on="movie_id")
        best = mine.sort_values(["user_rating", "timestamp"], ascending=[False, False]).head(top)
        return {"user_id": uid, "age": int(user.raw_user_age), "gender": "M" if user.user_gender else "F",
                "occupation": user.user_occupation_text, "zip_code": user.user_zip_code,
                "ratings": int(len(mine)), "mean_rating": float(mine.user_rating.mean()) if len(mine) else None,
                "top_rated": best[["movie_id", "movie_title", "user_rating"]].reset_index(drop=True)}

    def session(self, user_id) -> pd.DataFrame:
        """The user's latest ratings that their query starts from, latest first (none for a
        preset without the session context)."""
        row = self.user_row(user_id)
        n = self.model.preset.context_size
        ids, stars = self.context["context"][row, :n], self.context["context_rating"][row, :n]
        rows = ids[ids > 0] - 1
        return pd.DataFrame({"movie_id": [self.prep.spec.movie_ids[r] for r in rows],
                             "title": self.titles[rows], "user_rating": stars[ids > 0].astype(int)})

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


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 1000:
        raise UserError(f"k must be a whole number from 1 to 1000, got {k!r}")
    return int(k)


def open_run(run_id: str | None = None, data_path: str | None = None) -> Recommender:
    """A Recommender for `run_id` (default: the app's default run) on the current data."""
    from recsys.catalog import default_run_id
    from recsys.prepare import prepare

    run_id = runs.check_run_id(run_id) if run_id is not None else default_run_id(data_path)
    if not runs.is_finished(run_id):
        raise UserError(f"no finished run {run_id!r}; train one with `python -m recsys train` or `make run`")
    run = runs.load(run_id)
    prep = prepare(data_path, run.config.split_seed)
    trained_on = run.info.get("data_fingerprint")
    if trained_on and trained_on != prep.fingerprint:
        raise UserError(f"run {run_id} was trained on other data ({trained_on}); the current data is "
                        f"{prep.fingerprint}")
    return Recommender(run, prep)
