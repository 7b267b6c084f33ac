"""A MovieLens-like synthetic copy in the ML-25M CSV layout, for tests and scale benchmarks.

`generate` writes `ratings.csv` (userId,movieId,rating,timestamp; half stars, sorted by
user then movie as GroupLens sorts it) and `movies.csv` (movieId,title,genres), plus
`synthetic.json`, the marker that makes the loader call the copy synthetic and take its
expected counts from it rather than from the real ML-25M.

What makes it MovieLens-like:
  * power-law user activity (Pareto) with at least `MIN_PER_USER` ratings per user, and
    power-law movie popularity (Zipf, with a little uniform mass so the tail is reached);
  * ratings in sessions: bursts of ratings seconds to minutes apart, many in the same
    second (as in ML-100K), sessions spread over the user's active span;
  * taste: each user has one or two favourite genres; `TASTE` of their movies are drawn
    from those genres (by popularity within them), the rest from the whole catalogue, and
    they rate their genres' movies higher. Without it, which movies a user rated said
    nothing that popularity did not, and no recommender could beat popularity on it;
  * ratings from movie quality + user bias + taste + noise, mostly whole stars, some half stars;
  * titles "Word Word (1994)", some "Word, The (1994)" (quoted in the CSV), a few
    accented words (UTF-8), one to three genres, a few "(no genres listed)".
Everything is vectorised NumPy except the per-movie titles: a million ratings take seconds.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from recsys import datasets as ds
from recsys.errors import UserError

MARKER = "synthetic.json"
GENERATOR = "recsys.synth"
DATASET = ds.ML_25M.name  # the layout written
MIN_PER_USER = 5
MAX_RATINGS = 100_000_000
# ML-25M's averages: 154 ratings per user, 400 per movie.
RATINGS_PER_USER = 154
RATINGS_PER_MOVIE = 400
FIRST_TIME = 789_652_009  # 1995-01-09, ML-25M's first rating
LAST_TIME = 1_574_327_703  # 2019-11-21, its last
GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western")
NO_GENRES = "(no genres listed)"
# Share of a user's movies drawn from their favourite genres, and how much higher they
# rate those. A user's most-rated genre holds on average 48% of their ratings in ML-100K,
# against 41% with every user's movies shuffled among users; in a copy made with these
# values 38% against 27% (tests/test_synth.py). Genres are all the taste a copy has,
# where MovieLens's goes beyond them, so they carry more of it here.
TASTE = 0.4
TASTE_STARS = 0.3
WORDS = (
    "Love", "Night", "Man", "Day", "Life", "Story", "Time", "House", "World", "Girl", "Dead", "King",
    "Last", "Blood", "City", "Dark", "Dream", "Home", "Secret", "Summer", "Black", "Red", "Lost",
    "Christmas", "War", "Heart", "Star", "Moon", "River", "Road", "Island", "Ghost", "Killer",
    "Wild", "Little", "Big", "Return", "Game", "Street", "Sky", "Fire", "Water", "Angel", "Devil",
    "Queen", "Prince", "Child", "Family", "Father", "Mother", "Brother", "Sister", "Friend", "Stranger",
    "Shadow", "Light", "Silence", "Storm", "Winter", "Spring", "Paradise", "Hell", "Music", "Dance",
    "Murder", "Mystery", "Money", "Gold", "Iron", "Steel", "Glass", "Stone", "Garden", "Forest",
    "Ocean", "Desert", "Mountain", "Valley", "Train", "Ship", "Bridge", "Tower", "Castle", "Prison",
    "School", "Hotel", "Party", "Wedding", "Funeral", "Journey", "Escape", "Revenge", "Honor", "Truth",
    "Lies", "Sins", "Dreams", "Stars", "Wolves", "Horses", "Birds", "Zombie", "Robot", "Alien",
    "Batman", "Detective", "Doctor", "Soldier", "Captain", "Cowboy", "Vampire", "Monster", "Legend",
    "Amélie", "Café", "Noël", "Señor", "Über", "Misérables", "Déjà", "Ça", "Björk", "Fräulein",
)


@dataclass(frozen=True)
class Sizes:
    """What to generate."""

    users: int
    movies: int
    ratings: int
    seed: int = 42

    @classmethod
    def for_ratings(cls, ratings: int, users: int | None = None, movies: int | None = None,
                    seed: int = 42) -> "Sizes":
        """Sizes with ML-25M's ratios where users or movies are not given, then checked."""
        if ratings < MIN_PER_USER or ratings > MAX_RATINGS:
            raise UserError(f"--ratings must be {MIN_PER_USER}..{MAX_RATINGS:,}, got {ratings:,}")
        if users is None:
            users = max(1, min(round(ratings / RATINGS_PER_USER), ratings // MIN_PER_USER))
        if movies is None:  # enough movies that each user can reach its share without a full row
            movies = max(round(ratings / RATINGS_PER_MOVIE), math.ceil(2 * ratings / max(users, 1)), MIN_PER_USER)
        return cls(users, movies, ratings, seed).check()

    @property
    def min_per_user(self) -> int:
        """Every user's least number of ratings."""
        return min(MIN_PER_USER, self.movies)

    @property
    def max_per_user(self) -> int:
        """Every user's most: no one rates more than 60% of the catalogue (ML-25M: 54%)."""
        return max(self.min_per_user, int(0.6 * self.movies))

    def check(self) -> "Sizes":
        """Self, or a UserError saying which sizes cannot go together."""
        if self.users < 1 or self.movies < 1:
            raise UserError(f"--users and --movies must be positive, got {self.users} and {self.movies}")
        if self.seed < 0 or self.seed >= 2**32:
            raise UserError(f"--seed must be 0..{2**32 - 1}, got {self.seed}")
        low, high = self.users * self.min_per_user, self.users * self.max_per_user
        if not low <= self.ratings <= high:
            raise UserError(f"{self.users:,} users and {self.movies:,} movies need {low:,}..{high:,} ratings "
                            f"(each user rates {self.min_per_user}..{self.max_per_user} movies), got {self.ratings:,}")
        return self


# ---------------------------------------------------------------------- the tables
def tables(sizes: Sizes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ratings, movies) frames in the ML-25M CSV columns, ratings sorted by user, movie."""
    rng = np.random.default_rng(sizes.seed)
    movie_ids = np.sort(rng.choice(3 * sizes.movies, size=sizes.movies, replace=False)) + 1  # ids with gaps
    popularity = _movie_popularity(rng, sizes.movies)
    genres = _genres(rng, sizes.movies)
    favourite = _favourites(rng, genres, sizes.users)
    counts = _user_counts(rng, sizes)
    user, movie = _pairs(rng, counts, popularity, genres, favourite)
    liked = genres[movie, favourite[user, 0]] | genres[movie, favourite[user, 1]]
    rating = _ratings(rng, user, movie, popularity, liked, sizes.users)
    timestamp = _timestamps(rng, user, counts)
    order = np.lexsort((movie_ids[movie], user))  # GroupLens order: user, then movie id
    ratings = pd.DataFrame({"userId": user[order] + 1, "movieId": movie_ids[movie[order]],
                            "rating": rating[order], "timestamp": timestamp[order]})
    movies = pd.DataFrame({"movieId": movie_ids, "title": _titles(rng, sizes.movies),
                           "genres": _genre_names(genres)})
    return ratings, movies


def _movie_popularity(rng: np.random.Generator, n: int) -> np.ndarray:
    """Sampling weight per movie: Zipf over a random ranking, plus 0.5% uniform.

    At ML-25M's size the top 10% of movies then draw about 85% of the ratings, as there.
    """
    rank = rng.permutation(n)
    zipf = 1.0 / (rank + 10.0) ** 1.2
    return 0.995 * zipf / zipf.sum() + 0.005 / n


def _user_counts(rng: np.random.Generator, sizes: Sizes) -> np.ndarray:
    """Ratings per user: the minimum plus a Pareto share of the rest, capped per user."""
    low, high = sizes.min_per_user, sizes.max_per_user
    # Lomax weights: in ML-25M sizes, median user about 60 ratings (71 there), mean 154.
    weight = rng.pareto(1.4, sizes.users) + 0.3
    extra = np.zeros(sizes.users, np.int64)
    left = sizes.ratings - low * sizes.users
    while left > 0:  # water-filling: hand out by weight, never past the cap
        room = (high - low) - extra
        open_ = np.flatnonzero(room > 0)
        share = np.floor(weight[open_] / weight[open_].sum() * left).astype(np.int64)
        share = np.minimum(share, room[open_])
        if share.sum() == 0:  # rounding leftovers: one more each to users drawn by weight
            pick = rng.choice(open_, size=min(left, len(open_)), replace=False, p=weight[open_] / weight[open_].sum())
            share = np.zeros(len(open_), np.int64)
            share[np.searchsorted(open_, np.sort(pick))] = 1
        extra[open_] += share
        left -= int(share.sum())
    return low + extra


def _favourites(rng: np.random.Generator, genres: np.ndarray, n_users: int) -> np.ndarray:
    """[users, 2] genre indices: each user's favourite genres, drawn by how many movies
    have them; a user with one favourite holds it twice."""
    per_genre = genres.sum(axis=0)
    # A catalogue of a movie or two may have no genres at all: then any genre, alike.
    share = per_genre / per_genre.sum() if per_genre.any() else np.full(len(per_genre), 1 / len(per_genre))
    first = rng.choice(len(share), size=n_users, p=share)
    second = np.where(rng.random(n_users) < 0.5, first, rng.choice(len(share), size=n_users, p=share))
    return np.stack([first, second], axis=1)


def _pools(popularity: np.ndarray, genres: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(movies, their cumulative popularity) to draw from: one per genre, then the whole
    catalogue (index -1). A genre no movie has (tiny catalogues) draws from the whole catalogue."""
    everything = np.arange(len(popularity))
    pools = [np.flatnonzero(genres[:, g]) for g in range(genres.shape[1])]
    pools = [pool if len(pool) else everything for pool in pools] + [everything]
    return [(pool, np.cumsum(popularity[pool])) for pool in pools]


def _draw(rng: np.random.Generator, user: np.ndarray, pools: list, favourite: np.ndarray) -> np.ndarray:
    """One movie per entry of `user`: from one of the user's favourite genres with
    probability `TASTE`, else from the whole catalogue, by popularity either way."""
    pick = favourite[user, rng.integers(0, 2, len(user))]
    source = np.where(rng.random(len(user)) < TASTE, pick, -1)  # -1: the whole catalogue
    movie = np.empty(len(user), np.int64)
    for g in np.unique(source):
        at = np.flatnonzero(source == g)
        pool, cdf = pools[g]
        movie[at] = pool[np.minimum(np.searchsorted(cdf, rng.random(len(at)) * cdf[-1]), len(pool) - 1)]
    return movie


def _pairs(rng: np.random.Generator, counts: np.ndarray, popularity: np.ndarray, genres: np.ndarray,
           favourite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, movie) pairs, `counts[u]` per user, movies drawn by `_draw`."""
    n_movies = len(popularity)
    pools = _pools(popularity, genres)
    chunks: list[np.ndarray] = []  # sorted, disjoint arrays of keys user * n_movies + movie
    need = counts.copy()
    for _ in range(200):
        if not need.any():
            break
        user = np.repeat(np.arange(len(need), dtype=np.int64), need)
        movie = _draw(rng, user, pools, favourite)
        new = np.unique(user * n_movies + movie)
        for chunk in chunks:  # drop pairs drawn before
            if len(chunk):
                pos = np.minimum(np.searchsorted(chunk, new), len(chunk) - 1)
                new = new[chunk[pos] != new]
        chunks.append(new)  # never more than need[u] per user: only need[u] were drawn
        need -= np.bincount(new // n_movies, minlength=len(need))
    if need.any():  # the heaviest users' last few movies: uniform over what they lack
        chunks.append(_fill(rng, need, np.concatenate(chunks), n_movies))
    keys = np.concatenate(chunks)
    return (keys // n_movies).astype(np.int64), (keys % n_movies).astype(np.int64)


def _fill(rng: np.random.Generator, need: np.ndarray, taken: np.ndarray, n_movies: int) -> np.ndarray:
    out = []
    for u in np.flatnonzero(need):
        have = taken[(taken >= u * n_movies) & (taken < (u + 1) * n_movies)] - u * n_movies
        free = np.setdiff1d(np.arange(n_movies), have)
        out.append(u * n_movies + rng.choice(free, size=need[u], replace=False))
    return np.sort(np.concatenate(out))


def _ratings(rng: np.random.Generator, user: np.ndarray, movie: np.ndarray, popularity: np.ndarray,
             liked: np.ndarray, n_users: int) -> np.ndarray:
    """Half-star ratings: quality (popular movies a little better) + user bias + taste
    (`liked`: the movie has one of the user's favourite genres) + noise."""
    pop = np.log(popularity)
    quality = rng.normal(0, 0.45, len(popularity)) + 0.15 * (pop - pop.mean()) / (pop.std() + 1e-9)
    bias = rng.normal(0, 0.35, n_users)
    x = 3.45 + quality[movie] + bias[user] + TASTE_STARS * liked + rng.normal(0, 0.85, len(user))
    whole = rng.random(len(user)) < 0.75  # ML-25M: most ratings are whole stars
    stars = np.where(whole, np.clip(np.round(x), 1, 5), np.clip(np.round(2 * x) / 2, 0.5, 5))
    return stars.astype(np.float32)


def _timestamps(rng: np.random.Generator, user: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per rating a time: sessions of ratings seconds apart, spread over the user's span."""
    n = len(user)
    # Ratings of one user in a random order (pairs arrive sorted by movie).
    order = np.lexsort((rng.random(n), user))
    u = user[order]
    first = np.r_[True, u[1:] != u[:-1]]
    new_session = first | (rng.random(n) < 1 / 12)  # about 12 ratings per session
    sessions = np.bincount(u, weights=new_session, minlength=len(counts))
    span = np.where(rng.random(len(counts)) < 0.4, 0.0, rng.exponential(365 * 86400, len(counts)))
    span = np.minimum(span, 0.5 * (LAST_TIME - FIRST_TIME))
    start = FIRST_TIME + rng.random(len(counts)) * (LAST_TIME - FIRST_TIME - span)
    # Within a session: 45% in the same second, else minutes apart; between sessions:
    # the user's span shared out at random.
    within = np.where(rng.random(n) < 0.45, 0.0, np.ceil(rng.exponential(50.0, n)))
    between = rng.exponential(1.0, n) * span[u] / np.maximum(sessions[u], 1)
    gap = np.where(first, 0.0, np.where(new_session, between + 600, within))
    total = np.cumsum(gap)
    at = start[u] + total - total[np.flatnonzero(first)][np.cumsum(first) - 1]
    out = np.empty(n, np.int64)
    out[order] = np.minimum(at, LAST_TIME).astype(np.int64)
    return out


def _titles(rng: np.random.Generator, n: int) -> list[str]:
    zipf = 1.0 / (np.arange(len(WORDS)) + 5.0)
    n_words = rng.choice([1, 2, 3, 4], size=n, p=[0.25, 0.4, 0.25, 0.1])
    words = rng.choice(len(WORDS), size=(n, 4), p=zipf / zipf.sum())
    years = np.clip(2019 - np.floor(rng.exponential(18, n)), 1902, 2019).astype(int)
    the = rng.random(n) < 0.08
    titles = []
    for i in range(n):
        name = " ".join(WORDS[w] for w in words[i, : n_words[i]])
        titles.append(f"{name}{', The' if the[i] else ''} ({years[i]})")
    return titles


def _genres(rng: np.random.Generator, n: int) -> np.ndarray:
    """[movies, GENRES] booleans: one to three genres each, about 1% with none."""
    k = rng.choice([1, 2, 3], size=n, p=[0.4, 0.4, 0.2])
    picks = np.argsort(rng.random((n, len(GENRES))), axis=1)[:, :3]
    none = rng.random(n) < 0.01
    out = np.zeros((n, len(GENRES)), bool)
    for j in range(3):
        chosen = (j < k) & ~none
        out[np.flatnonzero(chosen), picks[chosen, j]] = True
    return out


def _genre_names(genres: np.ndarray) -> list[str]:
    """The CSV's `genres` column: names joined by "|" in GENRES order, or NO_GENRES."""
    return ["|".join(GENRES[g] for g in np.flatnonzero(row)) or NO_GENRES for row in genres]


# ---------------------------------------------------------------------- writing
def generate(out: str | os.PathLike, sizes: Sizes) -> dict:
    """Write a synthetic ML-25M-layout copy into `out`; return what the marker records."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir() and not (out / MARKER).exists() and any((out / n).exists() for n in ds.ML_25M.files):
        raise UserError(f"--out {out} holds a MovieLens copy that is not synthetic; choose another folder")
    marker = {"generator": GENERATOR, "dataset": DATASET, **asdict(sizes)}
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).unlink(missing_ok=True)  # no marker while the tables are incomplete
        ratings, movies = tables(sizes)
        _write_ratings(out / "ratings.csv", ratings)
        tmp = out / "movies.csv.tmp"
        movies.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8")
        tmp.replace(out / "movies.csv")
        (out / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    except OSError as exc:
        raise UserError(f"cannot write the synthetic copy to {out}: {exc.strerror or exc}") from None
    return marker


def _write_ratings(path: Path, ratings: pd.DataFrame) -> None:
    # GroupLens writes "4.0" and "3.5": the ten strings, taken by half-star index.
    stars = pa.array([f"{s / 2:.1f}" for s in range(11)])
    table = pa.table({
        "userId": pa.array(ratings.userId.to_numpy()),
        "movieId": pa.array(ratings.movieId.to_numpy()),
        "rating": stars.take(pa.array(np.round(ratings.rating.to_numpy() * 2).astype(np.int8))),
        "timestamp": pa.array(ratings.timestamp.to_numpy()),
    })
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "wb") as f:
        f.write((",".join(ds.RATINGS_CSV_HEADER) + "\n").encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    tmp.replace(path)


def read_marker(raw: bytes, where: str) -> dict:
    """The marker's content, checked: generator, dataset and positive integer counts."""
    try:
        marker = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{where}: not a synthetic-copy marker: {exc}") from None
    ok = (isinstance(marker, dict) and marker.get("generator") == GENERATOR and marker.get("dataset") in ds.DATASETS
          and all(isinstance(marker.get(k), int) and marker[k] > 0 for k in ("users", "movies", "ratings")))
    if not ok:
        raise UserError(f"{where}: not a synthetic-copy marker written by {GENERATOR}")
    return marker


def expected(marker: dict) -> ds.Expected:
    """The counts a synthetic copy must have: the ones it was generated with."""
    return ds.Expected(ratings=marker["ratings"], users=marker["users"], movies=marker["movies"])
