"""ML-1M, ML-20M and ML-25M: their GroupLens layouts, tfds configs, counts and malformed copies."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

import synthetic
from recsys import data, datasets
from recsys.errors import UserError

EXPECTED = synthetic.EXPECTED


@pytest.fixture
def ml100k(grouplens_dir):
    return data.load(grouplens_dir, expected=EXPECTED)


def _layouts(tmp_path) -> dict[str, tuple]:
    """Every layout of the same synthetic tables: path, dataset it holds."""
    return {
        "ml-1m folder": (synthetic.write_ml1m(tmp_path / "a"), "ml-1m"),
        "ml-1m parent folder": (synthetic.write_ml1m(tmp_path / "b").parent, "ml-1m"),
        "ml-1m zip": (synthetic.write_zip(tmp_path / "ml-1m.zip", "ml-1m", synthetic.ml1m_bytes()), "ml-1m"),
        "ml-20m folder": (synthetic.write_csv_layout(tmp_path / "c", "ml-20m"), "ml-20m"),
        "ml-25m folder": (synthetic.write_csv_layout(tmp_path / "d", "ml-25m"), "ml-25m"),
        "ml-25m zip": (synthetic.write_zip(tmp_path / "ml-25m.zip", "ml-25m", synthetic.csv_bytes()), "ml-25m"),
    }


LAYOUTS = ["ml-1m folder", "ml-1m parent folder", "ml-1m zip", "ml-20m folder", "ml-25m folder", "ml-25m zip"]


@pytest.mark.parametrize("which", LAYOUTS)
def test_every_layout_gives_the_same_ratings(tmp_path, ml100k, which):
    path, name = _layouts(tmp_path)[which]
    for dataset in (None, name):  # found from the files, or asked for
        data._CACHE.clear()
        ml = data.load(path, expected=EXPECTED, dataset=dataset)
        assert ml.dataset == name and ml.source == f"grouplens:{path}" and not ml.synthetic
        pd.testing.assert_frame_equal(ml.ratings, ml100k.ratings)
        assert list(ml.movies.movie_id) == list(ml100k.movies.movie_id)
        assert list(ml.movies.movie_title) == list(ml100k.movies.movie_title)
        assert list(ml.users.user_id) == list(ml100k.users.user_id)
        assert ml.user_features == datasets.get(name).user_features
        assert tuple(ml.users.columns) == ("user_id",) + ml.user_features
        assert ml.summary()["user_features"] == list(ml.user_features)


def test_ids_are_compact_categoricals(ml100k):
    for column, table in (("user_id", ml100k.users), ("movie_id", ml100k.movies)):
        ids = ml100k.ratings[column]
        assert isinstance(ids.dtype, pd.CategoricalDtype)
        assert list(ids.cat.categories) == list(table[column])
        # The codes are rows of the users / movies table.
        np.testing.assert_array_equal(table[column].to_numpy()[ids.cat.codes], ids.astype(str).to_numpy())
        assert ids.cat.codes.dtype.itemsize <= 4


def test_ml1m_user_features_and_genres(tmp_path):
    ml = data.load(synthetic.write_ml1m(tmp_path), expected=EXPECTED)
    assert ml.user_features == ("bucketized_user_age", "user_gender", "user_occupation_text", "user_zip_code")
    assert ml.users.bucketized_user_age.dtype == np.float32 and ml.users.user_gender.dtype == bool
    _, items, users = synthetic.tables()
    got = ml.users.set_index("user_id")
    for u in users.itertuples():
        row = got.loc[str(u.user_id)]
        assert row.bucketized_user_age == synthetic.age_bucket(u.age)
        assert row.user_gender == (u.gender == "M")
        assert row.user_occupation_text == synthetic.ML1M_OCCUPATIONS[u.user_id % 21]
        assert row.user_zip_code == u.zip_code
    assert set(got.bucketized_user_age) <= set(synthetic.ML1M_AGES)
    genres = ml.movies.set_index("movie_id").movie_genres
    assert "Children" in genres["2"]  # ML-1M's "Children's", named as tfds names it
    assert not any("Children's" in g for g in genres)
    assert genres["1"] == ()  # only "unknown" in u.item, which ML-1M does not have
    assert ml.movies.set_index("movie_id").movie_title[synthetic.MISERABLES_ID] == synthetic.MISERABLES


def test_csv_layout_half_stars_quotes_and_utf8(tmp_path):
    content = synthetic.csv_bytes()
    lines = content["ratings.csv"].decode().splitlines(keepends=True)
    u, m, _, t = lines[5].split(",")
    lines[5] = f"{u},{m},3.5,{t}"
    content["ratings.csv"] = "".join(lines).encode()
    movies = content["movies.csv"].decode().replace("Synthetic Film 4 (1964)", "千と千尋の神隠し (2001)")
    content["movies.csv"] = movies.encode("utf-8")
    assert '"Misérables, Les (1995)"' in movies  # quoted: the title holds a comma
    ml = data.load(synthetic.write_layout(tmp_path, "ml-25m", content), expected=EXPECTED)
    assert ml.user_features == () and list(ml.users.columns) == ["user_id"]
    assert 3.5 in set(ml.ratings.user_rating)
    titles = ml.movies.set_index("movie_id").movie_title
    assert titles["4"] == "千と千尋の神隠し (2001)"
    assert titles[synthetic.MISERABLES_ID] == synthetic.MISERABLES
    genres = ml.movies.set_index("movie_id").movie_genres
    assert genres["1"] == ("Unknown",)
    no_genres = [g for g in genres if g == (synthetic.NO_GENRES,)]
    assert len(no_genres) == sum(1 for line in movies.splitlines() if line.endswith(synthetic.NO_GENRES))


def test_csv_layout_needs_the_dataset_named(tmp_path):
    plain = synthetic.write_layout(tmp_path, "my-copy", synthetic.csv_bytes())
    with pytest.raises(UserError, match="--dataset"):
        data.load(plain, expected=EXPECTED)
    assert data.load(plain, expected=EXPECTED, dataset="ml-20m").dataset == "ml-20m"
    (plain / "README.txt").write_text("Summary\n=======\n\nThis dataset (ml-20m) describes 5-star rating ...\n")
    data._CACHE.clear()
    assert data.load(plain, expected=EXPECTED).dataset == "ml-20m"


def test_dataset_must_match_the_files(grouplens_dir, tmp_path):
    with pytest.raises(UserError, match="holds a ml-100k copy, not ml-1m"):
        data.load(grouplens_dir, dataset="ml-1m")
    with pytest.raises(UserError, match="holds a ml-25m copy, not ml-20m"):
        data.load(synthetic.write_csv_layout(tmp_path), dataset="ml-20m")


def test_unknown_dataset_name(grouplens_dir):
    with pytest.raises(UserError, match="ml-100k, ml-1m, ml-20m, ml-25m"):
        data.load(grouplens_dir, dataset="ml-10m")


@pytest.mark.parametrize("name, counts", [
    ("ml-1m", "(1000209, 6040, 3883)"), ("ml-20m", "(20000263, 138493, 27278)"), ("ml-25m", "(25000095, 162541, 62423)"),
])
def test_real_counts_are_checked_by_default(tmp_path, name, counts):
    path = synthetic.write_ml1m(tmp_path) if name == "ml-1m" else synthetic.write_csv_layout(tmp_path, name)
    with pytest.raises(UserError) as err:
        data.load(path)
    assert counts in str(err.value) and "(600, 40, 30)" in str(err.value)
    assert datasets.get(name).title in str(err.value)


def test_rated_movies_are_checked_when_known(tmp_path):
    path = synthetic.write_ml1m(tmp_path)
    ml = data.load(path, expected=EXPECTED)
    assert ml.rated_movies == 30
    with pytest.raises(UserError, match="30 movies are rated, expected 29"):
        data.validate(ml, datasets.Expected(ratings=600, users=40, movies=30, rated_movies=29))
    # A movie nobody rated still belongs to the catalogue.
    content = synthetic.ml1m_bytes()
    content["movies.dat"] += "999::Nobody Saw This (1999)::Drama\n".encode("latin-1")
    ml = data.load(synthetic.write_layout(tmp_path / "more", "ml-1m", content), expected=None)
    assert len(ml.movies) == 31 and ml.rated_movies == 30
    assert ml.summary()["rated_movies"] == 30 and ml.summary()["movies"] == 31


def test_half_stars_are_not_ml1m(tmp_path):
    content = synthetic.ml1m_bytes()
    content["ratings.dat"] += b"1::2::3.5::978300760\n"
    with pytest.raises(UserError, match=r"outside 1\.\.5 in whole stars"):
        data.load(synthetic.write_layout(tmp_path, "ml-1m", content), expected=None)


@pytest.mark.parametrize("bad", ["0.0", "5.5", "0.25", "nan"])
def test_csv_ratings_outside_half_stars(tmp_path, bad):
    content = synthetic.csv_bytes()
    content["ratings.csv"] += f"1,2,{bad},978300760\n".encode()
    with pytest.raises(UserError, match=r"outside 0\.5\.\.5 in steps of 0\.5"):
        data.load(synthetic.write_layout(tmp_path, "ml-25m", content), expected=None)


# --------------------------------------------------------------------------- malformed copies
def _corrupt(content: dict[str, bytes], name: str, edit) -> dict[str, bytes]:
    out = dict(content)
    out[name] = edit(out[name])
    return out


def _append(line: bytes):
    return lambda raw: raw + line


def _replace_line(index: int, line: bytes):
    def edit(raw: bytes) -> bytes:
        lines = raw.split(b"\n")
        lines[index] = line
        return b"\n".join(lines)
    return edit


MALFORMED = {
    # name: (layout, file, edit, message fragment)
    "u.data short line": ("ml-100k", "u.data", _replace_line(3, b"1\t2\t3"), r"u.data: line 4: expected 4 fields separated by '\\t', got 3"),
    "u.data word": ("ml-100k", "u.data", _append(b"1\t2\tfive\t881250949\n"), r"line 601: 'five' is not a number"),
    "u.data empty field": ("ml-100k", "u.data", _append(b"1\t2\t\t881250949\n"), r"line 601: '' is not a number"),
    "u.data float id": ("ml-100k", "u.data", _append(b"1.5\t2\t3\t881250949\n"), r"line 601: '1.5' is not an integer"),
    "u.item short": ("ml-100k", "u.item", _append(b"31|Short (1999)|01-Jan-1999\n"), r"u.item: line 31: expected 24 fields"),
    "u.item flag": ("ml-100k", "u.item", _replace_line(0, b"1|T (1995)|||u|2" + b"|0" * 18), r"u.item: line 1: genre flags must be 0 or 1"),
    "u.item id": ("ml-100k", "u.item", _replace_line(0, b"x1|T (1995)|||u" + b"|0" * 19), r"u.item: line 1: movie id 'x1' is not a number"),
    "u.user gender": ("ml-100k", "u.user", _replace_line(0, b"1|24|X|technician|85711"), r"u.user: line 1: gender 'X' is not M or F"),
    "u.user age": ("ml-100k", "u.user", _replace_line(0, b"1|old|M|technician|85711"), r"u.user: line 1: age 'old' is not a number"),
    "u.user fields": ("ml-100k", "u.user", _replace_line(1, b"2|53|F|other"), r"u.user: line 2: expected 5 fields"),
    "ratings.dat short": ("ml-1m", "ratings.dat", _replace_line(9, b"1::1193::5"), r"ratings.dat: line 10: expected 4 fields separated by '::', got 3"),
    "ratings.dat one colon": ("ml-1m", "ratings.dat", _append(b"1:1193::5::978300760\n"), r"line 601: expected 4 fields separated by '::', got 3"),
    "ratings.dat triple colon": ("ml-1m", "ratings.dat", _append(b"1:::1193::5::978300760\n"), r"line 601: "),
    "ratings.dat word": ("ml-1m", "ratings.dat", _append(b"1::1193::five::978300760\n"), r"line 601: 'five' is not a number"),
    "movies.dat fields": ("ml-1m", "movies.dat", _append(b"31::No Genres (1999)\n"), r"movies.dat: line 31: expected MovieID::Title::Genres"),
    "users.dat age": ("ml-1m", "users.dat", _replace_line(0, b"1::F::17::10::48067"), r"users.dat: line 1: age '17' is not one of"),
    "users.dat occupation": ("ml-1m", "users.dat", _replace_line(0, b"1::F::1::21::48067"), r"users.dat: line 1: occupation '21' is not 0..20"),
    "users.dat fields": ("ml-1m", "users.dat", _replace_line(0, b"1::F::1::10"), r"users.dat: line 1: expected 5 fields"),
    "ratings.csv header": ("ml-25m", "ratings.csv", _replace_line(0, b"user,movie,rating,time"), r"ratings.csv: header is 'user,movie,rating,time'"),
    "ratings.csv short": ("ml-25m", "ratings.csv", _replace_line(5, b"1,2,3.5"), r"ratings.csv: line 6: expected 4 fields separated by ',', got 3"),
    "ratings.csv word": ("ml-25m", "ratings.csv", _append(b"1,2,four,978300760\n"), r"line 602: 'four' is not a number"),
    "movies.csv header": ("ml-25m", "movies.csv", _replace_line(0, b"id,title,genres"), r"movies.csv: header is 'id,title,genres'"),
    "movies.csv fields": ("ml-25m", "movies.csv", _append(b"31,A,B (1999),Drama\n"), r"movies.csv: line 32: expected 3 comma-separated fields, got 4"),
    "movies.csv quote": ("ml-25m", "movies.csv", _append(b'31,"Open quote (1999),Drama\n'), r"movies.csv: line \d+: "),
    "movies.csv bytes": ("ml-25m", "movies.csv", _append(b"31,Caf\xe9 (1999),Drama\n"), r"movies.csv: line 32: not UTF-8 text"),
    "u.item NUL": ("ml-100k", "u.item", _append(b"\x00\x00\x00\n"), r"u.item: binary data"),
    "u.data empty": ("ml-100k", "u.data", lambda raw: b"", r"u.data: empty file"),
}


def _content(layout: str) -> tuple[str, dict[str, bytes]]:
    return {"ml-100k": ("ml-100k", synthetic.grouplens_bytes()), "ml-1m": ("ml-1m", synthetic.ml1m_bytes()),
            "ml-25m": ("ml-25m", synthetic.csv_bytes())}[layout]


@pytest.mark.parametrize("case", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_malformed_copy_is_one_line_error(tmp_path, case, as_zip):
    layout, name, edit, message = case
    folder, content = _content(layout)
    content = _corrupt(content, name, edit)
    if as_zip:
        path = synthetic.write_zip(tmp_path / f"{folder}.zip", folder, content)
    else:
        path = synthetic.write_layout(tmp_path, folder, content)
    with pytest.raises(UserError, match=message) as err:
        data.load(path, expected=None)
    assert "\n" not in str(err.value)
    assert name in str(err.value)


def test_copies_without_a_table(tmp_path):
    content = synthetic.ml1m_bytes()
    del content["users.dat"]
    with pytest.raises(UserError, match=r"cannot read MovieLens from .*: no users.dat"):
        data.load(synthetic.write_layout(tmp_path, "ml-1m", content))
    content = synthetic.csv_bytes()
    del content["movies.csv"]
    with pytest.raises(UserError, match="no movies.csv"):
        data.load(synthetic.write_zip(tmp_path / "ml-25m.zip", "ml-25m", content))


# --------------------------------------------------------------------------- tensorflow-datasets
@pytest.mark.parametrize("name, features", [
    ("ml-1m", ("bucketized_user_age", "user_gender", "user_occupation_text", "user_zip_code")),
    ("ml-20m", ()),
    ("ml-25m", ()),
])
def test_load_tfds_random_mock(name, features):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=30):
        ml = data.load_tfds(name)
    assert ml.source == "tfds" and ml.dataset == name
    assert ml.user_features == features
    assert len(ml.ratings) == 30 and len(ml.movies) == 30
    assert ml.ratings.user_rating.dtype == np.float32 and ml.ratings.timestamp.dtype == np.int64
    assert not ml.users.user_id.duplicated().any()
    assert set(ml.users.user_id) == set(ml.ratings.user_id.astype(str))


def _tfds_examples(builder, gl: data.MovieLens, order: np.ndarray):
    """tfds examples for `builder`'s config built from the canonical tables of `gl`."""
    genre = builder.info.features["movie_genres"].feature
    movies = gl.movies.set_index("movie_id")
    users = gl.users.set_index("user_id")
    if builder.builder_config.name.endswith("-movies"):
        for movie_id, row in movies.iterrows():
            yield {"movie_id": movie_id, "movie_title": row.movie_title,
                   "movie_genres": np.array([genre.str2int(g) for g in row.movie_genres], np.int64)}
        return
    for i in order:
        r = gl.ratings.iloc[i]
        m = movies.loc[r.movie_id]
        ex = {"movie_id": r.movie_id, "movie_title": m.movie_title,
              "movie_genres": np.array([genre.str2int(g) for g in m.movie_genres], np.int64),
              "user_id": r.user_id, "user_rating": np.float32(r.user_rating), "timestamp": np.int64(r.timestamp)}
        if gl.user_features:
            u = users.loc[r.user_id]
            ex.update({"user_gender": bool(u.user_gender), "bucketized_user_age": np.float32(u.bucketized_user_age),
                       "user_occupation_label": np.int64(0), "user_occupation_text": u.user_occupation_text,
                       "user_zip_code": u.user_zip_code})
        yield ex


