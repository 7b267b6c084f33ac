"""The cores a process may use, and the thread pools a training process starts TensorFlow with."""
from __future__ import annotations

import os

# A training step is some 250 small ops (a batch of 1,024 rows, 32-128 wide). Split over
# both cores, each op paid more in handing its halves out and back than it saved: one
# thread per op cuts the CPU time per example by a fifth to a quarter on ML-100K and on the
# synthetic 1M copy (`make bench-steps`; its figures are in bench/results.md). The
# inter-op pool still runs independent ops (the two towers, the rating head) on every core.
INTRA_OP_THREADS = 1


def cores() -> int:
    """Cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def training_env() -> dict[str, str]:
    """The environment that sets TensorFlow's pools for training: one thread per op, as
    many ops at once as cores. TensorFlow reads it once, when its runtime starts."""
    return {"TF_NUM_INTRAOP_THREADS": str(INTRA_OP_THREADS), "TF_NUM_INTEROP_THREADS": str(cores())}


def tensorflow_defaults() -> dict[str, str]:
    """The same variables set to let TensorFlow choose its pools itself (one thread per
    core within each op): how the notebook ran, and what benches compare against."""
    return {key: "0" for key in training_env()}


def for_training() -> None:
    """Give this process `training_env` (where its environment does not already say
    otherwise); it takes effect if TensorFlow's runtime has not started yet."""
    for key, value in training_env().items():
        os.environ.setdefault(key, value)
