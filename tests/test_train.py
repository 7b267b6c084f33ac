"""The cached trainer: stored runs, atomic writes, progress, reloading."""
import json
from dataclasses import replace

import numpy as np
import pytest

from recsys import runs
from recsys.config import RunConfig, run_id
from recsys.evaluate import evaluate, model_scores
from recsys.ranking import Blend
from recsys.taste import Taste
from recsys.metrics import METRIC_KEYS
from recsys.train import load_model, train
from tiny import TINY_CONFIG, tiny_prep


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return tiny_prep(tmp_path_factory.mktemp("tiny"))


def test_train_stores_a_complete_run_then_returns_it_from_the_cache(prep):
    events = []
    first = train(TINY_CONFIG, prep=prep, progress=events.append)
    assert not first.cached
    assert set(first.run.metrics) == set(METRIC_KEYS)
    assert [e["epoch"] for e in events] == [1, 2]
    assert all({"rating_loss", "retrieval_loss", "eta_seconds", "val_rmse"} <= set(e) for e in events)
    folder = runs.run_path(first.run.run_id)
    assert {"config.json", "metrics.json", "history.json", "weights.npz"} <= {p.name for p in folder.iterdir()}
    assert len(json.loads((folder / "history.json").read_text())) == 2
    assert any((folder / "tensorboard").iterdir())  # `tensorboard --logdir artifacts/runs` finds it
    mtime = (folder / "weights.npz").stat().st_mtime_ns

    again = train(TINY_CONFIG, prep=prep, progress=lambda e: pytest.fail("trained again"))
    assert again.cached and again.run.run_id == first.run.run_id
    assert again.run.metrics == first.run.metrics
    assert (folder / "weights.npz").stat().st_mtime_ns == mtime


def test_run_id_depends_on_config_data_and_not_on_spelling(prep):
    fp = prep.fingerprint
    base = run_id(TINY_CONFIG, fp)
    assert run_id(RunConfig(**{**TINY_CONFIG.__dict__, "rating_weight": 1}), fp) == base
    assert run_id(RunConfig(**{**TINY_CONFIG.__dict__, "rating_weight": 0.5}), fp) != base
    assert run_id(RunConfig(**{**TINY_CONFIG.__dict__, "split_seed": 7}), fp) != base
    assert run_id(TINY_CONFIG, "another-dataset") != base
    # An explicit value equal to the preset's default is the same run.
    assert run_id(RunConfig(preset="default"), fp) == run_id(RunConfig(preset="default", learning_rate=0.005), fp)


def test_an_interrupted_run_never_looks_finished_and_is_retrained(prep):
    def boom(event):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TINY_CONFIG, prep=prep, progress=boom)
    rid = run_id(TINY_CONFIG, prep.fingerprint)
    assert not runs.is_finished(rid) and runs.list_runs() == []
    assert runs.partial_path(rid).exists()  # what it left is clearly partial
    result = train(TINY_CONFIG, prep=prep)  # the dead trainer's leftovers don't block
    assert not result.cached and runs.is_finished(rid)
    assert not runs.partial_path(rid).exists()


def test_a_live_trainer_blocks_a_second_one_and_a_stale_pid_does_not(prep):
    from recsys import fsutil
    from recsys.errors import UserError

    rid = run_id(TINY_CONFIG, prep.fingerprint)
    with fsutil.flock(runs.lock_path(rid)):  # another trainer holds the run's lock
        with pytest.raises(UserError, match="already being trained"):
            train(TINY_CONFIG, prep=prep, wait=False)
    assert not runs.is_finished(rid)
    # A partial folder naming a live but unrelated process (pid 1) blocks nothing: only the lock counts.
    runs.partial_path(rid).mkdir(parents=True)
    (runs.partial_path(rid) / "pid").write_text("1")
    assert not train(TINY_CONFIG, prep=prep, wait=False).cached


def test_stored_weights_reproduce_the_stored_metrics(prep):
    result = train(TINY_CONFIG, prep=prep)
    model = load_model(result.run, prep)
    info = result.run.info
    scores = model_scores(model, prep, "test", user_taste=Taste.from_dict(info["taste"]))
    again = evaluate(scores, prep, "test", Blend.from_dict(info["blend"]))
    assert set(again) == set(result.run.metrics)
    for k, v in result.run.metrics.items():
        assert again[k] == pytest.approx(v, rel=1e-5, abs=1e-6), k


