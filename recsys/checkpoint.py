"""Building a run's model, and storing and loading its weights by variable path.

Weights are saved as named arrays keyed by the model's object path
("query_tower/dense/layer_with_weights-0/kernel"), which depends only on the model's
attribute names, not on Keras's per-process layer counters or on variable order. A
stored run is rebuilt from its own resolved preset, not today's `presets.py`, and the
weights file is checked against the size and sha256 recorded when it was written
before a byte of it is parsed. Serving imports this module, never the trainer.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from recsys import fsutil
from recsys.config import RunConfig
from recsys.model import MultiTaskModel
from recsys.prepare import Prepared
from recsys.presets import Preset
from recsys.runs import DamagedRun, OlderRun, Run


def sample_inputs(model: MultiTaskModel, prep: Prepared, rows: int = 2) -> dict[str, tf.Tensor]:
    """A few training rows in the model's input form: calling the model on them creates its variables."""
    from recsys.evaluate import model_inputs

    part = {k: v[:rows] for k, v in prep.train.items()}
    return {**model_inputs(model, prep.timeline, part), "movie": tf.constant(part["movie"]),
            "rating": tf.constant(part["rating"])}


def build_model(prep: Prepared, config: RunConfig, preset: Preset | None = None) -> MultiTaskModel:
    """A fresh, built model for `config` on `prep`'s features (with `preset` instead of the config's)."""
    preset = preset or config.resolved_preset()
    popularity = np.bincount(prep.train["movie"], minlength=prep.spec.n_movies)
    model = MultiTaskModel(prep.spec, preset, config.rating_weight, config.retrieval_weight,
                           mean_rating=float(prep.train["rating"].mean()), movie_popularity=popularity)
    model(sample_inputs(model, prep))  # create the variables
    return model


def variables_by_path(model: tf.keras.Model) -> dict[str, tf.Variable]:
    """The model's weights keyed by their object path (the optimizer's state left out)."""
    wanted = {id(v) for v in model.weights}
    out: dict[str, tf.Variable] = {}
    seen: set[int] = set()

    def walk(obj, prefix: str) -> None:
        for name, child in tf.train.TrackableView(obj).children(obj).items():
            if id(child) in seen or name == "optimizer":
                continue
            seen.add(id(child))
            path = f"{prefix}/{name}" if prefix else name
            if isinstance(child, tf.Variable):
                if id(child) in wanted:
                    out[path] = child
            else:
                walk(child, path)

    walk(model, "")
    return out


def save_weights(model: tf.keras.Model, path: Path) -> dict:
    """Write the weights as named arrays (atomically); return the record config.json keeps."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: v.numpy() for k, v in variables_by_path(model).items()})
    fsutil.write_bytes(Path(path), buffer.getvalue())
    return {"format": "named", **fsutil.file_record(path)}


def read_weights(run: Run) -> dict[str, np.ndarray]:
    """The run's stored arrays, after checking the file against its recorded checksum."""
    path = run.path / "weights.npz"
    if run.weights.get("format") == "named":
        problem = fsutil.matches(path, run.weights)
        if problem:
            raise DamagedRun(f"run {run.run_id} is damaged: {problem}")
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {k: stored[k] for k in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DamagedRun(f"run {run.run_id} is damaged: weights.npz can't be read ({type(exc).__name__})") from None


def load_model(run: Run, prep: Prepared) -> MultiTaskModel:
    """Rebuild a stored run's model from its own preset and load its best weights.

    OlderRun when this code can't rebuild it, DamagedRun when its weights file is damaged.
    """
    run.check_servable()
    arrays = read_weights(run)
    model = build_model(prep, run.config, run.preset)
    if run.weights.get("format") == "named":
        variables = variables_by_path(model)
        missing, extra = sorted(set(variables) - set(arrays)), sorted(set(arrays) - set(variables))
        wrong = [k for k, v in variables.items() if k in arrays and tuple(arrays[k].shape) != tuple(v.shape)]
        if missing or extra or wrong:
            first = (missing or extra or wrong)[0]
            raise OlderRun(f"run {run.run_id} does not fit this version's model ({len(missing)} missing, "
                           f"{len(extra)} unknown, {len(wrong)} misshapen weights, e.g. {first}); delete it "
                           "or train its config again")
        for k, v in variables.items():
            v.assign(arrays[k])
    else:  # format 1: by position, allowed only when this code gives the run the same id
        try:
            model.set_weights([arrays[f"w{i}"] for i in range(len(arrays))])
        except (KeyError, ValueError) as exc:
            raise OlderRun(f"run {run.run_id} does not fit this version's model ({str(exc)[:80]})") from None
    return model
