"""The data sources, the canonical form, the split and the per-id features."""
from __future__ import annotations

import os
import zipfile

import numpy as np
import pandas as pd
import pytest

import synthetic
from recsys import data, features, files, paths
from recsys.data import MOVIE_COLUMNS, RATING_COLUMNS, USER_COLUMNS, Expected
from recsys.errors import UserError
from recsys.split import split

EXPECTED = synthetic.EXPECTED


def _assert_schema(ml: data.MovieLens) -> None:
    assert tuple(ml.ratings.columns) == RATING_COLUMNS
    assert tuple(ml.movies.columns) == MOVIE_COLUMNS
    assert tuple(ml.users.columns) == USER_COLUMNS
    assert ml.ratings.user_rating.dtype == np.float32
    assert ml.ratings.timestamp.dtype == np.int64
    assert ml.users.raw_user_age.dtype == np.float32
    assert ml.users.user_gender.dtype == bool
    for frame, col in ((ml.ratings, "user_id"), (ml.ratings, "movie_id"), (ml.movies, "movie_id"),
                       (ml.movies, "movie_title"), (ml.users, "user_id"),
                       (ml.users, "user_occupation_text"), (ml.users, "user_zip_code")):
        assert all(isinstance(v, str) for v in frame[col]), col
    assert all(isinstance(g, tuple) and all(isinstance(x, str) for x in g) for g in ml.movies.movie_genres)


def _title(ml: data.MovieLens, movie_id: str) -> str:
    return ml.movies.set_index("movie_id").movie_title[movie_id]


def _genres(ml: data.MovieLens, movie_id: str) -> tuple[str, ...]:
    return ml.movies.set_index("movie_id").movie_genres[movie_id]


# --------------------------------------------------------------------------- GroupLens source
@pytest.mark.parametrize("which", ["ml-100k folder", "parent folder", "zip"])
def test_grouplens_sources_load(tmp_path, grouplens_dir, which):
    path = {
        "ml-100k folder": grouplens_dir,
        "parent folder": grouplens_dir.parent,
        "zip": synthetic.write_grouplens_zip(tmp_path / "ml-100k.zip"),
    }[which]
    ml = data.load(path, expected=EXPECTED)
    _assert_schema(ml)
    assert ml.summary() == {"dataset": "ml-100k", "source": f"grouplens:{path}", "synthetic": False,
                            "ratings": 600, "users": 40, "movies": 30, "rated_movies": 30,
                            "user_features": list(USER_COLUMNS[1:])}
    assert _title(ml, synthetic.MISERABLES_ID) == "Misérables, Les (1995)"
    assert _title(ml, "17") == "Cérémonie, La (1995)"


def test_grouplens_via_env(monkeypatch, grouplens_dir, tmp_path):
    monkeypatch.setenv("RECSYS_DATA", str(grouplens_dir))
    ml = data.load(expected=EXPECTED)
    assert ml.source == f"grouplens:{grouplens_dir}"
    zipped = synthetic.write_grouplens_zip(tmp_path / "z" / "ml-100k.zip")
    monkeypatch.setenv("RECSYS_DATA", str(zipped))
    assert data.load(expected=EXPECTED).fingerprint() == ml.fingerprint()


def test_grouplens_values_match_the_files(grouplens_dir):
    ml = data.load(grouplens_dir, expected=EXPECTED)
    raw_ratings, items, users = synthetic.tables()
    # Ratings: the same multiset of rows as the file.
    got = ml.ratings.assign(user_id=ml.ratings.user_id.astype(int), movie_id=ml.ratings.movie_id.astype(int),
                            user_rating=ml.ratings.user_rating.astype(int))
    want = raw_ratings.rename(columns={"rating": "user_rating"})
    key = list(RATING_COLUMNS)
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True), check_dtype=False)
    # Users: gender is True for "M" (as tfds encodes it); zips keep zeros and letters.
    u = ml.users.set_index("user_id")
    for row in users.itertuples():
        assert u.user_gender[str(row.user_id)] == (row.gender == "M")
        assert u.raw_user_age[str(row.user_id)] == row.age
        assert u.user_zip_code[str(row.user_id)] == row.zip_code
        assert u.user_occupation_text[str(row.user_id)] == row.occupation
    assert set(u.user_zip_code) >= {"01002", "T8H1N"}


