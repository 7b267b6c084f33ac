"""The MovieLens datasets this project reads, and every fact about each of them.

Names, GroupLens file layouts, expected counts, tensorflow-datasets config names, which
user features exist and the rating scale live here and nowhere else. The counts come
from the tfds `movie_lens` builder's descriptions and GroupLens's READMEs.
"""
from __future__ import annotations

from dataclasses import dataclass

from recsys.errors import UserError

# User feature columns, named as tfds names them. ML-100K has exact ages, ML-1M only the
# lower bound of an age range (a different feature, so it gets a different name);
# ML-20M and ML-25M have no user features at all.
RAW_AGE = "raw_user_age"
AGE_BUCKET = "bucketized_user_age"
GENDER = "user_gender"
OCCUPATION = "user_occupation_text"
ZIP_CODE = "user_zip_code"
USER_FEATURES = (RAW_AGE, AGE_BUCKET, GENDER, OCCUPATION, ZIP_CODE)  # canonical column order

# GroupLens's u.item genre columns, in file order, renamed as tfds names them.
GENRES_100K = (
    "Unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
# ML-1M writes "Children's"; tfds (and so this project) calls it "Children" everywhere.
GENRE_RENAMES = {"Children's": "Children"}
# ML-1M's users.dat age codes: the lower bound of each range.
AGE_BUCKETS_1M = (1, 18, 25, 35, 45, 50, 56)
# ML-1M's users.dat occupation codes 0..20, as the text tfds gives for them.
OCCUPATIONS_1M = (
    "other/not specified", "academic/educator", "artist", "clerical/admin",
    "college/grad student", "customer service", "doctor/health care",
    "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
    "tradesman/craftsman", "unemployed", "writer",
)
# The header lines of the 20M/25M CSV layout.
RATINGS_CSV_HEADER = ("userId", "movieId", "rating", "timestamp")
MOVIES_CSV_HEADER = ("movieId", "title", "genres")


@dataclass(frozen=True)
class Expected:
    """Counts a loaded dataset must have; `rated_movies` is checked only when known."""

    ratings: int
    users: int
    movies: int  # rows of the movies table, rated or not
    rated_movies: int | None = None


@dataclass(frozen=True)
class Dataset:
    """One MovieLens release: where its files are, what it holds, what it must count."""

    name: str  # the --dataset value
    title: str  # for messages
    layout: str  # "100k" (u.data), "1m" (::-separated .dat) or "csv" (20M/25M)
    folder: str  # the top folder in GroupLens's zip, and the zip's name without .zip
    files: tuple[str, ...]  # the tables read, ratings first
    tfds: str  # tfds configs movie_lens/<tfds>-ratings and movie_lens/<tfds>-movies
    expected: Expected
    user_features: tuple[str, ...]
    rating_step: float  # 1.0: whole stars 1..5; 0.5: half stars 0.5..5
    encoding: str  # the encoding GroupLens wrote the text tables in

    @property
    def rating_range(self) -> str:
        """The allowed ratings, for messages."""
        if self.rating_step == 1:
            return "1..5 in whole stars"
        return f"{self.rating_step:g}..5 in steps of {self.rating_step:g}"


ML_100K = Dataset(
    name="ml-100k", title="MovieLens 100K", layout="100k", folder="ml-100k",
    files=("u.data", "u.item", "u.user"), tfds="100k",
    expected=Expected(ratings=100_000, users=943, movies=1_682, rated_movies=1_682),
    user_features=(RAW_AGE, GENDER, OCCUPATION, ZIP_CODE), rating_step=1.0, encoding="ISO-8859-1",
)
ML_1M = Dataset(
    name="ml-1m", title="MovieLens 1M", layout="1m", folder="ml-1m",
    files=("ratings.dat", "movies.dat", "users.dat"), tfds="1m",
    expected=Expected(ratings=1_000_209, users=6_040, movies=3_883, rated_movies=3_706),
    user_features=(AGE_BUCKET, GENDER, OCCUPATION, ZIP_CODE), rating_step=1.0, encoding="ISO-8859-1",
)
ML_20M = Dataset(
    name="ml-20m", title="MovieLens 20M", layout="csv", folder="ml-20m",
    files=("ratings.csv", "movies.csv"), tfds="20m",
    expected=Expected(ratings=20_000_263, users=138_493, movies=27_278),
    user_features=(), rating_step=0.5, encoding="utf-8",
)
ML_25M = Dataset(
    name="ml-25m", title="MovieLens 25M", layout="csv", folder="ml-25m",
    files=("ratings.csv", "movies.csv"), tfds="25m",
    expected=Expected(ratings=25_000_095, users=162_541, movies=62_423),
    user_features=(), rating_step=0.5, encoding="utf-8",
)

DATASETS = {d.name: d for d in (ML_100K, ML_1M, ML_20M, ML_25M)}
NAMES = tuple(DATASETS)
DEFAULT = ML_100K.name


def get(name: str) -> Dataset:
    """The dataset called `name`, or a UserError listing the names there are."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(NAMES)}") from None
