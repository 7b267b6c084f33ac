"""Annoy indexes: the MIPS reduction, deterministic atomic builds, loading, measuring."""
import json
import os
import shutil
import threading

import numpy as np
import pytest

from recsys import index
from recsys.errors import UserError


def _vectors(n=300, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    # Norms spread over an order of magnitude, so dot order differs from cosine order.
    return (rng.normal(size=(n, dim)) * rng.uniform(0.1, 2.0, size=(n, 1))).astype(np.float32)


def _ids(n):
    return [str(i + 1) for i in range(n)]


def _angles(a, b):
    cos = (a @ b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b))
    return np.arccos(np.clip(cos, -1, 1))


# --------------------------------------------------------------------------- MIPS -> angular
def test_augmented_candidates_all_have_the_largest_norm():
    cands = _vectors()
    aug, top = index.augment_candidates(cands)
    assert aug.shape == (len(cands), cands.shape[1] + 1) and aug.dtype == np.float32
    assert top == pytest.approx(np.linalg.norm(cands, axis=1).max(), rel=1e-6)
    np.testing.assert_allclose(np.linalg.norm(aug, axis=1), top, rtol=1e-5)
    np.testing.assert_array_equal(aug[:, :-1], cands)  # the original coordinates are kept


def test_augmented_query_keeps_every_dot_product():
    cands, queries = _vectors(), _vectors(20, seed=1)
    aug, _ = index.augment_candidates(cands)
    augq = index.augment_query(queries)
    assert augq.shape == (20, cands.shape[1] + 1) and (augq[:, -1] == 0).all()
    np.testing.assert_allclose(augq @ aug.T, queries @ cands.T, rtol=1e-5, atol=1e-5)
    assert index.augment_query(queries[0]).shape == (1, cands.shape[1] + 1)  # one vector works too


def test_angle_order_on_augmented_vectors_is_dot_order():
    cands, queries = _vectors(), _vectors(20, seed=1)
    aug, _ = index.augment_candidates(cands)
    for q, augq in zip(queries, index.augment_query(queries)):
        by_dot = np.argsort(-(cands @ q), kind="stable")
        by_angle = np.argsort(_angles(aug.astype(np.float64), augq.astype(np.float64)), kind="stable")
        np.testing.assert_array_equal(by_angle, by_dot)
        # ...while plain cosine on the raw vectors would rank differently (the test has teeth).
        assert not np.array_equal(np.argsort(_angles(cands, q)), by_dot)


# --------------------------------------------------------------------------- exact search, recall
def test_exact_top_k_best_first_with_exclusions():
    scores = np.array([0.5, 3.0, -1.0, 2.0, 7.0, 2.5])
    assert index.exact_top_k(scores, 3).tolist() == [4, 1, 5]
    assert index.exact_top_k(scores, 3, exclude=np.array([4, 5])).tolist() == [1, 3, 0]
    assert index.exact_top_k(scores, 100, exclude=np.array([0, 1])).tolist() == [4, 5, 3, 2]
    assert index.exact_top_k(scores, 2, exclude=np.arange(6)).tolist() == []
    assert index.exact_top_k(scores, 2, exclude=np.array([], int)).tolist() == [4, 1]
    assert scores.tolist() == [0.5, 3.0, -1.0, 2.0, 7.0, 2.5]  # the caller's array is untouched


def test_exact_top_k_matches_a_full_sort():
    scores = np.random.default_rng(3).normal(size=500)
    banned = np.arange(0, 500, 7)
    ref = [i for i in np.argsort(-scores) if i not in set(banned)][:25]
    assert index.exact_top_k(scores, 25, banned).tolist() == ref


def test_recall_by_hand():
    exact = [np.array([1, 2, 3, 4]), np.array([5, 6])]
    assert index.recall([[1, 2, 9, 8], [6, 5]], exact) == pytest.approx((2 / 4 + 2 / 2) / 2)
    assert index.recall([[4, 3, 2, 1]], [np.array([1, 2, 3, 4])]) == 1.0  # order does not matter
    assert index.recall([[7]], [np.array([1])]) == 0.0
    assert index.recall([[1]], [np.array([1, 2])]) == 0.5  # a short answer is penalised


# --------------------------------------------------------------------------- build, publish, load
def test_build_publishes_the_index_with_its_meta(tmp_path):
    cands = _vectors(50)
    final = index.build(tmp_path, cands, _ids(50), n_trees=7, search_k=321)
    assert final == tmp_path / "index"
    assert sorted(p.name for p in final.iterdir()) == ["meta.json", "movies.ann", "users.ann"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]  # no temp folders left behind
    meta = json.loads((final / "meta.json").read_text())
    assert meta["movie_ids"] == _ids(50)
    assert meta["n_trees"] == 7 and meta["search_k"] == 321 and meta["dim"] == 16
    assert index.exists(tmp_path)

    loaded = index.load(tmp_path)
    assert loaded.meta == meta and loaded.search_k == 321
    assert loaded.users.get_n_items() == loaded.movies.get_n_items() == 50
    assert loaded.users.f == 17 and loaded.movies.f == 16  # users carries the extra coordinate
    np.testing.assert_allclose(loaded.movies.get_item_vector(3), cands[3], rtol=1e-6)


def test_load_maps_a_private_copy_so_later_damage_cannot_reach_it(tmp_path):
    index.build(tmp_path, _vectors(50), _ids(50))
    loaded = index.load(tmp_path)
    with open(f"/proc/{os.getpid()}/maps") as maps:
        mapped = maps.read()
    assert str(tmp_path / "index" / "users.ann") not in mapped and "recsys-annoy-" in mapped
    (tmp_path / "index" / "users.ann").write_bytes(b"")  # truncated under a live index
    assert len(loaded.user_neighbours(_vectors(1, seed=3)[0], 5)) == 5