def test_genres_use_tfds_names(grouplens_dir):
    ml = data.load(grouplens_dir, expected=EXPECTED)
    assert _genres(ml, "1") == ("Unknown",)
    assert "Children" in _genres(ml, "2")
    all_genres = {g for gs in ml.movies.movie_genres for g in gs}
    assert "Children's" not in all_genres and "unknown" not in all_genres
    assert all_genres <= set(data.GENRES)
    # Every movie's genres are exactly its 1-flags, in u.item column order.
    _, items, _ = synthetic.tables()
    for row in items.itertuples(index=False):
        flags = row[5:]
        want = tuple(g for g, f in zip(data.GENRES, flags) if f == 1)
        assert _genres(ml, str(row.movie_id)) == want


# --------------------------------------------------------------------------- widedeep source
def test_widedeep_equals_grouplens(monkeypatch, grouplens_dir, widedeep_dir):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(widedeep_dir))
    wd = data.load(expected=EXPECTED)
    gl = data.load(grouplens_dir, expected=EXPECTED)
    assert wd.source == "widedeep"
    _assert_schema(wd)
    for a, b in ((wd.ratings, gl.ratings), (wd.movies, gl.movies), (wd.users, gl.users)):
        pd.testing.assert_frame_equal(a, b)
    assert wd.fingerprint() == gl.fingerprint()

    s_wd, s_gl = split(wd), split(gl)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(s_wd, part), getattr(s_gl, part))
    for a, b in zip(s_wd.frames(wd.ratings), s_gl.frames(gl.ratings)):
        pd.testing.assert_frame_equal(a, b)


def test_explicit_path_wins_over_widedeep(monkeypatch, grouplens_dir, widedeep_dir):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(widedeep_dir))
    assert data.load(grouplens_dir, expected=EXPECTED).source.startswith("grouplens:")
    monkeypatch.setenv("RECSYS_DATA", str(grouplens_dir))
    assert data.load(expected=EXPECTED).source.startswith("grouplens:")


def test_fingerprint_depends_on_content(tmp_path, grouplens_dir):
    base = data.load(grouplens_dir, expected=EXPECTED)
    changed = tmp_path / "changed" / "ml-100k"
    synthetic.write_grouplens(changed.parent)
    lines = (changed / "u.data").read_text().splitlines(keepends=True)
    u, m, r, t = lines[0].split("\t")
    lines[0] = "\t".join([u, m, str(int(r) % 5 + 1), t])
    (changed / "u.data").write_text("".join(lines))
    assert data.load(changed, expected=EXPECTED).fingerprint() != base.fingerprint()


# --------------------------------------------------------------------------- tensorflow-datasets
def test_load_tfds_random_mock_schema():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=25):
        ml = data.load_tfds()
    assert ml.source == "tfds"
    _assert_schema(ml)
    assert len(ml.ratings) == 25
    assert len(ml.movies) == 25
    tfds_genres = set(tfds.builder("movie_lens/100k-movies", data_dir=str(data.tfds_dirs()[0])).info.features["movie_genres"].feature.names)
    assert {g for gs in ml.movies.movie_genres for g in gs} <= tfds_genres
    # Users come from the ratings, one row per id.
    assert not ml.users.user_id.duplicated().any()
    assert set(ml.users.user_id) == set(ml.ratings.user_id)


