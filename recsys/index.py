"""Annoy indexes over a run's movie embeddings, stored beside the run and mmapped.

Two questions, two indexes:
  users   "which movies score highest for this query?" is inner-product search. annoy
          1.17.3's "dot" metric builds poor trees (spotify/annoy#619, fixed after that
          release), so we use the standard reduction instead: append one coordinate
          sqrt(M^2 - |c|^2) so every candidate has norm M, append 0 to the query, and
          search by angle. On the augmented vectors angle order equals dot-product order.
  movies  "which movies are like this one?" is cosine similarity: angular search.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from recsys import fsutil
from recsys.errors import UserError

N_TREES = 10
SEARCH_K = 2000  # nodes to inspect per query; chosen by measurement (see README)
SEED = 42


def augment_candidates(candidates: np.ndarray) -> tuple[np.ndarray, float]:
    """Give every candidate the same norm with one extra coordinate (MIPS -> angular)."""
    norms = np.linalg.norm(candidates, axis=1)
    top = float(norms.max())
    extra = np.sqrt(np.maximum(top**2 - norms**2, 0.0))
    return np.hstack([candidates, extra[:, None]]).astype(np.float32), top


def augment_query(query: np.ndarray) -> np.ndarray:
    """Queries get a 0 in the extra coordinate, so their dot products are unchanged."""
    query = np.atleast_2d(query)
    return np.hstack([query, np.zeros((len(query), 1), query.dtype)])


def build_annoy(vectors: np.ndarray, metric: str, n_trees: int = N_TREES) -> AnnoyIndex:
    """A deterministic Annoy index: fixed seed, one build thread."""
    index = AnnoyIndex(vectors.shape[1], metric)
    index.set_seed(SEED)
    for i, v in enumerate(vectors):
        index.add_item(i, v.tolist())
    index.build(n_trees, n_jobs=1)
    return index


@dataclass
class RunIndex:
    """The two mmapped indexes of a run and how to query them."""

    users: AnnoyIndex
    movies: AnnoyIndex
    meta: dict

    @property
    def search_k(self) -> int:
        """Nodes inspected per query."""
        return self.meta["search_k"]

    def user_neighbours(self, query: np.ndarray, k: int) -> list[int]:
        """Movie rows with the highest dot product with `query` (approximately)."""
        return self.users.get_nns_by_vector(augment_query(query)[0].tolist(), k, search_k=self.search_k)

    def movie_neighbours(self, row: int, k: int) -> list[int]:
        """Movie rows most similar (cosine) to movie `row`, excluding itself."""
        found = self.movies.get_nns_by_item(row, k + 1, search_k=self.search_k)
        return [r for r in found if r != row][:k]


class IndexDamaged(UserError):
    """A run's index files are missing, garbled or don't match their checksums: rebuild them."""


FILES = ("users.ann", "movies.ann")


def build(run_folder: Path, candidates: np.ndarray, movie_ids: list[str], n_trees: int = N_TREES,
          search_k: int = SEARCH_K, user_vectors: np.ndarray | None = None) -> Path:
    """Build both indexes in `run_folder/index` and publish them atomically.

    `user_vectors` are what user queries are matched against (default: the candidates;
    a run adds its popularity-prior column, recsys/taste.py). meta.json records each file's size and sha256, so a damaged file is found before
    annoy mmaps it (annoy trusts its files: a truncated one crashes the process).
    The run folder must exist: a build never recreates a run that was deleted meanwhile.
    """
    run_folder = Path(run_folder)
    final = run_folder / "index"
    user_vectors = candidates if user_vectors is None else user_vectors
    # A unique temp folder per build: threads of one process (Streamlit sessions) may build at once.
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".index.tmp-", dir=run_folder))
    except FileNotFoundError:
        raise UserError(f"run {run_folder.name} is not stored any more") from None
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the published index is as readable as before
        augmented, _ = augment_candidates(user_vectors)
        build_annoy(augmented, "angular", n_trees).save(str(tmp / "users.ann"))
        build_annoy(candidates, "angular", n_trees).save(str(tmp / "movies.ann"))
        meta = {"n_trees": n_trees, "search_k": search_k, "dim": int(candidates.shape[1]),
                "user_dim": int(user_vectors.shape[1]), "n_items": int(len(candidates)),
                "movie_ids": list(movie_ids),
                "files": {name: fsutil.file_record(tmp / name) for name in FILES}}
        fsutil.write_json(tmp / "meta.json", meta)
        try:
            old = Path(tempfile.mkdtemp(prefix=".index.old-", dir=run_folder))
        except FileNotFoundError:
            raise UserError(f"run {run_folder.name} is not stored any more") from None
        try:
            try:
                os.replace(final, old / "index")  # move the previous index aside (mmaps stay valid)
            except FileNotFoundError:
                pass
            try:
                os.replace(tmp, final)
            except OSError:  # another builder published between our two renames, or the run was deleted
                if not exists(run_folder):
                    raise UserError(f"run {run_folder.name} is not stored any more") from None
        finally:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def exists(run_folder: Path) -> bool:
    """Whether the run folder holds an index (complete or not: `load` checks it)."""
    return (Path(run_folder) / "index" / "meta.json").exists()


def _meta(folder: Path, dim: int | None, n_items: int | None) -> dict:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        raise IndexDamaged("index/meta.json is missing or garbled") from None
    ok = (isinstance(meta, dict) and isinstance(meta.get("dim"), int) and meta["dim"] > 0
          and isinstance(meta.get("user_dim"), int) and meta["user_dim"] > 0
          and isinstance(meta.get("search_k"), int) and isinstance(meta.get("n_trees"), int)
          and isinstance(meta.get("files"), dict) and isinstance(meta.get("movie_ids"), list))
    if not ok:
        raise IndexDamaged("index/meta.json lacks fields (or predates checksums)")
    if (dim is not None and meta["dim"] != dim) or (n_items is not None and meta.get("n_items") != n_items):
        raise IndexDamaged("index/meta.json does not describe this run's embeddings")
    return meta


def verify(run_folder: Path, dim: int | None = None, n_items: int | None = None) -> dict:
    """The index's meta after checking every file's size and sha256; IndexDamaged if one fails."""
    folder = Path(run_folder) / "index"
    meta = _meta(folder, dim, n_items)
    for name in FILES:
        problem = fsutil.matches(folder / name, meta["files"].get(name))
        if problem:
            raise IndexDamaged(f"index/{problem}")
    return meta


def _load_checked(path: Path, record: dict, dim: int) -> AnnoyIndex:
    """Load one Annoy file from a private copy whose bytes matched the checksum.

    The check and the load see the same bytes: the copy is ours, so a file damaged
    after the check (or while the server runs) can't reach annoy, which would crash
    the whole process on a truncated mmap.
    """
    try:
        data = path.read_bytes()
    except OSError:
        raise IndexDamaged(f"index/{path.name} is missing") from None
    if len(data) != record.get("size") or hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise IndexDamaged(f"index/{path.name} does not match its checksum")
    fd, private = tempfile.mkstemp(prefix="recsys-annoy-", suffix=".ann")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        index = AnnoyIndex(dim, "angular")
        index.load(private)  # mmap of our own copy; it stays valid after the unlink below
    finally:
        os.unlink(private)
    return index


def load(run_folder: Path, dim: int | None = None, n_items: int | None = None) -> RunIndex:
    """Load a run's indexes after verifying them: UserError if there is none, IndexDamaged if damaged."""
    folder = Path(run_folder) / "index"
    if not exists(run_folder):  # IndexDamaged: a server rebuilds what is missing like what is damaged
        run_id = Path(run_folder).name
        raise IndexDamaged(f"run {run_id} has no index; build it with `python -m recsys index --run {run_id}`")
    meta = _meta(folder, dim, n_items)
    users = _load_checked(folder / "users.ann", meta["files"].get("users.ann") or {}, meta["user_dim"] + 1)
    movies = _load_checked(folder / "movies.ann", meta["files"].get("movies.ann") or {}, meta["dim"])
    if n_items is not None and (users.get_n_items() != n_items or movies.get_n_items() != n_items):
        raise IndexDamaged("index holds another number of movies than the run")
    return RunIndex(users, movies, meta)


