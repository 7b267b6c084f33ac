"""Parse the three GroupLens file layouts into raw tables, checking every line.

  100k  u.data (tab-separated), u.item and u.user (pipe-separated), Latin-1
  1m    ratings.dat, movies.dat, users.dat, fields separated by "::", Latin-1
  csv   ratings.csv and movies.csv with a header line, UTF-8 (ML-20M and ML-25M)

Ratings come back as NumPy columns (integer ids, float ratings, int64 timestamps), never
as per-row Python objects, so ML-25M fits; movies and users come back as small frames
with string ids. `recsys.data.canonical` turns them into the canonical form.
"""
from __future__ import annotations

import csv
import io
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys import datasets as ds
from recsys.datasets import Dataset
from recsys.errors import UserError
from recsys import files
from recsys.files import Container, bad_line, decode, lines, read_numeric

RawTables = tuple[dict[str, np.ndarray], pd.DataFrame, "pd.DataFrame | None"]

# Ids fit 32 bits in every MovieLens (ML-25M's largest is 209,171); half stars fit float32.
_RATINGS = {"user_id": pa.int32(), "movie_id": pa.int32(), "user_rating": pa.float32(), "timestamp": pa.int64()}


def read(container: Container, dataset: Dataset) -> RawTables:
    """(ratings columns, movies, users or None) of `dataset`'s layout in `container`."""
    missing = [name for name in dataset.files if not container.has(name)]
    if missing:
        raise UserError(f"cannot read MovieLens from {container.path}: no {', '.join(missing)} "
                        f"(not a complete GroupLens {dataset.name} copy)")
    return _PARSERS[dataset.layout](container, dataset)


def _ratings_stream(container: Container, name: str) -> Callable:
    return lambda: container.open(name, files.MAX_RATINGS_BYTES)  # looked up now: tests lower it


def _text(container: Container, name: str, dataset: Dataset) -> tuple[str, str]:
    where = container.location(name)
    return where, decode(container.read(name), where, dataset.encoding)


def _id(value: str, where: str, number: int, line: str, what: str) -> str:
    value = value.strip()
    if not value.isascii() or not value.isdigit():
        raise bad_line(where, number, line, f"{what} {value!r} is not a number")
    return str(int(value))  # "007" and "7" are one id, as in the ratings


# ---------------------------------------------------------------------- ML-100K
def _read_100k(container: Container, dataset: Dataset) -> RawTables:
    ratings = read_numeric(_ratings_stream(container, "u.data"), container.location("u.data"), "\t", _RATINGS)

    where, text = _text(container, "u.item", dataset)
    width = 5 + len(ds.GENRES_100K)
    movie_rows = []
    for number, line in lines(text):
        fields = line.split("|")
        if len(fields) != width:
            raise bad_line(where, number, line, f"expected {width} fields separated by '|', got {len(fields)}")
        flags = fields[5:]
        if any(f not in ("0", "1") for f in flags):
            raise bad_line(where, number, line, "genre flags must be 0 or 1")
        movie_rows.append((_id(fields[0], where, number, line, "movie id"), fields[1],
                           tuple(g for g, f in zip(ds.GENRES_100K, flags) if f == "1")))

    where, text = _text(container, "u.user", dataset)
    user_rows = []
    for number, line in lines(text):
        fields = line.split("|")
        if len(fields) != 5:
            raise bad_line(where, number, line, f"expected 5 fields separated by '|', got {len(fields)}")
        user_id, age, gender, occupation, zip_code = fields
        if not age.strip().isdigit():
            raise bad_line(where, number, line, f"age {age!r} is not a number")
        if gender not in ("M", "F"):
            raise bad_line(where, number, line, f"gender {gender!r} is not M or F")
        user_rows.append((_id(user_id, where, number, line, "user id"), float(age), gender == "M",
                          occupation, zip_code.strip()))
    users = pd.DataFrame(user_rows, columns=["user_id", ds.RAW_AGE, ds.GENDER, ds.OCCUPATION, ds.ZIP_CODE])
    return ratings, _movies(movie_rows), users