def test_load_tfds_equals_grouplens(grouplens_dir):
    """tfds examples built from the synthetic tables give the same tables as GroupLens."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    gl = data.load(grouplens_dir, expected=EXPECTED)
    movies = gl.movies.set_index("movie_id")
    users = gl.users.set_index("user_id")
    order = np.random.RandomState(0).permutation(len(gl.ratings))  # tfds order is not canonical

    def examples(builder):
        genre = builder.info.features["movie_genres"].feature
        if builder.builder_config.name == "100k-movies":
            for movie_id, row in movies.iterrows():
                yield {"movie_id": movie_id, "movie_title": row.movie_title,
                       "movie_genres": np.array([genre.str2int(g) for g in row.movie_genres], np.int64)}
            return
        for i in order:
            r = gl.ratings.iloc[i]
            m, u = movies.loc[r.movie_id], users.loc[r.user_id]
            yield {
                "movie_id": r.movie_id, "movie_title": m.movie_title,
                "movie_genres": np.array([genre.str2int(g) for g in m.movie_genres], np.int64),
                "user_id": r.user_id, "user_rating": np.float32(r.user_rating),
                "timestamp": np.int64(r.timestamp), "user_gender": bool(u.user_gender),
                "bucketized_user_age": np.float32(u.raw_user_age), "user_occupation_label": np.int64(0),
                "user_occupation_text": u.user_occupation_text, "user_zip_code": u.user_zip_code,
                "raw_user_age": np.float32(u.raw_user_age),
            }

    def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
        return tf.data.Dataset.from_generator(
            lambda: examples(self),
            output_types=self.info.features.dtype,
            output_shapes=self.info.features.shape,
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        ml = data.load_tfds()
    data.validate(ml, EXPECTED)
    assert ml.source == "tfds"
    for a, b in ((ml.ratings, gl.ratings), (ml.movies, gl.movies), (ml.users, gl.users)):
        pd.testing.assert_frame_equal(a, b)
    assert ml.fingerprint() == gl.fingerprint()
    assert _title(ml, synthetic.MISERABLES_ID) == synthetic.MISERABLES


def test_tfds_available_default_false():
    assert data.tfds_available() is False


def test_tfds_available_with_manual_zip(tmp_path, monkeypatch):
    _, manual = data.tfds_dirs()
    assert manual == paths.data_dir() / "tfds" / "manual"
    manual.mkdir(parents=True)
    (manual / "ml-100k.zip").write_bytes(b"PK")
    assert data.tfds_available() is True

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("RECSYS_TFDS_MANUAL_DIR", str(elsewhere))
    assert data.tfds_available() is False
    (elsewhere / "ml-100k.zip").write_bytes(b"PK")
    assert data.tfds_available() is True


def test_tfds_available_with_prepared_copy():
    data_dir, _ = data.tfds_dirs()
    for config in ("100k-ratings", "100k-movies"):
        assert data.tfds_available() is False  # both configs must be prepared
        version = data_dir / "movie_lens" / config / "0.1.1"
        version.mkdir(parents=True)
        assert data.tfds_available() is False
        (version / "dataset_info.json").write_text("{}")
    assert data.tfds_available() is True


@pytest.mark.parametrize("value, available", [("1", True), ("0", False), ("", False)])
def test_tfds_available_with_download(monkeypatch, value, available):
    monkeypatch.setenv("RECSYS_DOWNLOAD", value)
    assert data.tfds_available() is available


# --------------------------------------------------------------------------- errors
def test_count_mismatch_names_counts(grouplens_dir):
    with pytest.raises(UserError) as err:
        data.load(grouplens_dir, expected=Expected(ratings=601, users=40, movies=30))
    assert "(600, 40, 30)" in str(err.value) and "(601, 40, 30)" in str(err.value)


def test_default_expectation_is_ml100k(grouplens_dir):
    with pytest.raises(UserError, match="100000, 943, 1682"):
        data.load(grouplens_dir)


@pytest.mark.parametrize("bad", ["0", "6"])
def test_rating_out_of_range(grouplens_dir, bad):
    lines = (grouplens_dir / "u.data").read_text().splitlines(keepends=True)
    u, m, _, t = lines[7].split("\t")
    lines[7] = "\t".join([u, m, bad, t])
    (grouplens_dir / "u.data").write_text("".join(lines))
    with pytest.raises(UserError, match=r"outside 1\.\.5"):
        data.load(grouplens_dir, expected=EXPECTED)


def test_rating_of_unknown_movie(grouplens_dir):
    with open(grouplens_dir / "u.data", "a") as f:
        f.write("1\t999\t3\t881250949\n")
    with pytest.raises(UserError, match="unknown movies"):
        data.load(grouplens_dir, expected=None)


def test_nonexistent_path(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        data.load(tmp_path / "nowhere", expected=EXPECTED)


def test_nonexistent_path_via_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="does not exist"):
        data.load(expected=EXPECTED)


def test_plain_file_is_not_a_source(tmp_path):
    plain = tmp_path / "ratings.csv"
    plain.write_text("user,movie,rating\n1,2,3\n")
    with pytest.raises(UserError, match="neither"):
        data.load(plain, expected=EXPECTED)


def test_incomplete_sources(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="cannot read"):
        data.load(empty, expected=EXPECTED)
    partial = tmp_path / "partial.zip"
    with zipfile.ZipFile(partial, "w") as zf:
        zf.writestr("ml-100k/u.data", synthetic.grouplens_bytes()["u.data"])
    with pytest.raises(UserError, match="cannot read"):
        data.load(partial, expected=EXPECTED)


def test_no_source_says_how_to_provide_one():
    with pytest.raises(UserError) as err:
        data.load(expected=EXPECTED)
    message = str(err.value)
    assert "make setup" in message and "--data" in message and "RECSYS_DATA" in message
    assert str(data.tfds_dirs()[1]) in message


# --------------------------------------------------------------------------- canonical order
def _is_canonical(ratings: pd.DataFrame) -> bool:
    key = list(zip(ratings.user_id.astype(int), ratings.movie_id.astype(int), ratings.timestamp))
    return key == sorted(key)


def test_canonical_order_ignores_file_order(tmp_path, grouplens_dir):
    ml = data.load(grouplens_dir, expected=EXPECTED)
    assert _is_canonical(ml.ratings)
    assert list(ml.movies.movie_id) == [str(i) for i in range(1, 31)]
    assert list(ml.users.user_id) == [str(i) for i in range(1, 41)]
    # "10" sorts after "9": numeric, not lexicographic.
    assert list(ml.ratings.user_id.drop_duplicates()) == [str(i) for i in range(1, 41)]

    lines = (grouplens_dir / "u.data").read_text().splitlines(keepends=True)
    for seed in (1, 2):
        shuffled = tmp_path / f"shuffled{seed}" / "ml-100k"
        synthetic.write_grouplens(shuffled.parent)
        (shuffled / "u.data").write_text("".join(lines[i] for i in np.random.RandomState(seed).permutation(len(lines))))
        assert (shuffled / "u.data").read_text() != "".join(lines)
        other = data.load(shuffled, expected=EXPECTED)
        pd.testing.assert_frame_equal(other.ratings, ml.ratings)
        assert other.fingerprint() == ml.fingerprint()


def test_canonical_order_breaks_ties_by_timestamp(grouplens_dir):
    with open(grouplens_dir / "u.data", "a") as f:  # user 10 rates movie 2 twice, later first
        f.write("10\t2\t4\t890000002\n10\t2\t5\t890000001\n")
    ml = data.load(grouplens_dir, expected=None)
    assert _is_canonical(ml.ratings)
    pair = ml.ratings[(ml.ratings.user_id == "10") & (ml.ratings.movie_id == "2")]
    assert {890000001, 890000002} <= set(pair.timestamp)
    assert list(pair.timestamp) == sorted(pair.timestamp)


# --------------------------------------------------------------------------- keyed by movie id
@pytest.fixture
def spec_and_ml(grouplens_dir):
    ml = data.load(grouplens_dir, expected=EXPECTED)
    train, _, _ = split(ml).frames(ml.ratings)
    return features.build_spec(ml, train), ml


def test_same_title_different_ids_are_different_movies(spec_and_ml):
    spec, ml = spec_and_ml
    amy = list(synthetic.CHASING_AMY_IDS)
    assert [_title(ml, i) for i in amy] == [synthetic.CHASING_AMY] * 2
    assert ml.movies.movie_title.nunique() == 29
    assert spec.n_movies == 30 == ml.movies.movie_id.nunique()
    assert spec.title_tokens.shape == (30, features.MAX_TITLE_WORDS)
    rows = ml.ratings[ml.ratings.movie_id.isin(amy)]
    assert set(rows.movie_id) == set(amy)
    encoded = features.encode(spec, rows)
    by_id = dict(zip(rows.movie_id, encoded["movie"]))
    assert by_id[amy[0]] != by_id[amy[1]]
    assert [spec.movie_ids[by_id[i]] for i in amy] == amy


def test_encode_maps_ids_to_rows(spec_and_ml):
    spec, ml = spec_and_ml
    enc = features.encode(spec, ml.ratings)
    assert [spec.user_ids[i] for i in enc["user"]] == list(ml.ratings.user_id)
    assert [spec.movie_ids[i] for i in enc["movie"]] == list(ml.ratings.movie_id)
    np.testing.assert_array_equal(enc["rating"], ml.ratings.user_rating.to_numpy())
    with pytest.raises(ValueError):
        features.encode(spec, ml.ratings.assign(movie_id="999"))


def test_fold_accents():
    assert features.fold_accents("Misérables") == "Miserables"
    assert features.fold_accents("Cérémonie, La (1995)") == "Ceremonie, La (1995)"
    assert features.fold_accents("Á köldum klaka") == "A koldum klaka"


def test_title_tokens_fold_accents(spec_and_ml):
    spec, ml = spec_and_ml
    vocab = list(spec.title_words)
    assert "miserables" in vocab and "misérables" not in vocab
    row = list(spec.movie_ids).index(synthetic.MISERABLES_ID)
    assert vocab.index("miserables") in spec.title_tokens[row]
    batman = vocab.index("batman")
    assert {spec.movie_ids[r] for r in np.where((spec.title_tokens == batman).any(axis=1))[0]} == set(synthetic.BATMAN_IDS)


# --------------------------------------------------------------------------- split
def test_split_sizes_and_partition(grouplens_dir):
    ml = data.load(grouplens_dir, expected=EXPECTED)
    sp = split(ml)
    n = len(ml.ratings)
    assert (len(sp.train), len(sp.val), len(sp.test)) == (432, 48, 120)
    assert len(sp.train) + len(sp.val) == round(0.8 * n) and len(sp.val) == round(0.1 * 0.8 * n)
    parts = np.concatenate([sp.train, sp.val, sp.test])
    assert len(np.unique(parts)) == n
    np.testing.assert_array_equal(np.sort(parts), np.arange(n))
    assert not set(sp.train) & set(sp.val) and not set(sp.train) & set(sp.test) and not set(sp.val) & set(sp.test)
    train, val, test = sp.frames(ml.ratings)
    assert (len(train), len(val), len(test)) == (432, 48, 120)


def test_split_is_deterministic_per_seed(grouplens_dir):
    ml = data.load(grouplens_dir, expected=EXPECTED)
    a, b, c = split(ml, seed=42), split(ml, seed=42), split(ml, seed=7)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.test, c.test)
    assert not np.array_equal(a.val, c.val)


# --------------------------------------------------------------------------- the real data
def test_real_offline_default(monkeypatch):
    folder = paths.ROOT / "artifacts" / "data"
    if not data.widedeep_available(folder):
        pytest.fail(f"the offline MovieLens tables are missing from {folder}: run `make setup`")
    monkeypatch.setenv("RECSYS_DATA_DIR", str(folder))
    ml = data.load()
    assert ml.source == "widedeep"
    assert ml.summary() == {"dataset": "ml-100k", "source": "widedeep", "synthetic": False, "ratings": 100_000,
                            "users": 943, "movies": 1_682, "rated_movies": 1_682,
                            "user_features": ["raw_user_age", "user_gender", "user_occupation_text", "user_zip_code"]}
    _assert_schema(ml)
    assert _is_canonical(ml.ratings)
    titles = ml.movies.movie_title
    assert titles.duplicated().sum() == 18
    assert (~titles.map(str.isascii)).sum() == 9
    assert "Misérables, Les (1995)" in set(titles)
    assert _title(ml, "246") == _title(ml, "268") == "Chasing Amy (1997)"
    assert _genres(ml, "1") == ("Animation", "Children", "Comedy")
    sp = split(ml)
    assert (len(sp.train), len(sp.val), len(sp.test)) == (72_000, 8_000, 20_000)


# --------------------------------------------------------------------------- the fingerprint
def _reference_fingerprint(raw_ratings: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame) -> str:
    """The fingerprint as first defined, from widedeep-style tables with plain string ids.

    Run ids hash it, so loading in a new way (compact ids, new parsers) must not change it.
    """
    import hashlib

    ratings = pd.DataFrame({"user_id": raw_ratings.user_id.astype(str), "movie_id": raw_ratings.movie_id.astype(str),
                            "user_rating": raw_ratings.rating.astype(np.float32),
                            "timestamp": raw_ratings.timestamp.astype(np.int64)})
    ratings = ratings.sort_values(["user_id", "movie_id", "timestamp"], key=lambda c: pd.to_numeric(c),
                                  kind="mergesort")
    flags = items.iloc[:, 5:24].to_numpy() == 1
    movies = pd.DataFrame({"movie_id": items.movie_id.astype(str), "movie_title": items.movie_title.astype(str),
                           "movie_genres": ["|".join(g for g, on in zip(data.GENRES, row) if on) for row in flags]})
    movies = movies.sort_values("movie_id", key=pd.to_numeric)
    people = pd.DataFrame({"user_id": users.user_id.astype(str), "raw_user_age": users.age.astype(np.float32),
                           "user_gender": users.gender == "M", "user_occupation_text": users.occupation.astype(str),
                           "user_zip_code": users.zip_code.astype(str)}).sort_values("user_id", key=pd.to_numeric)
    h = hashlib.sha256()
    for frame in (ratings, movies, people):
        h.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    return h.hexdigest()[:16]


def test_fingerprint_is_the_reference(grouplens_dir, widedeep_dir, monkeypatch):
    want = _reference_fingerprint(*synthetic.tables())
    assert data.load(grouplens_dir, expected=EXPECTED).fingerprint() == want
    monkeypatch.setenv("RECSYS_DATA_DIR", str(widedeep_dir))
    assert data.load(expected=EXPECTED).fingerprint() == want


def test_real_data_as_grouplens_files(tmp_path, monkeypatch):
    """The real ML-100K written as GroupLens's files, Latin-1 and UTF-8, loads as the offline copy."""
    folder = paths.ROOT / "artifacts" / "data"
    if not data.widedeep_available(folder):
        pytest.fail(f"the offline MovieLens tables are missing from {folder}: run `make setup`")
    raw = tuple(pd.read_parquet(folder / data.WIDEDEEP_FILE.format(t)) for t in ("data", "items", "users"))
    content = synthetic.grouplens_bytes(raw)
    utf8 = {**content, **{n: content[n].decode(synthetic.ENCODING).encode("utf-8") for n in ("u.item", "u.user")}}
    monkeypatch.setenv("RECSYS_DATA_DIR", str(folder))
    offline = data.load()
    for name, files_ in (("latin1", content), ("utf8", utf8)):
        ml = data.load(synthetic.write_layout(tmp_path / name, "ml-100k", files_))  # the real counts
        for a, b in ((ml.ratings, offline.ratings), (ml.movies, offline.movies), (ml.users, offline.users)):
            pd.testing.assert_frame_equal(a, b)
        assert ml.fingerprint() == offline.fingerprint()


