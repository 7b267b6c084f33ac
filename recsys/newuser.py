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
    if preset.history_dim:
        bag = np.zeros((1, model.n_movies), np.float32)
        bag[0, movie_rows] = 1.0
        out["history"] = tf.constant(bag)
    return out