def test_builds_are_deterministic(tmp_path):
    cands, queries = _vectors(), _vectors(10, seed=1)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()  # a build never creates its run's folder
    a, b = index.build(tmp_path / "a", cands, _ids(300)), index.build(tmp_path / "b", cands, _ids(300))
    for name in ("users.ann", "movies.ann", "meta.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ia, ib = index.load(tmp_path / "a"), index.load(tmp_path / "b")
    for q in queries:
        assert ia.user_neighbours(q, 10) == ib.user_neighbours(q, 10)
    for r in range(0, 300, 17):
        assert ia.movie_neighbours(r, 10) == ib.movie_neighbours(r, 10)


def test_rebuild_replaces_the_index(tmp_path):
    index.build(tmp_path, _vectors(40), _ids(40), n_trees=3)
    index.build(tmp_path, _vectors(60, seed=5), _ids(60), n_trees=4)
    loaded = index.load(tmp_path)
    assert loaded.meta["n_trees"] == 4 and loaded.meta["movie_ids"] == _ids(60)
    assert loaded.users.get_n_items() == 60
    assert [p.name for p in tmp_path.iterdir()] == ["index"]


def test_a_failed_rebuild_keeps_the_old_index_and_leaves_no_temp_folder(tmp_path, monkeypatch):
    index.build(tmp_path, _vectors(40), _ids(40), n_trees=3)
    before = {p.name: p.read_bytes() for p in (tmp_path / "index").iterdir()}

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(index, "build_annoy", boom)
    with pytest.raises(RuntimeError):
        index.build(tmp_path, _vectors(60, seed=5), _ids(60))
    assert {p.name: p.read_bytes() for p in (tmp_path / "index").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["index"]
    assert index.load(tmp_path).meta["movie_ids"] == _ids(40)


def test_concurrent_builds_in_one_process_all_succeed(tmp_path):
    """Streamlit serves sessions from threads of one process; two may build the same index."""
    cands, errors = _vectors(1500, 32), []

    def go():
        try:
            index.build(tmp_path, cands, _ids(1500))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(repr(exc))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["index"]
    assert index.load(tmp_path).users.get_n_items() == 1500


def test_load_without_an_index_is_a_user_error(tmp_path):
    run_folder = tmp_path / "abc123"
    run_folder.mkdir()
    assert not index.exists(run_folder)
    with pytest.raises(UserError, match=r"run abc123 has no index.*python -m recsys index --run abc123"):
        index.load(run_folder)
    index.build(run_folder, _vectors(20), _ids(20))
    shutil.rmtree(run_folder / "index")
    with pytest.raises(UserError, match="has no index"):
        index.load(run_folder)


def test_an_index_folder_without_meta_is_not_an_index(tmp_path):
    index.build(tmp_path, _vectors(20), _ids(20))
    (tmp_path / "index" / "meta.json").unlink()
    assert not index.exists(tmp_path)
    with pytest.raises(UserError, match="has no index"):
        index.load(tmp_path)


# --------------------------------------------------------------------------- queries and measure
def test_neighbour_queries_find_the_exact_answer_on_small_data(tmp_path):
    cands, queries = _vectors(), _vectors(10, seed=1)
    loaded = index.load(index.build(tmp_path, cands, _ids(300), search_k=100_000).parent)
    for q in queries:
        assert loaded.user_neighbours(q, 10) == index.exact_top_k(cands @ q, 10).tolist()
    unit = cands / np.linalg.norm(cands, axis=1, keepdims=True)
    for r in range(0, 300, 13):
        got = loaded.movie_neighbours(r, 10)
        assert r not in got and len(got) == 10
        assert got == index.exact_top_k(unit @ unit[r], 10, exclude=np.array([r])).tolist()


def test_measure_reports_recall_and_latency_for_users_and_movies(tmp_path):
    cands, queries = _vectors(), _vectors(25, seed=1)
    loaded = index.load(index.build(tmp_path, cands, _ids(300), search_k=100_000).parent)
    out = index.measure(loaded, queries, cands)
    assert set(out) == {"users", "movies"}
    for part in out.values():
        assert set(part) == {"recall_at_10", "p50_ms", "p95_ms"}
        assert part["recall_at_10"] == 1.0  # search_k covers every node
        assert 0 <= part["p50_ms"] <= part["p95_ms"]
    assert set(index.measure(loaded, queries, cands, k=5)["users"]) == {"recall_at_5", "p50_ms", "p95_ms"}


def test_measure_notices_a_poor_index(tmp_path):
    cands, queries = _vectors(1000), _vectors(25, seed=1)
    poor = index.load(index.build(tmp_path, cands, _ids(1000), n_trees=1, search_k=1).parent)
    out = index.measure(poor, queries, cands)
    assert out["users"]["recall_at_10"] < 1.0 and out["movies"]["recall_at_10"] < 1.0


def test_the_run_store_layout_is_what_recommender_reads(tiny_run):
    """train() builds the index beside the run, keyed by the run's movie ids."""
    prep, run = tiny_run
    assert index.exists(run.path)
    loaded = index.load(run.path)
    assert loaded.meta["movie_ids"] == list(prep.spec.movie_ids)
    assert loaded.meta["n_trees"] == index.N_TREES and loaded.search_k == index.SEARCH_K