def test_real_fingerprint_is_the_reference(monkeypatch):
    folder = paths.ROOT / "artifacts" / "data"
    if not data.widedeep_available(folder):
        pytest.fail(f"the offline MovieLens tables are missing from {folder}: run `make setup`")
    monkeypatch.setenv("RECSYS_DATA_DIR", str(folder))
    raw = [pd.read_parquet(folder / data.WIDEDEEP_FILE.format(t)) for t in ("data", "items", "users")]
    assert data.load().fingerprint() == _reference_fingerprint(*raw)


# --------------------------------------------------------------------------- issue 10: data files
def test_short_line_in_u_data_is_a_one_line_error(grouplens_dir):
    """Issue 10, defect 12: a rating without its timestamp used to end in a ValueError."""
    with open(grouplens_dir / "u.data", "a") as f:
        f.write("1\t2\t3\n")
    with pytest.raises(UserError, match=r"u.data: line 601: expected 4 fields separated by '\\t', got 3") as err:
        data.load(grouplens_dir, expected=EXPECTED)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("layout, text_tables", [
    ("ml-100k", ("u.item", "u.user")), ("ml-1m", ("movies.dat", "users.dat")),
])
def test_utf8_copy_reads_the_same_titles(tmp_path, layout, text_tables):
    """Issue 10, defect 13: a UTF-8 copy is read as UTF-8: same titles, same fingerprint."""
    content = synthetic.grouplens_bytes() if layout == "ml-100k" else synthetic.ml1m_bytes()
    latin1 = synthetic.write_layout(tmp_path / "latin1", layout, content)
    utf8 = dict(content)
    for name in text_tables:
        utf8[name] = content[name].decode(synthetic.ENCODING).encode("utf-8")
    assert utf8[text_tables[0]] != content[text_tables[0]]  # the copy really differs in bytes
    utf8_path = synthetic.write_layout(tmp_path / "utf8", layout, utf8)
    a = data.load(latin1, expected=EXPECTED)
    data._CACHE.clear()
    b = data.load(utf8_path, expected=EXPECTED)
    assert _title(b, synthetic.MISERABLES_ID) == synthetic.MISERABLES  # not "MisÃ©rables"
    for x, y in ((a.ratings, b.ratings), (a.movies, b.movies), (a.users, b.users)):
        pd.testing.assert_frame_equal(x, y)
    assert a.fingerprint() == b.fingerprint()