def test_best_epoch_is_chosen_on_validation(prep):
    result = train(TINY_CONFIG, prep=prep)
    history = result.run.history
    best = min(history, key=lambda h: h["val_selection_loss"])
    assert result.run.info["best_epoch"] == best["epoch"]
    assert not any(k.startswith("test") for h in history for k in h)
    assert np.isfinite([h["val_rmse"] for h in history]).all()


def test_the_preset_adam_is_lazy_for_large_tables_and_a_named_optimizer_is_kept(prep, monkeypatch):
    from recsys import optim, train as trainer

    assert optim.for_tables("adam", optim.LAZY_ROWS - 1) == "adam"
    assert optim.for_tables("adam", optim.LAZY_ROWS) == "lazyadam"
    assert optim.for_tables("adagrad", 10 * optim.LAZY_ROWS) == "adagrad"
    # Id rows (users + the unknown user + movies) of the real datasets: ML-100K keeps the
    # Adam it was tuned with; ML-1M-sized tables and up go lazy (bench/tuning.md, round 11).
    assert optim.for_tables("adam", 943 + 1 + 1682) == "adam"
    assert all(optim.for_tables("adam", n) == "lazyadam" for n in (6040 + 1 + 3706, 138493 + 1 + 26744))
    rows = prep.spec.n_users + 1 + prep.spec.n_movies
    assert trainer.optimizer_for(TINY_CONFIG, prep) == "adam"  # the tiny tables are small
    monkeypatch.setattr(trainer, "for_tables", lambda name, n: optim.for_tables(name, n * optim.LAZY_ROWS // rows))
    assert trainer.optimizer_for(TINY_CONFIG, prep) == "lazyadam"
    named = replace(TINY_CONFIG, optimizer="adam")
    assert trainer.optimizer_for(named, prep) == "adam"  # what the user named is what trains
    # A run trained with the switch trains with LazyAdam and records it.
    made = []
    monkeypatch.setattr(trainer, "make_optimizer", lambda name, *a: made.append(name) or optim.make_optimizer(name, *a))
    config = replace(TINY_CONFIG, epochs=1, seed=5)
    result = train(config, prep=prep)
    assert made == ["lazyadam"] and result.run.info["optimizer"] == "lazyadam"


def test_lazy_adam_leaves_the_rows_a_batch_did_not_use_where_adam_moves_them():
    # Why LazyAdam is faster on large tables: Keras's Adam keeps moving a row whose moment is
    # non-zero after the batches stop using it; LazyAdam touches only the rows in the batch.
    import tensorflow as tf

    from recsys.optim import make_optimizer

    moved = {}
    for name in ("adam", "lazyadam"):
        table = tf.Variable(tf.ones([4, 2]))
        optimizer = make_optimizer(name, 0.1)
        for rows in ([0, 1], [2, 3]):  # row 0 and 1 only in the first step
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.gather(table, rows) ** 2)
            optimizer.apply_gradients([(tape.gradient(loss, table), table)])
            if rows == [0, 1]:
                after_first = table.numpy()[0].copy()
        moved[name] = not np.allclose(table.numpy()[0], after_first)
    assert moved == {"adam": True, "lazyadam": False}


def test_each_epoch_serves_every_training_row_once_in_a_fresh_order(prep):
    from recsys.train import training_batches

    preset = replace(TINY_CONFIG.resolved_preset(), batch_size=50)
    n = len(prep.train["user"])
    steps = -(-n // 50)
    assert n % 50, "the tiny set must leave a short last batch"
    rows = np.stack([prep.train["user"], prep.train["movie"]], axis=1)
    epochs = []
    for batch in training_batches(prep, preset, 42).take(2 * steps):
        epochs.append(np.stack([batch["user"].numpy(), batch["movie"].numpy()], axis=1))
    sizes = [len(b) for b in epochs]
    assert sizes[:steps] == [50] * (steps - 1) + [n % 50] and sizes[steps:] == sizes[:steps]
    first, second = np.concatenate(epochs[:steps]), np.concatenate(epochs[steps:])
    for served in (first, second):  # (user, movie) pairs are distinct, so they name rows
        np.testing.assert_array_equal(np.unique(served, axis=0), np.unique(rows, axis=0))
    assert not np.array_equal(first, second)
