"""How long a config would train, and the limit that keeps the shared trainer usable.

One estimate for the Train page, the CLI and the job queue. It is an upper bound: every
epoch is counted, though early stopping often ends a run sooner.

Per-epoch costs were measured on this 2-core machine on MovieLens 100K (72,000 training
ratings), 3-epoch runs, epochs 2-3 (README, Reliability):

    preset   batch   s/epoch          preset   batch   s/epoch
    default     32     7.3            seed       128     4.1
    default    128     2.4            seed      1024     1.5
    default   1024     1.2            seed      8192     1.8

so an epoch costs about the preset's own-batch time plus 3.0 ms (default) or 5.5 ms
(seed) for each step beyond the preset's number of steps. A batch of 1 is 72,000 steps:
over three minutes an epoch.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from recsys.config import RunConfig
from recsys.errors import UserError

N_TRAIN = 72_000  # MovieLens 100K: 80% train, of which 90% fit (the rest validates)
SETUP_SECONDS = 20.0  # process start, data, first-epoch tracing, test metrics, Annoy index
DEFAULT_MAX_MINUTES = 15.0
ENV_MAX_MINUTES = "RECSYS_MAX_TRAIN_MINUTES"


@dataclass(frozen=True)
class EpochCost:
    """Measured seconds per epoch at the preset's batch size, and per extra step."""

    epoch_seconds: float
    step_seconds: float


COSTS = {"default": EpochCost(1.3, 0.0030), "seed": EpochCost(1.8, 0.0055)}


def estimate_seconds(config: RunConfig, n_train: int = N_TRAIN) -> float:
    """Upper-bound seconds to train `config` on `n_train` ratings (every epoch counted)."""
    preset = config.resolved_preset()
    cost = COSTS.get(config.preset, max(COSTS.values(), key=lambda c: c.step_seconds))
    scale = n_train / N_TRAIN
    own_steps = math.ceil(n_train / preset.batch_size)
    preset_steps = math.ceil(n_train / _preset_batch(config))
    epoch = cost.epoch_seconds * scale + max(0, own_steps - preset_steps) * cost.step_seconds
    return SETUP_SECONDS + preset.epochs * epoch


def _preset_batch(config: RunConfig) -> int:
    from recsys import presets

    return presets.get(config.preset).batch_size


def max_seconds() -> float:
    """The limit on a request's estimate: RECSYS_MAX_TRAIN_MINUTES, else 15 minutes."""
    text = os.environ.get(ENV_MAX_MINUTES, "").strip()
    if not text:
        return DEFAULT_MAX_MINUTES * 60
    try:
        minutes = float(text)
    except ValueError:
        raise UserError(f"{ENV_MAX_MINUTES} must be a number of minutes, got {text!r}") from None
    if not math.isfinite(minutes) or minutes <= 0:
        raise UserError(f"{ENV_MAX_MINUTES} must be a positive number of minutes, got {text!r}")
    return minutes * 60


def describe(seconds: float) -> str:
    """'45 s', '6 min', '2 h 10 min': what the page and the errors say."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{int(minutes // 60)} h {minutes % 60:.0f} min"


def check(config: RunConfig, n_train: int = N_TRAIN) -> float:
    """The estimate for `config`, or a UserError when it is over the limit."""
    estimate, limit = estimate_seconds(config, n_train), max_seconds()
    if estimate > limit:
        raise UserError(f"this config would train for up to {describe(estimate)}, over the limit of "
                        f"{describe(limit)}; choose fewer epochs or a larger batch ({ENV_MAX_MINUTES} sets the limit)")
    return estimate
