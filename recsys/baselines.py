"""Classic recommenders to measure the model against, on the same split and metrics.

  popularity  every user gets the most-rated movies; a movie's mean rating as its rating.
  ease        EASE (Steck 2019): a closed-form item-item linear model,
              B = I - P / diag(P) with P = (X'X + lambda I)^-1, zero diagonal.
  itemknn     item-based k nearest neighbours: cosine similarity of the movies' user
              columns (with shrinkage), each column pruned to its k best neighbours;
              ratings predicted as baseline + similarity-weighted neighbour deviations.

Each is fitted on the training part only (the same 72,000 ratings the model trains
on); its one hyper-parameter is chosen on validation by `USER_OBJECTIVE`, and its
queries are the user's training movies, so it sees exactly what the model sees.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from recsys.evaluate import Scores, evaluate, part_of, user_objective
from recsys.itemitem import ease_weights, interactions  # noqa: F401 - the one EASE, also for callers here
from recsys.prepare import Prepared

NAMES = ("popularity", "ease", "itemknn")
EASE_LAMBDAS = (50.0, 100.0, 200.0, 300.0, 500.0, 800.0, 1200.0, 2000.0)
KNN_SIZES = (20, 50, 100, 200, 400)
KNN_SHRINK = 10.0  # added to the cosine's denominator: pairs seen together rarely count less
BIAS_REG = 10.0  # ratings' worth of shrinkage of user and movie biases towards 0


@dataclass
class Fitted:
    """A fitted baseline: its user-movie scores, optional rating predictor and chosen setting."""

    name: str
    user_scores: np.ndarray  # [users, movies]
    ratings: np.ndarray | None = None  # [users, movies] predicted stars, or None
    params: dict = field(default_factory=dict)
    fit_seconds: float = 0.0  # fitting this setting alone (not the search over settings)
    validation: dict = field(default_factory=dict)

    def scores(self, prep: Prepared, part: str) -> Scores:
        """The baseline's `Scores` on a part: every query of a user gets the user's row."""
        ev = part_of(prep, part)
        users, ratings = ev.pairs["user"], self.ratings
        return Scores(
            pair_scores=lambda rows: self.user_scores[users[rows]],
            pair_ratings=None if ratings is None else ratings[users, ev.pairs["movie"]],
            user_scores=self.user_scores[ev.users],
            user_ratings=None if ratings is None else (
                lambda movies: np.take_along_axis(ratings[ev.users], np.maximum(movies, 0), 1)))


def biases(train: dict[str, np.ndarray], n_users: int, n_movies: int) -> np.ndarray:
    """Global mean + regularised user and movie biases, for every (user, movie): [users, movies]."""
    mu = float(train["rating"].mean())
    movie = (np.bincount(train["movie"], train["rating"] - mu, n_movies)
             / (np.bincount(train["movie"], minlength=n_movies) + BIAS_REG))
    resid = train["rating"] - mu - movie[train["movie"]]
    user = np.bincount(train["user"], resid, n_users) / (np.bincount(train["user"], minlength=n_users) + BIAS_REG)
    return mu + user[:, None] + movie[None, :]


def popularity_fit(train: dict[str, np.ndarray], n_users: int, n_movies: int) -> Fitted:
    """Scores by training count; each movie's mean training rating (global mean if unrated)."""
    start = time.perf_counter()
    counts = np.bincount(train["movie"], minlength=n_movies).astype(np.float64)
    sums = np.bincount(train["movie"], weights=train["rating"], minlength=n_movies)
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), float(train["rating"].mean()))
    return Fitted("popularity", np.broadcast_to(counts, (n_users, n_movies)),
                  np.broadcast_to(mean, (n_users, n_movies)), fit_seconds=time.perf_counter() - start)


def ease_fit(train: dict[str, np.ndarray], n_users: int, n_movies: int, lam: float) -> Fitted:
    """EASE with regularisation `lam`: scores X B (no rating prediction)."""
    start = time.perf_counter()
    x = interactions(train, n_users, n_movies)
    scores = x @ ease_weights(x, lam)
    return Fitted("ease", scores, params={"lambda": lam}, fit_seconds=time.perf_counter() - start)


def cosine(x: np.ndarray, shrink: float = KNN_SHRINK) -> np.ndarray:
    """Cosine similarity of the columns of `x`, shrunk, with a zero diagonal."""
    norms = np.sqrt(x.sum(0))
    sim = (x.T @ x) / (np.outer(norms, norms) + shrink + 1e-12)
    np.fill_diagonal(sim, 0.0)
    return sim


