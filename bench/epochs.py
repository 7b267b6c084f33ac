"""Child process for the epoch-time benchmark: time one loop, print its epoch seconds.

Each sample runs in a fresh process, so no loop inherits another's allocator state
or thread pools (in one process, whichever ran second was up to 2x slower).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile


def main(variant: str, seed: int) -> list[float]:
    """Seconds of each epoch after the first (graph tracing) for one loop variant.

    For a preset: the training seconds, without the per-epoch validation that the
    notebook's loop does not do (the report gives it separately).
    """
    import numpy as np

    from recsys.prepare import prepare
    from recsys.threads import tensorflow_defaults, training_env

    # Set here, not inherited: the notebook's loop runs as the notebook ran it, a preset as
    # `python -m recsys train` trains it.
    os.environ.update(tensorflow_defaults() if variant.startswith("notebook") else training_env())

    prep = prepare()
    if variant.startswith("notebook"):
        from bench import notebook

        tr = prep.split.frames(prep.ml.ratings)[0]
        allin = notebook.notebook_inputs(prep.ml.ratings, prep.ml.movies, prep.ml.users)
        train_in = notebook.notebook_inputs(tr, prep.ml.movies, prep.ml.users)
        on = variant == "notebook-metrics-on"
        return notebook.epoch_seconds(train_in, allin, epochs=2 if on else 3, metrics_in_training=on)[1:]
    os.environ["RECSYS_ARTIFACTS"] = tempfile.mkdtemp(prefix="epochs-")
    from recsys.config import RunConfig
    from recsys.train import train

    run = train(RunConfig(1.0, 1.0, preset=variant, epochs=3, seed=seed), prep=prep).run
    elapsed = np.diff([h["elapsed_seconds"] for h in run.history])
    return [float(e - h["validation_seconds"]) for e, h in zip(elapsed, run.history[1:])]


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 42)))
