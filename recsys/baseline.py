"""The popularity baseline: rank movies by training count, predict each movie's mean."""
from __future__ import annotations

import numpy as np

from recsys import metrics


def popularity_metrics(train: dict[str, np.ndarray], test: dict[str, np.ndarray], n_users: int,
                       n_movies: int) -> dict[str, float]:
    """Popularity's metrics on `test`, with the same definitions as the model's.

    Every user gets the same scores: the movie's number of training ratings. The
    rating prediction is the movie's mean training rating (the global mean if unseen).
    """
    counts = np.bincount(train["movie"], minlength=n_movies).astype(np.float64)
    sums = np.bincount(train["movie"], weights=train["rating"], minlength=n_movies)
    mean = float(train["rating"].mean())
    movie_mean = np.where(counts > 0, sums / np.maximum(counts, 1), mean)
    out = {"rmse": metrics.rmse(movie_mean[test["movie"]], test["rating"])}
    # Ranking by count alone: rank of a pair = how many movies are strictly more popular.
    more_popular = (counts[None, :] > counts[test["movie"]][:, None]).sum(axis=1)
    out.update(metrics.top_k_accuracy(more_popular))
    seen, relevant = per_user_items(train, n_users), per_user_items(test, n_users)
    out.update(metrics.filtered_recall(np.broadcast_to(counts, (n_users, n_movies)), seen, relevant))
    return out


def per_user_items(part: dict[str, np.ndarray], n_users: int) -> list[np.ndarray]:
    """The movies each user rated in `part`, as one array per user row."""
    order = np.argsort(part["user"], kind="stable")
    users, movies = part["user"][order], part["movie"][order]
    bounds = np.searchsorted(users, np.arange(n_users + 1))
    return [np.unique(movies[bounds[u]: bounds[u + 1]]) for u in range(n_users)]