def exact_top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Brute-force reference: the k best columns of a score vector, best first."""
    scores = np.asarray(scores, np.float64).copy()
    if exclude is not None and len(exclude):
        scores[exclude] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    part = np.argpartition(-scores, k - 1)[:k] if k else np.array([], int)
    return part[np.argsort(-scores[part], kind="stable")]


def recall(approx: list[list[int]], exact: list[np.ndarray]) -> float:
    """Mean share of the exact top-k that the approximate search also returned."""
    return float(np.mean([len(set(a) & set(e.tolist())) / max(len(e), 1) for a, e in zip(approx, exact)]))


def timed(fn, items) -> tuple[list, np.ndarray]:
    """Results of `fn` on each item, and each call's time in milliseconds."""
    out, ms = [], []
    for item in items:
        t = time.perf_counter()
        out.append(fn(item))
        ms.append((time.perf_counter() - t) * 1000)
    return out, np.array(ms)


def measure(index: RunIndex, queries: np.ndarray, candidates: np.ndarray, k: int = 10,
            user_vectors: np.ndarray | None = None) -> dict:
    """Recall@k of Annoy against exact search, with p50/p95 query times, users and movies.

    `queries` are matched against `user_vectors` (default: the candidates).
    """
    user_vectors = candidates if user_vectors is None else user_vectors
    exact_users = [exact_top_k(user_vectors @ q, k) for q in queries]
    approx_users, user_ms = timed(lambda q: index.user_neighbours(q, k), queries)
    unit = candidates / np.maximum(np.linalg.norm(candidates, axis=1, keepdims=True), 1e-12)
    rows = np.arange(len(candidates))
    exact_movies = [exact_top_k(unit @ unit[r], k, exclude=np.array([r])) for r in rows]
    approx_movies, movie_ms = timed(lambda r: index.movie_neighbours(int(r), k), rows)

    def stats(approx, exact, ms):
        return {f"recall_at_{k}": round(recall(approx, exact), 4),
                "p50_ms": round(float(np.percentile(ms, 50)), 4), "p95_ms": round(float(np.percentile(ms, 95)), 4)}

    return {"users": stats(approx_users, exact_users, user_ms), "movies": stats(approx_movies, exact_movies, movie_ms)}


def dot_metric_recall(queries: np.ndarray, candidates: np.ndarray, k: int = 10, n_trees: int = N_TREES,
                      search_k: int = SEARCH_K) -> float:
    """Recall@k of annoy's own "dot" metric, to show why we don't serve it."""
    index = build_annoy(candidates.astype(np.float32), "dot", n_trees)
    approx = [index.get_nns_by_vector(q.tolist(), k, search_k=search_k) for q in queries]
    return recall(approx, [exact_top_k(candidates @ q, k) for q in queries])
