"""Optimisers a run can use: the seed's Ranger, Adam and Adagrad."""
from __future__ import annotations

from recsys.errors import UserError

OPTIMIZERS = ("ranger", "adam", "adagrad")


def make_optimizer(name: str, learning_rate: float):
    """Build the optimiser `name`; "ranger" is the notebook's RAdam wrapped in Lookahead."""
    import tensorflow as tf  # late, so config validation stays free of TensorFlow

    if name == "ranger":
        import tensorflow_addons as tfa  # imported late: it warns loudly on import

        # The notebook's schedule: warm up over 40% of 150 steps, decay to min_lr.
        radam = tfa.optimizers.RectifiedAdam(
            learning_rate=learning_rate, total_steps=150, warmup_proportion=0.4, min_lr=0.01)
        return tfa.optimizers.Lookahead(radam, sync_period=6, slow_step_size=0.5)
    if name == "adam":
        return tf.keras.optimizers.Adam(learning_rate)
    if name == "adagrad":
        return tf.keras.optimizers.Adagrad(learning_rate)
    raise UserError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
