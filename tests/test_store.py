"""The run store's building blocks: ids, scanning, publishing, deleting, weights by name, processes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fakes
from recsys import fsutil, paths, runs
from recsys.config import RunConfig
from recsys.errors import UserError


def _finished(config: RunConfig = RunConfig()) -> str:
    rid = fakes.fake_run_id(config)
    with runs.claim(rid) as folder:
        fakes.write_run(folder, rid, config)
        runs.finish(rid)
    return rid


@pytest.mark.parametrize("text", ["", "abc", "0123456789AB", "../0123456789", "/tmp/0123456789ab", None, 12])
def test_a_run_id_is_twelve_hex_digits_and_nothing_else(text):
    with pytest.raises(UserError, match="is not a run id"):
        runs.check_run_id(text)
    assert runs.check_run_id("0123456789ab") == "0123456789ab"


def test_scan_sorts_readable_runs_from_damaged_folders_and_skips_the_rest():
    good = _finished()
    root = paths.runs_dir()
    (root / "0000000000aa").mkdir()  # no files at all
    (root / f"{good}.partial").mkdir()  # training
    (root / ".queue").mkdir()  # the queue's files
    (root / "notes.txt").write_text("a file, not a run")
    found, damaged = runs.scan()
    assert [r.run_id for r in found] == [good]
    assert [(d.name, d.reason.split(":")[0]) for d in damaged] == [("0000000000aa", "incomplete")]


def test_finish_keeps_a_good_run_and_replaces_anything_else():
    rid = _finished()
    before = (runs.run_path(rid) / "weights.npz").stat().st_mtime_ns
    with runs.claim(rid) as folder:  # a second finish of the same config: the first stands
        fakes.write_run(folder, rid, RunConfig())
        runs.finish(rid)
    assert (runs.run_path(rid) / "weights.npz").stat().st_mtime_ns == before
    assert not runs.partial_path(rid).exists()
    (runs.run_path(rid) / "metrics.json").write_text("{")  # now damaged: the next finish replaces it
    with runs.claim(rid) as folder:
        fakes.write_run(folder, rid, RunConfig())
        runs.finish(rid)
    assert runs.find(rid) is not None


def test_delete_accepts_only_names_the_scan_lists():
    rid = _finished()
    outside = paths.artifacts_dir() / "keep-me"
    outside.mkdir()
    for name in ("../keep-me", str(outside), "0000000000aa", ".queue"):
        with pytest.raises(UserError):
            runs.delete(name)
    assert outside.exists()
    runs.delete(rid)
    assert not runs.run_path(rid).exists() and not list(paths.runs_dir().glob(".trash-*"))


def test_claim_clears_a_dead_trainers_leftovers_but_not_a_live_trainers():
    rid = "0123456789ab"
    runs.partial_path(rid).mkdir(parents=True)
    (runs.partial_path(rid) / "half-written").write_text("x")
    with runs.claim(rid) as folder:
        assert [p.name for p in folder.iterdir()] == ["pid"]
        assert not runs.abandon(rid)  # we train it: not removed
        assert folder.exists()
    assert runs.abandon(rid) and not runs.partial_path(rid).exists()


def test_weights_are_stored_by_path_the_same_in_every_process(tiny_run):
    """Keras names layers by a per-process counter; the stored keys must not depend on it."""
    from recsys.checkpoint import build_model, variables_by_path

    prep, run = tiny_run
    first = sorted(variables_by_path(build_model(prep, run.config)))
    second = sorted(variables_by_path(build_model(prep, run.config)))  # dense_12... in Keras's names
    assert first == second
    with np.load(run.path / "weights.npz") as stored:
        assert sorted(stored.files) == first
    assert not any("optimizer" in k for k in first)


def test_a_process_is_its_pid_and_its_start_time():
    me = fsutil.ProcessId.me()
    assert me.alive() and fsutil.ProcessId.from_dict(me.to_dict()) == me
    assert not fsutil.ProcessId(me.pid, me.start + 1).alive()  # the same pid, another process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    gone = fsutil.ProcessId.of(child.pid)
    child.wait()
    assert not gone.alive() and fsutil.ProcessId.from_dict({"pid": "x"}) is None


def test_a_lock_is_released_when_its_holder_is_killed(tmp_path):
    lock = tmp_path / "held.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r); from recsys import fsutil; "
        "fsutil.open_lock(%r); print('held', flush=True); time.sleep(60)") % (str(paths.ROOT), str(lock))],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert fsutil.is_locked(lock)
    holder.kill()
    holder.wait()
    os.close(fsutil.open_lock_within(lock, 10))  # free again, with no stale-pid logic


def test_remove_tree_of_a_symlink_removes_only_the_link(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "file").write_text("x")
    (tmp_path / "link").symlink_to(target)
    fsutil.remove_tree(tmp_path / "link")
    assert not (tmp_path / "link").exists() and (target / "file").exists()
    fsutil.remove_tree(target)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    shutil.rmtree(tmp_path, ignore_errors=True)
