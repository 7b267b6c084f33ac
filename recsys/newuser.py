"""A user the model never saw: a few ratings in, a query out, with no retraining.

The ratings go where a known user's history goes: the session (the latest ones) and
the whole-history bag, with the unknown-user slot for the id (recsys/layers.py), so
the trained query tower answers for them at once. Age and gender are optional.
Ratings given this way live only in the caller's hands (the browser session or the
URL); they never enter the training data.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from recsys.errors import UserError
from recsys.model import MultiTaskModel

MAX_RATED = 500  # more than anyone types in; bounds the work one request can ask for
GENDERS = {"F": 0, "M": 1}
UNKNOWN_GENDER = 2


def parse_rated(text: str | None) -> list[tuple[str, float]]:
    """"50:5,181:4" -> [("50", 5.0), ("181", 4.0)], or a UserError saying what is wrong."""
    items = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not items:
        raise UserError("give at least one rating as MOVIE:STARS, e.g. 50:5,181:4")
    if len(items) > MAX_RATED:
        raise UserError(f"{len(items)} ratings given; at most {MAX_RATED}")
    out = []
    for item in items:
        movie, sep, stars = item.partition(":")
        if not sep or not movie.strip():
            raise UserError(f"{item!r} is not MOVIE:STARS")
        try:
            value = float(stars)
        except ValueError:
            raise UserError(f"stars in {item!r} are not a number") from None
        out.append((movie.strip(), value))
    return check_rated(out)


def check_rated(rated: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The ratings if each movie appears once with whole stars from 1 to 5, else a UserError."""
    if not rated:
        raise UserError("give at least one rating")
    if len(rated) > MAX_RATED:
        raise UserError(f"{len(rated)} ratings given; at most {MAX_RATED}")
    seen = set()
    for movie, stars in rated:
        if not (isinstance(stars, (int, float)) and float(stars).is_integer() and 1 <= stars <= 5):
            raise UserError(f"stars for movie {movie} must be a whole number from 1 to 5, got {stars!r}")
        if movie in seen:
            raise UserError(f"movie {movie} is rated twice")
        seen.add(movie)
    return [(m, float(s)) for m, s in rated]


def check_profile(age: float | None, gender: str | None) -> tuple[float | None, int]:
    """A new user's optional age (1 to 120) and gender ("F" or "M") as model inputs."""
    if age is not None and not (isinstance(age, (int, float)) and 1 <= age <= 120):
        raise UserError(f"age must be a number from 1 to 120, got {age!r}")
    if gender not in (None, *GENDERS):
        raise UserError(f"gender must be F or M, got {gender!r}")
    return age, GENDERS.get(gender, UNKNOWN_GENDER)


def inputs(model: MultiTaskModel, movie_rows: np.ndarray, stars: np.ndarray, now: float, n_users: int,
           age: float | None = None, gender: int = UNKNOWN_GENDER) -> dict[str, tf.Tensor]:
    """Query inputs for one new user whose ratings (oldest first) are `movie_rows`/`stars`."""
    preset = model.preset
    latest = np.asarray(movie_rows, np.int32)[::-1][:preset.context_size]
    out = {"user": tf.constant([n_users], tf.int32), "timestamp": tf.constant([now], tf.float32),
           "session": tf.constant([latest + 1], tf.int32),
           "session_rating": tf.constant([np.asarray(stars, np.float32)[::-1][:preset.context_size]], tf.float32),
           "gender": tf.constant([gender], tf.int32)}
    if age is not None:
        out["age"] = tf.constant([age], tf.float32)
    if preset.reads_history:
        bag = np.zeros((1, model.n_movies), np.float32)
        bag[0, movie_rows] = stars
        out["history"] = tf.constant(bag)
    return out


def latest_ratings(part: dict[str, np.ndarray], n_users: int, n: int) -> list[np.ndarray]:
    """Per user row, the positions in `part` of their `n` latest ratings, oldest first."""
    order = np.lexsort((part["movie"], part["timestamp"], part["user"]))
    users = part["user"][order]
    bounds = np.searchsorted(users, np.arange(n_users + 1))
    return [order[max(bounds[u], bounds[u + 1] - n): bounds[u + 1]] for u in range(n_users)]


def cold_start_metrics(model: MultiTaskModel, prep, candidates: np.ndarray, prior_weight: float,
                       n: int = 10) -> dict[str, float]:
    """Recall@10 on test when each user is queried as a new user from only their `n` latest
    training ratings (no user id), against popularity and EASE given the same ratings.

    EASE keeps its item-item weights fitted on the whole training part (lambda chosen on
    validation); only each user's row of X shrinks to the same n ratings.
    """
    from recsys import baselines, metrics, taste
    from recsys.evaluate import encode_queries
    from recsys.history import per_user_items

    n_users, n_movies = prep.spec.n_users, prep.spec.n_movies
    picks = latest_ratings(prep.train, n_users, n)
    vectors = taste.user_vectors(candidates, np.bincount(prep.train["movie"], minlength=n_movies),
                                 model.preset.temperature)
    query = np.zeros((n_users, vectors.shape[1]), np.float32)
    for u, rows in enumerate(picks):
        if len(rows):
            inp = inputs(model, prep.train["movie"][rows], prep.train["rating"][rows],
                         float(prep.last_timestamp[u]), n_users)
            query[u] = np.append(encode_queries(model, inp)[0][0], prior_weight)
    relevant = per_user_items(prep.test, n_users)
    few = {k: prep.train[k][np.concatenate(picks)] for k in ("user", "movie", "rating")}
    lam = baselines.ease(prep).params["lambda"]
    ease_b = baselines.ease_weights(baselines.interactions(prep.train, n_users, n_movies), lam)
    scores = {"model": query @ vectors.T,
              "ease": baselines.interactions(few, n_users, n_movies) @ ease_b,
              "popularity": np.broadcast_to(np.bincount(prep.train["movie"], minlength=n_movies).astype(float),
                                            (n_users, n_movies))}
    out = {}
    for name, s in scores.items():
        top = metrics.top_k_excluding(s, prep.seen, 10)
        out[name] = metrics.recall_at(top, relevant, ks=(10,))["recall_at_10"]
    return out