# ---------------------------------------------------------------------- ML-1M
def _read_1m(container: Container, dataset: Dataset) -> RawTables:
    # "a::b" split on ":" gives a, "", b: the empty fields are checked, the rest typed.
    columns = {"user_id": pa.int32(), "_1": pa.string(), "movie_id": pa.int32(), "_2": pa.string(),
               "user_rating": pa.float32(), "_3": pa.string(), "timestamp": pa.int64()}
    ratings = read_numeric(_ratings_stream(container, "ratings.dat"), container.location("ratings.dat"),
                           ":", columns, empty=("_1", "_2", "_3"))

    where, text = _text(container, "movies.dat", dataset)
    movie_rows = []
    for number, line in lines(text):
        if line.count("::") < 2:
            raise bad_line(where, number, line, "expected MovieID::Title::Genres")
        movie_id, rest = line.split("::", 1)
        title, genres = rest.rsplit("::", 1)  # a title may hold "::", the genres never do
        movie_rows.append((_id(movie_id, where, number, line, "movie id"), title,
                           tuple(ds.GENRE_RENAMES.get(g, g) for g in genres.split("|") if g)))

    where, text = _text(container, "users.dat", dataset)
    user_rows = []
    for number, line in lines(text):
        fields = line.split("::")
        if len(fields) != 5:
            raise bad_line(where, number, line, f"expected 5 fields separated by '::', got {len(fields)}")
        user_id, gender, age, occupation, zip_code = fields
        if gender not in ("M", "F"):
            raise bad_line(where, number, line, f"gender {gender!r} is not M or F")
        if not age.isdigit() or int(age) not in ds.AGE_BUCKETS_1M:
            raise bad_line(where, number, line, f"age {age!r} is not one of {ds.AGE_BUCKETS_1M}")
        if not occupation.isdigit() or int(occupation) >= len(ds.OCCUPATIONS_1M):
            raise bad_line(where, number, line, f"occupation {occupation!r} is not 0..{len(ds.OCCUPATIONS_1M) - 1}")
        user_rows.append((_id(user_id, where, number, line, "user id"), float(age), gender == "M",
                          ds.OCCUPATIONS_1M[int(occupation)], zip_code.strip()))
    users = pd.DataFrame(user_rows, columns=["user_id", ds.AGE_BUCKET, ds.GENDER, ds.OCCUPATION, ds.ZIP_CODE])
    return ratings, _movies(movie_rows), users


# ---------------------------------------------------------------------- ML-20M / ML-25M
def _read_csv(container: Container, dataset: Dataset) -> RawTables:
    ratings = read_numeric(_ratings_stream(container, "ratings.csv"), container.location("ratings.csv"),
                           ",", _RATINGS, header=ds.RATINGS_CSV_HEADER)

    where, text = _text(container, "movies.csv", dataset)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    movie_rows = []
    try:
        header = next(reader, None)
        if tuple(header or ()) != ds.MOVIES_CSV_HEADER:
            raise UserError(f"{where}: header is {','.join(header or [])!r}, expected {','.join(ds.MOVIES_CSV_HEADER)!r}")
        for fields in reader:
            if not fields:
                continue
            line = ",".join(fields)
            if len(fields) != 3:
                raise bad_line(where, reader.line_num, line, f"expected 3 comma-separated fields, got {len(fields)}")
            movie_id, title, genres = fields
            movie_rows.append((_id(movie_id, where, reader.line_num, line, "movie id"), title,
                               tuple(g for g in genres.split("|") if g)))
    except csv.Error as exc:
        raise UserError(f"{where}: line {reader.line_num}: {exc}") from None
    return ratings, _movies(movie_rows), None


def _movies(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["movie_id", "movie_title", "movie_genres"])


_PARSERS = {"100k": _read_100k, "1m": _read_1m, "csv": _read_csv}
