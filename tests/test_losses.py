"""The loss sizes the Train page shows beside the weight sliders."""
import pytest

from recsys import losses, runs
from recsys.presets import PRESETS


def test_sizes_scale_the_stored_runs_best_epoch_losses(tiny_run):
    _, run = tiny_run
    best = next(h for h in run.history if h["epoch"] == run.info["best_epoch"])
    got = losses.sizes(0.5, 2.0, run.preset)
    assert got.run_id == run.run_id
    assert got.rating == pytest.approx(0.5 * best["rating_loss"])
    assert got.retrieval == pytest.approx(2.0 * best["retrieval_loss"])
    assert got.share() == pytest.approx(got.rating / (got.rating + got.retrieval))


def test_no_run_with_the_preset_means_no_sizes(tiny_run):
    _, run = tiny_run
    assert run.preset != PRESETS["seed"]
    assert losses.sizes(1.0, 1.0, PRESETS["seed"]) is None
    assert runs.list_runs()  # the store is not empty: the preset decides