def test_utf8_with_byte_order_mark(grouplens_dir):
    raw = (grouplens_dir / "u.item").read_bytes().decode(synthetic.ENCODING)
    (grouplens_dir / "u.item").write_bytes(b"\xef\xbb\xbf" + raw.encode("utf-8"))
    ml = data.load(grouplens_dir, expected=EXPECTED)
    assert _title(ml, "1") == "Synthetic Film 1 (1961)" and _title(ml, synthetic.MISERABLES_ID) == synthetic.MISERABLES


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_device_as_data_path_is_refused(monkeypatch, device):
    """Issue 10, defect 14: RECSYS_DATA=/dev/zero used to read until memory ran out."""
    monkeypatch.setenv("RECSYS_DATA", device)
    with pytest.raises(UserError, match=f"data path {device} is not a regular file or folder"):
        data.load(expected=EXPECTED)


def test_fifo_as_data_path_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="is not a regular file or folder"):
        data.load(fifo, expected=EXPECTED)


def test_table_linked_to_a_device_is_refused(grouplens_dir):
    (grouplens_dir / "u.data").unlink()
    (grouplens_dir / "u.data").symlink_to("/dev/zero")
    with pytest.raises(UserError, match=r"u.data is not a regular file"):
        data.load(grouplens_dir, expected=EXPECTED)


