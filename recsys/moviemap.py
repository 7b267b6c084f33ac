"""A map of the catalogue: every movie's candidate embedding projected to 2-D.

PCA in NumPy (the two leading right singular vectors of the centred embeddings): on
1,682 movies it takes milliseconds, is deterministic, and keeps distances along the
directions that vary most, which is what a reader of a scatter plot assumes. The
projection is computed once per run and stored beside it (`map.npz`).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

FILE = "map.npz"


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[n, 2] coordinates on the two leading principal axes, and the share of variance each keeps.

    Each axis's sign is fixed so its largest loading is positive: the same embeddings
    always draw the same picture.
    """
    centred = np.asarray(vectors, np.float64) - np.mean(vectors, axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    axes = axes[:2]
    flip = np.sign(axes[np.arange(len(axes)), np.argmax(np.abs(axes), axis=1)])
    axes = axes * flip[:, None]
    total = float(np.sum(singular**2)) or 1.0
    return centred @ axes.T, singular[:2] ** 2 / total


def coordinates(run_folder: Path, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The run's stored projection, computed and stored on first use."""
    path = Path(run_folder) / FILE
    try:
        with np.load(path) as stored:
            if stored["xy"].shape == (len(candidates), 2):
                return stored["xy"], stored["variance"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass  # missing or damaged: compute it again
    xy, variance = pca_2d(candidates)
    tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp.npz")
    np.savez(tmp, xy=xy, variance=variance)
    os.replace(tmp, path)
    return xy, variance


def frame(xy: np.ndarray, movies: pd.DataFrame, counts: np.ndarray) -> pd.DataFrame:
    """One row per movie: id, title, first genre, number of ratings and its map position."""
    genres = [g[0] if len(g) else "Unknown" for g in movies.movie_genres]
    return pd.DataFrame({"movie_id": movies.movie_id.astype(str).to_numpy(), "title": movies.movie_title.to_numpy(),
                         "genre": genres, "ratings": np.asarray(counts, int), "x": xy[:, 0], "y": xy[:, 1]})