@pytest.mark.parametrize("name", ["ml-1m", "ml-25m"])
def test_load_tfds_equals_grouplens(tmp_path, name):
    """tfds examples made from a GroupLens copy's tables give back the same tables."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    path = synthetic.write_ml1m(tmp_path) if name == "ml-1m" else synthetic.write_csv_layout(tmp_path, name)
    gl = data.load(path, expected=EXPECTED)
    order = np.random.RandomState(0).permutation(len(gl.ratings))

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        return tf.data.Dataset.from_generator(lambda: _tfds_examples(self, gl, order),
                                              output_types=self.info.features.dtype,
                                              output_shapes=self.info.features.shape)

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        ml = data.load_tfds(name)
    data.validate(ml, EXPECTED)
    for a, b in ((ml.ratings, gl.ratings), (ml.movies, gl.movies), (ml.users, gl.users)):
        pd.testing.assert_frame_equal(a, b)
    assert ml.fingerprint() == gl.fingerprint()


@pytest.mark.parametrize("name, zip_name, configs", [
    ("ml-1m", "ml-1m.zip", ("1m-ratings", "1m-movies")),
    ("ml-25m", "ml-25m.zip", ("25m-ratings", "25m-movies")),
])
def test_tfds_available_per_dataset(name, zip_name, configs):
    data_dir, manual = data.tfds_dirs()
    assert data.tfds_available(name) is False
    manual.mkdir(parents=True)
    (manual / "ml-100k.zip").write_bytes(b"PK")  # another dataset's zip does not count
    assert data.tfds_available(name) is False
    (manual / zip_name).write_bytes(b"PK")
    assert data.tfds_available(name) is True
    (manual / zip_name).unlink()
    for config in configs:
        assert data.tfds_available(name) is False
        version = data_dir / "movie_lens" / config / "0.1.1"
        version.mkdir(parents=True)
        (version / "dataset_info.json").write_text("{}")
    assert data.tfds_available(name) is True


@pytest.mark.parametrize("name", ["ml-1m", "ml-20m", "ml-25m"])
def test_no_source_for_other_datasets(name):
    with pytest.raises(UserError) as err:
        data.load(dataset=name)
    message = str(err.value)
    assert f"{name}.zip" in message and "--data" in message and str(data.tfds_dirs()[1]) in message
    assert "make setup" not in message  # the offline default is ML-100K only


# --------------------------------------------------------------------------- facts
def test_dataset_facts_are_consistent():
    assert datasets.NAMES == ("ml-100k", "ml-1m", "ml-20m", "ml-25m")
    assert datasets.DEFAULT == "ml-100k"
    for info in datasets.DATASETS.values():
        assert info.folder == info.name and set(info.user_features) <= set(datasets.USER_FEATURES)
        assert info.expected.rated_movies is None or info.expected.rated_movies <= info.expected.movies
    assert data.ML100K == datasets.ML_100K.expected


def test_synthetic_marker_is_checked(tmp_path):
    path = synthetic.write_csv_layout(tmp_path)
    (path / "synthetic.json").write_text("{not json")
    with pytest.raises(UserError, match="synthetic.json: not a synthetic-copy marker"):
        data.load(path)
    (path / "synthetic.json").write_text(json.dumps({"generator": "someone else", "dataset": "ml-25m"}))
    with pytest.raises(UserError, match="not a synthetic-copy marker written by recsys.synth"):
        data.load(path)


def test_zip_with_two_datasets_picks_the_requested_one(tmp_path):
    path = tmp_path / "both.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, raw in synthetic.csv_bytes().items():
            zf.writestr(f"ml-20m/{name}", raw)
            zf.writestr(f"ml-25m/{name}", raw)
    assert data.load(path, expected=EXPECTED, dataset="ml-25m").dataset == "ml-25m"
    data._CACHE.clear()
    assert data.load(path, expected=EXPECTED, dataset="ml-20m").dataset == "ml-20m"


# --------------------------------------------------------------------------- the command line
def _cli(*args, env=None):
    import os
    import subprocess
    import sys

    from recsys import paths

    return subprocess.run([sys.executable, "-m", "recsys", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=paths.ROOT, timeout=300)


def _one_line_error(out) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_cli_data_ml1m_with_the_real_counts(tmp_path):
    path = synthetic.write_ml1m_full(tmp_path)
    out = _cli("data", "--dataset", "ml-1m", "--data", str(path), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "dataset": "ml-1m", "source": f"grouplens:{path}", "synthetic": False, "ratings": 1_000_209,
        "users": 6_040, "movies": 3_883, "rated_movies": 3_706,
        "user_features": ["bucketized_user_age", "user_gender", "user_occupation_text", "user_zip_code"]}
    # One malformed line anywhere: a one-line error naming it, exit 2.
    lines = (path / "ratings.dat").read_bytes().split(b"\n")
    lines[123_456] = b"1::2::3"
    (path / "ratings.dat").write_bytes(b"\n".join(lines))
    message = _one_line_error(_cli("data", "--dataset", "ml-1m", "--data", str(path), "--json"))
    assert "ratings.dat: line 123457: expected 4 fields" in message


@pytest.mark.parametrize("args, env, fragment", [
    (["--dataset", "ml-10m"], {}, "invalid choice: 'ml-10m'"),
    ([], {"RECSYS_DATA": "/dev/zero"}, "/dev/zero is not a regular file or folder"),
    (["--data", "/no/such/copy"], {}, "does not exist"),
], ids=["unknown dataset", "dev zero", "missing path"])
def test_cli_data_bad_input(args, env, fragment):
    assert fragment in _one_line_error(_cli("data", *args, "--json", env=env))
