"""A tiny prepared dataset and a tiny trained run, shared by the model, app and index tests."""
from __future__ import annotations

from pathlib import Path

import synthetic
from recsys import data
from recsys.config import RunConfig
from recsys.prepare import Prepared, prepare_from

# Small and quick, but a real run through the real trainer.
TINY_CONFIG = RunConfig(rating_weight=1.0, retrieval_weight=1.0, preset="default", epochs=2, batch_size=64)


def tiny_prep(folder: Path) -> Prepared:
    """The synthetic data, split and featurised like the real thing."""
    return prepare_from(data.load(synthetic.write_grouplens(folder), expected=synthetic.EXPECTED))