def test_dangling_link_is_a_one_line_error(grouplens_dir):
    (grouplens_dir / "u.item").unlink()
    (grouplens_dir / "u.item").symlink_to(grouplens_dir / "nowhere")
    with pytest.raises(UserError, match=r"cannot read .*u.item: No such file"):
        data.load(grouplens_dir, expected=EXPECTED)


def test_size_limit_per_file(grouplens_dir, tmp_path, monkeypatch):
    size = (grouplens_dir / "u.data").stat().st_size
    monkeypatch.setattr(files, "MAX_RATINGS_BYTES", size - 1)
    with pytest.raises(UserError, match=rf"u.data is {size:,} bytes, over the {size - 1:,}-byte limit"):
        data.load(grouplens_dir, expected=EXPECTED)
    zipped = synthetic.write_grouplens_zip(tmp_path / "ml-100k.zip")
    with pytest.raises(UserError, match=rf"ml-100k/u.data is {size:,} bytes, over the"):
        data.load(zipped, expected=EXPECTED)
    monkeypatch.setattr(files, "MAX_RATINGS_BYTES", size)
    item_size = (grouplens_dir / "u.item").stat().st_size
    monkeypatch.setattr(files, "MAX_TABLE_BYTES", item_size - 1)
    with pytest.raises(UserError, match=r"u.item is [\d,]+ bytes, over the"):
        data.load(grouplens_dir, expected=EXPECTED)
    monkeypatch.setattr(files, "MAX_TABLE_BYTES", item_size)
    assert len(data.load(grouplens_dir, expected=EXPECTED).ratings) == 600


