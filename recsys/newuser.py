"""A user the model never saw: a few ratings in, a query out, with no retraining.

The ratings go where a known user's history goes: the session (the latest ones) and
the whole-history bag, with the unknown-user slot for the id (recsys/layers.py), so
the trained query tower answers for them at once. Age and gender are optional. As for a
known user's long-term taste (recsys/taste.py), the list can mix one query per rating
given (each sees the ratings before it), or refit the latest query to the rated movies
(`fold_in`), with its own popularity prior: which way, and the prior, are chosen on
validation when a run is trained (`choose_new_user_taste`).
Ratings given this way live only in the caller's hands (the browser session or the
URL); they never enter the training data.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from recsys import taste
from recsys.errors import UserError
from recsys.model import MultiTaskModel
from recsys.taste import Taste

MAX_RATED = 500  # more than anyone types in; bounds the work one request can ask for
GENDERS = {"F": 0, "M": 1}
UNKNOWN_GENDER = 2
# Fold-in's step size and L2 (per rated movie): set once on validation (default run, 10
# ratings), while the number of steps is chosen per run among FOLD_STEPS.
FOLD_RATE = 0.25
FOLD_L2 = 0.1


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
           age: float | None = None, gender: int = UNKNOWN_GENDER, ends=None) -> dict[str, tf.Tensor]:
    """Query inputs for one new user whose ratings (oldest first) are `movie_rows`/`stars`:
    one query that sees them all, or with `ends` one per moment, query j seeing the first
    ends[j] ratings (the moments a mixture taste combines)."""
    preset = model.preset
    rows, stars = np.asarray(movie_rows, np.int32), np.asarray(stars, np.float32)
    ends = [len(rows)] if ends is None else [int(e) for e in ends]
    size, n = preset.context_size, len(ends)
    session, session_rating = np.zeros((n, size), np.int32), np.zeros((n, size), np.float32)
    for j, end in enumerate(ends):
        latest = np.arange(end)[::-1][:size]  # the latest first, as in training
        session[j, :len(latest)] = rows[latest] + 1
        session_rating[j, :len(latest)] = stars[latest]
    out = {"user": tf.fill([n], tf.constant(n_users, tf.int32)), "timestamp": tf.fill([n], tf.constant(now, tf.float32)),
           "session": tf.constant(session), "session_rating": tf.constant(session_rating),
           "gender": tf.fill([n], tf.constant(gender, tf.int32))}
    if age is not None:
        out["age"] = tf.fill([n], tf.constant(age, tf.float32))
    if preset.reads_history:
        bag = np.zeros((n, model.n_movies), np.float32)
        for j, end in enumerate(ends):
            bag[j, rows[:end]] = stars[:end]
        out["history"] = tf.constant(bag)
    return out


def moment_ends(n_rated: int, new_taste: Taste) -> np.ndarray | None:
    """The moments a new user's query is made from: each rating's (a mixture), or None for
    the one query after the latest."""
    return np.arange(1, n_rated + 1) if new_taste.mixes else None


def fold_in(queries: np.ndarray, rated: list[np.ndarray], candidates: np.ndarray, temperature: float,
            steps: int, rate: float = FOLD_RATE, l2: float = FOLD_L2) -> np.ndarray:
    """[users, d]: each query after `steps` gradient steps up the mean log-likelihood of its
    user's rated movies (rows in `rated`) under the softmax over every candidate, less
    l2 x |q|^2 per rated movie. The query tower reads a new user's ratings as one short
    session; this fits the query to all of them (ALS-style fold-in, with the towers fixed)."""
    q = np.array(queries, np.float64)
    c = np.asarray(candidates, np.float64)
    x = np.zeros((len(q), len(c)))
    for row, movies in enumerate(rated):
        x[row, np.asarray(movies, int)] = 1.0
    n = np.maximum(x.sum(1, keepdims=True), 1.0)
    target = x @ c  # the rated movies' embeddings, summed
    for _ in range(steps):
        logits = q @ c.T / temperature
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        q += rate * ((target - n * (p @ c)) / temperature - 2 * l2 * q) / n
    return q.astype(np.float32)


def latest_query(embedded: np.ndarray, rated: np.ndarray, candidates: np.ndarray, temperature: float,
                 new_taste: Taste) -> np.ndarray:
    """The new user's one query: their latest moment's, refitted to `rated` if the taste folds in."""
    if not new_taste.fold_in:
        return embedded[-1]
    return fold_in(embedded[-1:], [rated], candidates, temperature, new_taste.fold_in)[0]


def list_scores(embedded: np.ndarray, candidates: np.ndarray, prior_col: np.ndarray, temperature: float,
                new_taste: Taste, item_item: np.ndarray | None = None) -> np.ndarray:
    """Every movie's retrieval score (logit units) for a new user whose moment queries are
    `embedded` (oldest first; the last one already refitted if the taste folds in): the
    latest query's, or the mixture of all moments' softmaxes, each rating one moment; plus
    the prior and the taste's share of `item_item` (the user's item-item scores, [movies])."""
    mixed = None
    if new_taste.mixes:  # every rating one moment of one user, all weighing alike
        n = len(embedded)
        moments = taste.Moments(user=np.zeros(n, int), time=np.zeros(n), count=np.ones(n), queries={})
        mixed = taste.mixture_scores(embedded, moments, np.zeros(1), math.inf, candidates, temperature,
                                     np.zeros(1, int))
    return taste.list_scores(new_taste, embedded[-1:], mixed, candidates, prior_col, temperature,
                             None if item_item is None else item_item[None])[0]


def latest_ratings(part: dict[str, np.ndarray], n_users: int, n: int) -> list[np.ndarray]:
    """Per user row, the positions in `part` of their `n` latest ratings, oldest first."""
    order = np.lexsort((part["movie"], part["timestamp"], part["user"]))
    users = part["user"][order]
    bounds = np.searchsorted(users, np.arange(n_users + 1))
    return [order[max(bounds[u], bounds[u + 1] - n): bounds[u + 1]] for u in range(n_users)]


NEW_USER_RATINGS = 10  # how many ratings a new user is judged from: about what a person gives at first
# Priors for new users: with ten ratings the popularity prior weighs more than for a known user.
NEW_USER_PRIORS = (0.0, 0.5, 1.0, 1.5, 2.0)
USER_CHUNK = 256
NEW_USER_WAYS = ((taste.NOW, False), (math.inf, True))  # the query after the latest rating, or the mixture
FOLD_STEPS = (5, 10, 20)  # fold-in refits validation chooses among, beside the ways above


def new_user_tastes(model: MultiTaskModel) -> tuple[Taste, ...]:
    """The new-user tastes validation chooses from (item-item weights if the model has the part)."""
    gammas = taste.ITEM_ITEMS if model.item_item is not None else (0.0,)
    ways = [(h, mixture, 0) for h, mixture in NEW_USER_WAYS] + [(taste.NOW, False, s) for s in FOLD_STEPS]
    return tuple(Taste(h, p, mixture, g, fold) for h, mixture, fold in ways for p in NEW_USER_PRIORS for g in gammas)


def new_user_tops(model: MultiTaskModel, prep, part: str, candidates: np.ndarray, k: int,
                  tastes: tuple[Taste, ...], n: int = NEW_USER_RATINGS) -> dict[Taste, np.ndarray]:
    """[evaluated users, k] top movies of each taste (the part's seen movies left out) when
    every evaluated user of `part` is queried as a new user from only their `n` latest
    training ratings (no user id); -1 pads a user without ratings."""
    from recsys import metrics
    from recsys.evaluate import encode_queries, part_of

    ev, k = part_of(prep, part), min(k, len(candidates))
    picks = latest_ratings(prep.train, prep.spec.n_users, n)
    temperature = model.preset.temperature
    prior_col = taste.prior_column(np.bincount(prep.train["movie"], minlength=prep.spec.n_movies), temperature)
    out = {t: np.full((len(ev.users), k), -1) for t in tastes}
    users = [(i, picks[u], float(when)) for i, (u, when) in enumerate(zip(ev.users, ev.times)) if len(picks[u])]
    # One model call per chunk of users, and only their top k kept: memory stays flat.
    for start in range(0, len(users), USER_CHUNK):
        chunk = users[start: start + USER_CHUNK]
        batch = [inputs(model, prep.train["movie"][rows], prep.train["rating"][rows], when, prep.spec.n_users,
                        ends=np.arange(1, len(rows) + 1)) for _, rows, when in chunk]
        embedded, _ = encode_queries(model, {key: tf.concat([b[key] for b in batch], 0) for key in batch[0]})
        bounds = np.cumsum([0] + [len(rows) for _, rows, _ in chunk])
        rows_of = np.array([i for i, _, _ in chunk])
        rated = [prep.train["movie"][rows] for _, rows, _ in chunk]
        item_item = model.item_item.scores(rated) if any(t.item_item for t in tastes) else None
        # Each way's scores once (no prior, no item-item); every taste adds its own share of both.
        ways = {(t.horizon, t.mixture, t.fold_in) for t in tastes}
        base = {}
        for h, m, fold in ways:
            if fold:  # every user's latest query refitted at once
                folded = fold_in(embedded[bounds[1:] - 1], rated, candidates, temperature, fold)
                base[(h, m, fold)] = folded @ candidates.T / temperature
            else:
                base[(h, m, fold)] = np.stack([list_scores(embedded[a:b], candidates, prior_col, temperature,
                                                           Taste(h, 0.0, m)) for a, b in zip(bounds[:-1], bounds[1:])])
        for t in tastes:
            scores = base[(t.horizon, t.mixture, t.fold_in)] + taste.additions(t, prior_col, temperature, item_item)
            out[t][rows_of] = metrics.top_k_excluding(scores, [ev.seen[i] for i in rows_of], k)
    return out


def choose_new_user_taste(model: MultiTaskModel, prep, candidates: np.ndarray) -> tuple[Taste, dict]:
    """The new-user taste (latest query or mixture of moments, prior) with the best validation
    `user_objective` as a new user from ten ratings; ties go to the simpler."""
    from recsys import metrics
    from recsys.evaluate import part_of, user_objective

    ev = part_of(prep, "val")
    grid = {t: user_objective(metrics.recall_at(top, ev.relevant))
            for t, top in new_user_tops(model, prep, "val", candidates, max(metrics.RECALL_KS),
                                        new_user_tastes(model)).items()}
    best = max(grid, key=lambda t: (round(grid[t], 6), -t.fold_in, -t.mixture, -t.prior, -t.item_item))
    return best, {taste.grid_key(t, "mixture" if t.mixture else "latest"): round(v, 5) for t, v in grid.items()}


def cold_start_metrics(model: MultiTaskModel, prep, candidates: np.ndarray, new_taste: Taste,
                       n: int = NEW_USER_RATINGS) -> dict[str, float]:
    """Recall@10 on test when each user is queried as a new user from only their `n` latest
    training ratings (no user id), against popularity and EASE given the same ratings.

    EASE keeps its item-item weights fitted on the whole training part (lambda chosen on
    validation); only each user's row of X shrinks to the same n ratings.
    """
    from recsys import baselines, metrics
    from recsys.evaluate import part_of

    ev = part_of(prep, "test")
    n_users, n_movies = prep.spec.n_users, prep.spec.n_movies
    picks = latest_ratings(prep.train, n_users, n)
    few = {k: prep.train[k][np.concatenate(picks)] for k in ("user", "movie", "rating")}
    lam = baselines.ease(prep).params["lambda"]
    ease_b = baselines.ease_weights(baselines.interactions(prep.train, n_users, n_movies), lam)
    counts = np.bincount(prep.train["movie"], minlength=n_movies).astype(float)
    tops = {"model": new_user_tops(model, prep, "test", candidates, 10, (new_taste,), n)[new_taste],
            "ease": metrics.top_k_excluding(baselines.interactions(few, n_users, n_movies)[ev.users] @ ease_b,
                                            ev.seen, 10),
            "popularity": metrics.top_k_excluding(np.broadcast_to(counts, (len(ev.users), n_movies)), ev.seen, 10)}
    return {name: metrics.recall_at(top, ev.relevant, ks=(10,))["recall_at_10"] for name, top in tops.items()}