def prune(sim: np.ndarray, k: int) -> np.ndarray:
    """Keep each column's k largest similarities, zero the rest."""
    if k >= len(sim):
        return sim
    out = sim.copy()
    drop = np.argpartition(-sim, k, axis=0)[k:]
    np.put_along_axis(out, drop, 0.0, axis=0)
    return out


def itemknn_fit(train: dict[str, np.ndarray], n_users: int, n_movies: int, k: int,
                shrink: float = KNN_SHRINK) -> Fitted:
    """Item-kNN with k neighbours per movie: scores X S, ratings baseline + weighted deviations."""
    start = time.perf_counter()
    x = interactions(train, n_users, n_movies)
    sim = prune(cosine(x, shrink), k)
    base = biases(train, n_users, n_movies)
    resid = np.zeros_like(x)
    resid[train["user"], train["movie"]] = train["rating"] - base[train["user"], train["movie"]]
    weight = x @ np.abs(sim)
    ratings = base + np.divide(resid @ sim, weight, out=np.zeros_like(weight), where=weight > 0)
    return Fitted("itemknn", x @ sim, np.clip(ratings, 1.0, 5.0), params={"k": k},
                  fit_seconds=time.perf_counter() - start)


def popularity(prep: Prepared) -> Fitted:
    """The popularity baseline on the training part (nothing to choose)."""
    return popularity_fit(prep.train, prep.spec.n_users, prep.spec.n_movies)


def ease(prep: Prepared) -> Fitted:
    """EASE with lambda chosen on validation."""
    return _best(prep, [ease_fit(prep.train, prep.spec.n_users, prep.spec.n_movies, lam) for lam in EASE_LAMBDAS])


def itemknn(prep: Prepared) -> Fitted:
    """Item-kNN with the neighbourhood size chosen on validation."""
    return _best(prep, [itemknn_fit(prep.train, prep.spec.n_users, prep.spec.n_movies, k) for k in KNN_SIZES])


def _best(prep: Prepared, candidates: list[Fitted]) -> Fitted:
    """The candidate with the best validation `user_objective` (ties: the first)."""
    for c in candidates:
        c.validation = evaluate(c.scores(prep, "val"), prep, "val", full=False)
    return max(candidates, key=lambda c: user_objective(c.validation))


FIT = {"popularity": popularity, "ease": ease, "itemknn": itemknn}
LABELS = {"popularity": "Popularity", "ease": "EASE", "itemknn": "Item-kNN"}


def check_name(name: str) -> str:
    """The baseline's name, or a UserError listing the valid ones."""
    if name not in FIT:
        from recsys.errors import UserError

        raise UserError(f"unknown baseline {name!r}; choose one of: {', '.join(FIT)}")
    return name


def fit(name: str, prep: Prepared) -> Fitted:
    """Fit one baseline by name, choosing its setting on validation."""
    return FIT[check_name(name)](prep)


def refit(name: str, prep: Prepared, params: dict) -> Fitted:
    """Fit one baseline with a setting chosen before (`metrics(...)[name]["params"]`)."""
    n_users, n_movies = prep.spec.n_users, prep.spec.n_movies
    if check_name(name) == "ease":
        return ease_fit(prep.train, n_users, n_movies, params["lambda"])
    if name == "itemknn":
        return itemknn_fit(prep.train, n_users, n_movies, params["k"])
    return popularity(prep)


def metrics(prep: Prepared, names: tuple[str, ...] = NAMES) -> dict[str, dict]:
    """Each baseline's test metrics (same keys as a run's), with its setting and fit time."""
    from recsys.evaluate import choose_blend

    out = {}
    for name in names:
        fitted = fit(name, prep)
        blend = None
        if fitted.ratings is not None:
            blend, _ = choose_blend(fitted.scores(prep, "val"), prep)
        test = evaluate(fitted.scores(prep, "test"), prep, "test", blend)
        out[name] = {**test, "params": fitted.params, "fit_seconds": round(fitted.fit_seconds, 3),
                     **({"blend": blend.to_dict()} if blend else {})}
    return out


CODE_VERSION = "3"  # bump when a baseline or a metric changes what it reports


def cached_metrics(prep: Prepared) -> dict[str, dict]:
    """`metrics(prep)`, stored under artifacts/baselines/ per data, split and code version.

    The search over settings takes tens of seconds, so it runs once per split.
    """
    import json

    from recsys import paths

    key = f"{prep.fingerprint}-{prep.protocol}-{prep.split_seed}-{CODE_VERSION}"
    path = paths.artifacts_dir() / "baselines" / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    out = metrics(prep)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(out, sort_keys=True))
    os.replace(tmp, path)
    return out