def test_zip_member_larger_than_its_header_says(tmp_path, monkeypatch):
    """zipfile reads a member only up to its declared size; the lie then fails its CRC."""
    path = tmp_path / "ml-100k.zip"
    synthetic.write_grouplens_zip(path)
    real_open = zipfile.ZipFile.open

    def lying_open(self, info, *args, **kwargs):
        if isinstance(info, zipfile.ZipInfo) and info.filename.endswith("u.item"):
            info.file_size = 100  # the header claims less than the member holds
        return real_open(self, info, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", lying_open)
    with pytest.raises(UserError, match=r"cannot read .*u.item: Bad CRC-32") as err:
        data.load(path, expected=EXPECTED)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("presorted", [False, True])
def test_canonical_order_is_the_three_key_sort(presorted):
    """The fast order equals a stable sort by (user, movie, timestamp), repeated pairs included."""
    rng = np.random.RandomState(5)
    n = 5_000
    user, movie = rng.randint(1, 60, n), rng.randint(1, 40, n)  # many repeated pairs
    timestamp = rng.randint(0, 20, n)  # and many tied timestamps
    if presorted:  # GroupLens order: by user then movie, timestamps not sorted
        first = np.lexsort((movie, user))
        user, movie, timestamp = user[first], movie[first], timestamp[first]
    rating = np.arange(n) % 5 + 1.0  # tells the rows apart
    ml = data.canonical({"user_id": user, "movie_id": movie, "user_rating": rating, "timestamp": timestamp},
                        pd.DataFrame({"movie_id": np.arange(1, 40), "movie_title": "t", "movie_genres": [()] * 39}),
                        None, source="test")
    want = np.lexsort((timestamp, movie, user))  # stable
    np.testing.assert_array_equal(ml.ratings.user_id.astype(int), user[want])
    np.testing.assert_array_equal(ml.ratings.movie_id.astype(int), movie[want])
    np.testing.assert_array_equal(ml.ratings.timestamp, timestamp[want])
    np.testing.assert_array_equal(ml.ratings.user_rating, rating[want].astype(np.float32))


def test_available_datasets_are_those_with_a_local_source(tmp_path, monkeypatch, widedeep_dir):
    from recsys import data, paths

    assert data.available_datasets() == ()  # an empty data folder: nothing loads offline
    monkeypatch.setenv("RECSYS_DATA_DIR", str(widedeep_dir))
    assert data.available_datasets() == ("ml-100k",)
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "ml-1m.zip").write_bytes(b"")  # tfds checks the zip itself when it prepares it
    monkeypatch.setenv("RECSYS_TFDS_MANUAL_DIR", str(manual))
    assert data.available_datasets() == ("ml-100k", "ml-1m")
    assert paths.data_dir() == widedeep_dir
