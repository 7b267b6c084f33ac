"""A run's configuration, its validation, and its content-addressed id."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass

from recsys import datasets, presets
from recsys.errors import UserError
from recsys.optim import OPTIMIZERS
from recsys.split import DEFAULT_SEED, check_protocol

# Bump when a code change alters what a config trains to, so old runs are not reused.
# 6: the retrieval loss in another order of operations and eight steps a call (the same
# model, other float rounding, so other choices on validation), and the item-item L2 scaled
# to the data (bench/tuning.md, round 9). 7: tables of 5,000 id rows or more (ML-1M-sized)
# train with LazyAdam and the per-use factor L2, as only 50,000 or more did (round 11).
MODEL_VERSION = "7"
MAX_EPOCHS = 1000
MAX_BATCH = 65536
MAX_SEED = 2**31 - 1  # TensorFlow's and NumPy's seeds must fit; a larger one was a ValueError traceback
# tf.distribute workers (recsys/distributed.py). Each is a whole process with its own copy
# of the data and TensorFlow (about 1 GB at ML-100K), and each takes 1/N of the global
# batch: at 8, the default batch of 1,024 is 128 rows per worker, where the per-step
# all-reduce already costs more than the step's compute. 8 is also the most tested here.
MAX_WORKERS = 8


@dataclass(frozen=True)
class RunConfig:
    """What the user chose; unset fields fall back to the preset's values."""

    rating_weight: float = 1.0
    retrieval_weight: float = 1.0
    preset: str = "default"
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    optimizer: str | None = None
    seed: int = 42
    split_seed: int = DEFAULT_SEED
    split: str = "random"  # the evaluation protocol (recsys/split.py)
    dataset: str | None = None  # recsys/datasets.py; None: the given copy's, else ml-100k
    workers: int = 1  # tf.distribute worker processes (recsys/distributed.py); 1: this process alone

    def validate(self) -> "RunConfig":
        """Raise UserError for weights, epochs, preset or optimiser that make no sense."""
        for name in ("rating_weight", "retrieval_weight"):
            w = getattr(self, name)
            if not isinstance(w, (int, float)) or math.isnan(w) or math.isinf(w) or w < 0:
                raise UserError(f"{name.replace('_', ' ')} must be a finite number >= 0, got {w}")
        if self.rating_weight == 0 and self.retrieval_weight == 0:
            raise UserError("at least one of the rating and retrieval weights must be above 0")
        check_protocol(self.split)
        if self.dataset is not None:
            datasets.get(self.dataset)
        preset = presets.get(self.preset)
        epochs = self.epochs if self.epochs is not None else preset.epochs
        if not isinstance(epochs, int) or epochs < 1 or epochs > MAX_EPOCHS:
            raise UserError(f"epochs must be between 1 and {MAX_EPOCHS}, got {epochs}")
        if self.batch_size is not None and not (1 <= self.batch_size <= MAX_BATCH):
            raise UserError(f"batch size must be between 1 and {MAX_BATCH}, got {self.batch_size}")
        if self.learning_rate is not None and not (0 < self.learning_rate <= 10):
            raise UserError(f"learning rate must be in (0, 10], got {self.learning_rate}")
        for name in ("seed", "split_seed"):
            seed = getattr(self, name)
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
                raise UserError(f"{name.replace('_', ' ')} must be a whole number from 0 to {MAX_SEED}, got {seed}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        w = self.workers
        if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= MAX_WORKERS:
            raise UserError(f"workers must be a whole number from 1 to {MAX_WORKERS}, got {w}")
        if w > 1 and self.resolved_preset().batch_size < w:
            raise UserError(f"the batch size ({self.resolved_preset().batch_size}) must be at least the number of "
                            f"workers ({w}): each worker takes its share of every batch")
        return self

    def resolved_preset(self) -> presets.Preset:
        """The preset with this config's overrides applied."""
        return presets.with_overrides(
            presets.get(self.preset), epochs=self.epochs, batch_size=self.batch_size,
            learning_rate=self.learning_rate, optimizer=self.optimizer)

    def to_dict(self) -> dict:
        """The config as stored in config.json, with the preset spelled out.

        `workers` is left out when it is 1, so one-process runs keep their config.json
        and their run ids from before workers existed.
        """
        d = {**asdict(self), "resolved": self.resolved_preset().to_dict()}
        if self.workers == 1:
            del d["workers"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Inverse of `to_dict`."""
        return cls(**{k: v for k, v in d.items() if k != "resolved"})


def run_id(config: RunConfig, data_fingerprint: str) -> str:
    """Hash of the resolved config, the data and the model code version."""
    d = config.to_dict()
    # Weights 1 and 1.0 are the same run, and so are -0 and 0 (-0.0 + 0.0 is 0.0).
    d["rating_weight"], d["retrieval_weight"] = (float(d["rating_weight"]) + 0.0,
                                                 float(d["retrieval_weight"]) + 0.0)
    for k in ("epochs", "batch_size", "learning_rate", "optimizer"):
        d.pop(k)  # already inside "resolved"; an explicit default is the same run
    blob = json.dumps({"config": d, "data": data_fingerprint, "code": MODEL_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
