"""The cached trainer: a config trains once; the same config later returns its stored run."""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf

from recsys import fsutil, runs, taste
from recsys import index as annoy_index
from recsys.checkpoint import build_model, load_model, save_weights  # noqa: F401 - re-exported
from recsys.config import MODEL_VERSION, RunConfig, run_id
from recsys.errors import UserError
from recsys.evaluate import (Scores, choose_blend, choose_taste, embed_moments, evaluate, full_softmax_loss,
                             model_scores, part_of)
from recsys.history import POINTER_KEYS, query_features
from recsys.newuser import choose_new_user_taste
from recsys.model import MultiTaskModel
from recsys.optim import for_tables, make_optimizer
from recsys.prepare import Prepared, latest_times, prepare
from recsys.presets import Preset

ProgressFn = Callable[[dict], None]


@dataclass(frozen=True)
class TrainResult:
    """A finished run and whether it came from the cache."""

    run: runs.Run
    cached: bool

    def to_json(self) -> dict:
        """What `python -m recsys train --json` prints."""
        return self.run.train_json(self.cached)


INPUT_KEYS = ("user", "movie", "rating", "timestamp") + POINTER_KEYS


def training_batches(prep: Prepared, preset: Preset, seed: int, shard: int = 0, shards: int = 1) -> tf.data.Dataset:
    """Endless batches of the training part, in a fresh order each epoch, histories gathered.

    With `shards` > 1 (tf.distribute workers), share `shard` of each batch: every worker
    draws the same orders and takes its contiguous share of each global batch, so the
    shares of all workers make up the one-process batch.

    Only row numbers are shuffled (one permutation op per epoch) and whole batches are
    gathered from the arrays: far cheaper than shuffling 72,000 records one by one. One
    iterator serves every epoch. Each batch gathers its rows' histories from the
    training timeline, so no per-row history array exists anywhere.
    """
    part = {k: prep.train[k] for k in INPUT_KEYS}
    part["timestamp"] = part["timestamp"].astype(np.float32)
    if preset.completion_share:
        # The same rating asked at the user's latest training time, itself left out.
        part["latest_end"] = prep.timeline.bounds[part["user"] + 1]
        part["latest_time"] = latest_times(prep.train, prep.spec.n_users, 0.0)[part["user"]].astype(np.float32)
    tensors = {k: tf.constant(v) for k, v in part.items()}
    timeline = (tf.constant(prep.timeline.movie), tf.constant(prep.timeline.rating))
    n_movies = prep.spec.n_movies if preset.reads_history else 0
    n = len(part["user"])

    def rows_to_batch(rows: tf.Tensor) -> dict:
        batch = {k: tf.gather(t, rows) for k, t in tensors.items()}
        if preset.completion_share:
            later = tf.random.uniform(tf.shape(rows), seed=seed) < preset.completion_share
            batch["history_end"] = tf.where(later, batch.pop("latest_end"), batch["history_end"])
            batch["timestamp"] = tf.where(later, batch.pop("latest_time"), batch["timestamp"])
        pointers = {k: batch.pop(k) for k in POINTER_KEYS}
        return {**batch, **query_features(*timeline, pointers, preset.context_size, n_movies)}

    orders = tf.data.Dataset.random(seed=seed).map(
        lambda s: tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([s, 0])))
    # No autotuning: nothing here needs it, and with it on, deleting the iterator when
    # `fit` returned stalled for up to 19 s in about half of the runs (README, Benchmarks).
    options = tf.data.Options()
    options.autotune.enabled = False
    # A batch is a slice of the epoch's order: `from_tensor_slices(order).batch` yields and
    # stacks its rows one by one, 1,024 iterator steps a batch on the cores the model trains on.
    size = preset.batch_size
    batches = orders.flat_map(
        lambda order: tf.data.Dataset.range(0, n, size).map(lambda start: order[start:start + size]))
    if shards > 1:
        batches = batches.map(lambda rows: rows[tf.shape(rows)[0] * shard // shards:
                                                tf.shape(rows)[0] * (shard + 1) // shards])
    return batches.map(rows_to_batch).prefetch(2).with_options(options)


def selection_loss(model: MultiTaskModel, prep: Prepared, val_metrics: dict, scores: Scores) -> float:
    """The weighted objective on validation: rating MSE plus the full-catalogue cross-entropy
    of each validation rating at its own time (what the loss weights ask the model to learn)."""
    loss = 0.0
    if model.rating_weight > 0:
        loss += model.rating_weight * val_metrics["rmse"] ** 2
    if model.retrieval_weight > 0:
        loss += model.retrieval_weight * full_softmax_loss(scores, part_of(prep, "val").pairs["movie"],
                                                           model.preset.temperature)
    return loss


class _EpochEnd(tf.keras.callbacks.Callback):
    """Validation, best-weights tracking, early stopping, progress and TensorBoard.

    Under tf.distribute (`worker`), worker 0 validates and every worker acts on its
    selection loss; the other workers (folder None) validate and write nothing.
    """

    def __init__(self, prep: Prepared, epochs: int, patience: int, folder, progress: ProgressFn | None,
                 worker=None):
        super().__init__()
        self.prep, self.epochs, self.patience, self.progress = prep, epochs, patience, progress
        self.folder, self.worker = folder, worker
        self.history: list[dict] = []
        self.best = (np.inf, 0, None)  # (selection loss, epoch, weights)
        self.start = time.perf_counter()
        self.writer = tf.summary.create_file_writer(str(folder / "tensorboard")) if folder else None

    def on_train_begin(self, logs=None) -> None:
        """Look the model's variables up once: Keras's get_weights walks every layer each call."""
        self.variables = self.model.weights

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.folder is None:  # a tf.distribute worker other than 0: worker 0's validation decides
            self._decide(epoch, self.worker.agree(None))
            return
        began = time.perf_counter()
        scores = model_scores(self.model, self.prep, "val")
        val = evaluate(scores, self.prep, "val", full=False)
        sel = selection_loss(self.model, self.prep, val, scores)
        if self.worker is not None:
            sel = self.worker.agree(sel)  # one decision for every worker, whatever their rounding
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
               **{f"val_{k}": v for k, v in val.items()}, "val_selection_loss": sel,
               "validation_seconds": time.perf_counter() - began, "elapsed_seconds": time.perf_counter() - self.start}
        self.history.append(row)
        stop = self._decide(epoch, sel)
        with self.writer.as_default(step=epoch + 1):
            for k, v in row.items():
                if k != "epoch":
                    tf.summary.scalar(k, v)
        per_epoch = row["elapsed_seconds"] / (epoch + 1)
        event = {**row, "epochs": self.epochs, "best_epoch": self.best[1], "stopping": bool(stop),
                 "eta_seconds": 0.0 if stop else per_epoch * (self.epochs - epoch - 1)}
        runs.write_json(self.folder / "progress.json", event)
        if self.progress:
            self.progress(event)

    def _decide(self, epoch: int, sel: float) -> bool:
        """Keep the best epoch (its weights where they are stored) and stop when patience runs out."""
        if sel < self.best[0]:
            self.best = (sel, epoch + 1, None if self.folder is None else self._values())
        stop = bool(self.patience and epoch + 1 - self.best[1] >= self.patience)
        if stop:
            self.model.stop_training = True
        return stop

    def _values(self) -> list[np.ndarray]:
        """The model's weights now. Under tf.distribute, this worker's copies: reading a
        metric's (sync-on-read) variable as a whole would be a collective of one worker."""
        if self.worker is None:
            return [v.numpy() for v in self.variables]
        return [self.worker.local(v) for v in self.variables]


class TrainingDiverged(UserError):
    """The training loss stopped being a finite number."""


class _StopOnNonFinite(tf.keras.callbacks.Callback):
    """End training with a one-line error as soon as an epoch's loss is NaN or infinite.

    Listed before _EpochEnd, so a diverged model is never validated or kept as the best.
    """

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        for key, value in (logs or {}).items():
            if key.endswith("loss") and not math.isfinite(float(value)):
                raise TrainingDiverged(f"the loss diverged at epoch {epoch + 1}; lower the learning rate "
                                       "(or the loss weights)")


def train(config: RunConfig, prep: Prepared | None = None, progress: ProgressFn | None = None,
          data_path: str | None = None, wait: bool = True, worker=None) -> TrainResult:
    """Train `config` (or return its stored run) and store it atomically under artifacts/runs.

    If another process trains the same config right now, wait for it and return its run
    (wait=False: UserError instead). A damaged, incomplete or older run of the config is
    trained again and replaced. TrainingDiverged when the loss stops being finite.
    A config with workers > 1 is trained by worker processes (recsys/distributed.py);
    `worker` is worker 0's side of it, and tells the others whether to train.
    """
    config.validate()
    if config.workers > 1 and worker is None:
        from recsys import distributed

        if prep is not None:
            raise ValueError("the workers prepare their own data: pass data_path, not prep")
        return distributed.train(config, data_path=data_path, progress=progress, wait=wait).result
    prep = prep or prepare(data_path, config.split_seed, config.split, config.dataset)
    rid = run_id(config, prep.fingerprint)
    tell = worker.tell if worker is not None else lambda rid: None  # the other workers train only on rid
    hit = runs.find(rid)
    if hit is not None:
        tell(None)
        return TrainResult(hit, cached=True)

    with runs.claim(rid, wait) as folder:
        hit = runs.find(rid)  # finished by the process we waited for
        if hit is not None:
            fsutil.remove_tree(folder)
            tell(None)
            return TrainResult(hit, cached=True)
        try:
            tell(rid)
            _fit_and_store(config, prep, rid, folder, progress, worker)
        except Exception:  # a failed run leaves nothing behind (an interrupted one leaves a .partial)
            fsutil.remove_tree(folder)
            raise
        (folder / "pid").unlink(missing_ok=True)  # this process no longer trains it
        runs.finish(rid)  # under the lock: nobody publishes this run id at the same time
    return TrainResult(runs.load(rid), cached=False)


# Training steps per call into TensorFlow: each call costs about a millisecond of Python
# and dispatch, a tenth of a step at ML-100K. Nothing here acts between a call's steps
# (the callbacks act at epoch ends), and an epoch's last call runs only its remaining steps.
# tf.distribute workers keep one step a call: inside the loop, the all-gather of a
# worker's batch met another worker's gather of a different step ("shape mismatch in the
# collective instance", expected [192] against [1024] at an epoch's short last batch).
STEPS_PER_EXECUTION = 8


def optimizer_for(config: RunConfig, prep: Prepared) -> str:
    """The optimiser a run trains with: the one the user named, else the preset's for these
    tables (`optim.for_tables`: its Adam is LazyAdam for large catalogues)."""
    preset = config.resolved_preset()
    if config.optimizer is not None:
        return preset.optimizer
    return for_tables(preset.optimizer, prep.spec.n_users + 1 + prep.spec.n_movies)


def steps_per_epoch(config: RunConfig, prep: Prepared) -> int:
    """Batches in an epoch (global batches under tf.distribute: the same schedule)."""
    return -(-len(prep.train["user"]) // config.resolved_preset().batch_size)


def compiled_model(config: RunConfig, prep: Prepared, steps_per_execution: int = STEPS_PER_EXECUTION):
    """A fresh model for `config`, compiled with its optimiser and learning-rate schedule."""
    preset = config.resolved_preset()
    model = build_model(prep, config)
    optimizer = make_optimizer(optimizer_for(config, prep), preset.learning_rate, preset.learning_rate_decay,
                               steps_per_epoch(config, prep))
    model.compile(optimizer=optimizer, steps_per_execution=steps_per_execution)
    return model


def _fit(config: RunConfig, prep: Prepared, folder, progress: ProgressFn | None, worker=None) -> tuple:
    """Fit a fresh model: (model, its _EpochEnd, seconds). Under tf.distribute, `worker`
    (recsys/distributed.py) holds the strategy: the model and optimizer are made in its
    scope and each worker reads its part of every global batch. folder None: write nothing."""
    preset = config.resolved_preset()
    tf.keras.utils.set_random_seed(config.seed)
    with worker.strategy.scope() if worker is not None else contextlib.nullcontext():
        model = compiled_model(config, prep, STEPS_PER_EXECUTION if worker is None else 1)
    steps = steps_per_epoch(config, prep)
    epoch_end = _EpochEnd(prep, preset.epochs, preset.patience, folder, progress, worker)
    batches = (training_batches(prep, preset, config.seed) if worker is None
               else worker.distribute(lambda shard, shards: training_batches(prep, preset, config.seed, shard, shards)))
    start = time.perf_counter()
    model.fit(batches, epochs=preset.epochs, steps_per_epoch=steps, verbose=0,
              callbacks=[_StopOnNonFinite(), epoch_end])
    return model, epoch_end, time.perf_counter() - start


def _fit_and_store(config: RunConfig, prep: Prepared, rid: str, folder, progress: ProgressFn | None,
                   worker=None) -> None:
    """Train into the partial folder and write every file of the run there."""
    model, epoch_end, train_seconds = _fit(config, prep, folder, progress, worker)
    if worker is not None:  # what follows runs on worker 0 alone: on a plain copy, with no collective
        model = build_model(prep, config)

    if epoch_end.best[2] is None:  # no epoch had a finite validation objective
        raise TrainingDiverged("the loss diverged at epoch 1; lower the learning rate (or the loss weights)")
    model.set_weights(epoch_end.best[2])
    t = time.perf_counter()
    if model.item_item is not None:
        model.item_item.fit(prep.train, prep.spec.n_users)
    candidates = model.candidate_embeddings(prep.spec.n_movies)
    # Everything chosen after training is chosen on validation; test only reports.
    moments = embed_moments(model, prep.timeline, part_of(prep, "val").users)
    user_taste, taste_grid = choose_taste(model, prep, candidates, moments)
    val_scores = model_scores(model, prep, "val", candidates=candidates, user_taste=user_taste, moments=moments)
    blend, blend_grid = choose_blend(val_scores, prep)
    new_user_taste, new_user_grid = choose_new_user_taste(model, prep, candidates)
    val_metrics = evaluate(val_scores, prep, "val", blend)
    test_metrics = evaluate(model_scores(model, prep, "test", candidates=candidates, user_taste=user_taste,
                                         moments=moments), prep, "test", blend)
    info = {"train_seconds": round(train_seconds, 2), "eval_seconds": round(time.perf_counter() - t, 3),
            "best_epoch": epoch_end.best[1], "stopped_epoch": len(epoch_end.history),
            "data_source": prep.ml.source, "data_fingerprint": prep.fingerprint, "split": prep.protocol,
            "dataset": prep.ml.dataset, "synthetic": prep.ml.synthetic, "optimizer": optimizer_for(config, prep),
            "taste": user_taste.to_dict(), "taste_validation": taste_grid,
            "blend": blend.to_dict(), "blend_validation": blend_grid, "validation": val_metrics,
            "new_user": new_user_taste.to_dict(), "new_user_validation": new_user_grid,
            "item_item_l2": None if model.item_item is None else round(model.item_item.fitted_l2, 1),
            **(worker.info if worker is not None else {})}
    counts = np.bincount(prep.train["movie"], minlength=prep.spec.n_movies)
    annoy_index.build(folder, candidates, list(prep.spec.movie_ids),
                      user_vectors=taste.user_vectors(candidates, counts, model.preset.temperature))
    weights = save_weights(model, folder / "weights.npz")
    runs.write_json(folder / "history.json", epoch_end.history)
    # Self-describing: the resolved preset, the code version and the weights' checksum.
    runs.write_json(folder / "config.json", {"run_id": rid, "config": config.to_dict(), "format": runs.FORMAT,
                                             "model_version": MODEL_VERSION, "weights": weights})
    runs.write_json(folder / "metrics.json", {"test": test_metrics, "info": info})  # last: marks "done"
