"""Optimisers a run can use: the seed's Ranger, Adam, LazyAdam and Adagrad."""
from __future__ import annotations

from recsys.errors import UserError

OPTIMIZERS = ("ranger", "adam", "lazyadam", "adagrad")
# Id-embedding rows (users + movies) from which a preset's Adam becomes LazyAdam (and the
# rating factors' L2 is paid per use, recsys/model.py). On ML-100K (2,626 rows) LazyAdam
# was mixed on validation: RMSE better on one split seed of three and worse on the others
# and the temporal split, with 1-10 more epochs (bench/tuning.md, rounds 8 and 11), so it
# keeps Adam. On the synthetic 1M copy (8,995 rows; ML-1M has 9,747) validation was the same
# (RMSE 0.8280 against 0.8284, recall@10 0.1509 against 0.1511; under the temporal split
# within 0.0008 on every user-level figure) and an epoch took 5.8 s instead of 6.6 s (round 11). On the synthetic 10M copy (90,000) a step took 37 ms with
# Adam and 20 ms with LazyAdam (round 5).
LAZY_ROWS = 5_000


def large_tables(rows: int) -> bool:
    """Whether `rows` id-embedding rows are many enough that work on every row at every
    step costs more than the batch's own: the model then touches only the batch's rows."""
    return rows >= LAZY_ROWS


def for_tables(name: str, rows: int) -> str:
    """The optimiser a preset's `name` means for a model with `rows` id-embedding rows:
    Adam becomes LazyAdam for `large_tables`; every other name is itself."""
    return "lazyadam" if name == "adam" and large_tables(rows) else name


def make_optimizer(name: str, learning_rate: float, decay: float = 1.0, steps_per_epoch: int = 1):
    """Build the optimiser `name`; "ranger" is the notebook's RAdam wrapped in Lookahead.

    For Adam, LazyAdam and Adagrad, the learning rate is multiplied by `decay` once per epoch.
    LazyAdam (tensorflow-addons) is Adam that updates only the embedding rows a batch
    used: Keras's Adam decays the moments of every row of every table at every step, a
    cost that grows with the number of users and movies, not with the batch.
    """
    import tensorflow as tf  # late, so config validation stays free of TensorFlow

    rate = learning_rate
    if decay != 1.0:
        rate = tf.keras.optimizers.schedules.ExponentialDecay(learning_rate, steps_per_epoch, decay)

    if name == "ranger":
        import tensorflow_addons as tfa  # imported late: it warns loudly on import

        # The notebook's schedule: warm up over 40% of 150 steps, decay to min_lr.
        radam = tfa.optimizers.RectifiedAdam(
            learning_rate=learning_rate, total_steps=150, warmup_proportion=0.4, min_lr=0.01)
        return tfa.optimizers.Lookahead(radam, sync_period=6, slow_step_size=0.5)
    if name == "adam":
        return tf.keras.optimizers.Adam(rate)
    if name == "lazyadam":
        import tensorflow_addons as tfa

        return tfa.optimizers.LazyAdam(rate)
    if name == "adagrad":
        return tf.keras.optimizers.Adagrad(rate)
    raise UserError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
