"""Fault injection: the cases of issue #10, each reproduced and its outcome asserted.

Every case must end in a one-line error, a recovery, or a clearly marked damaged run;
never a traceback, a dead process or a lost job. (Cases 3, 6, 10, 11 and 18 at the
queue are in test_queue.py; 12-14 are the data loader's.)
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import synthetic
from recsys import catalog, fsutil, index, paths, presets, runs
from recsys.cli import main
from recsys.config import RunConfig, run_id
from recsys.errors import UserError
from tiny import TINY_CONFIG

ROOT = paths.ROOT
DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import synthetic
from recsys import data
data.ML100K = synthetic.EXPECTED  # the tiny run's synthetic data passes the count check
from recsys.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def store(tiny_run, tmp_path, monkeypatch):
    """A private copy of the tiny run store; returns the tiny run's id."""
    _, run = tiny_run
    root = tmp_path / "store"
    shutil.copytree(run.path, root / "runs" / run.run_id)
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(root))
    monkeypatch.syspath_prepend(str(ROOT))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield run.run_id
    st.cache_data.clear()
    st.cache_resource.clear()


def _copy(src: str, dst: str) -> Path:
    """A second run: a copy of `src` under id `dst` (its config names its own id)."""
    shutil.copytree(runs.run_path(src), runs.run_path(dst))
    config = runs.run_path(dst) / "config.json"
    config.write_text(config.read_text().replace(src, dst))
    return runs.run_path(dst)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in its own process, on the tiny data: a crash can't take pytest with it."""
    driver = DRIVER.format(tests=os.path.dirname(__file__))
    return subprocess.run([sys.executable, "-c", driver, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)


def _one_line_error(out, message: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr


def _cli_in_process(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _page(name: str | None, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if name:
        at.switch_page(name)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(elements) -> str:
    """The elements' text as a reader sees it (Markdown escapes removed)."""
    return "\n".join(str(e.value) for e in elements).replace("\\", "")


PAGES = [None, "app_pages/train.py", "app_pages/compare.py", "app_pages/recommend.py", "app_pages/map.py",
         "app_pages/search.py"]


# --------------------------------------------------------------------------- 1 and 7: damaged index files
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


INDEX_DAMAGE = {
    "users.ann truncated to half": lambda f: _truncate(f / "users.ann"),
    "users.ann random bytes": lambda f: _random_bytes(f / "users.ann"),
    "movies.ann missing": lambda f: (f / "movies.ann").unlink(),
    "meta.json garbled": lambda f: (f / "meta.json").write_text("{not json"),
    "meta.json of another shape": lambda f: (f / "meta.json").write_text(json.dumps({"dim": 3})),
}


@pytest.mark.parametrize("damage", INDEX_DAMAGE)
def test_a_damaged_index_is_rebuilt_by_the_cli_never_loaded(store, damage):
    X = _copy(store, "0000000000aa")
    INDEX_DAMAGE[damage](X / "index")
    out = _cli("search", "batman", "--run", X.name, "--json")
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])  # not SIGSEGV (-11) or SIGABRT (-6)
    assert len(json.loads(out.stdout)["neighbours"]) == 10
    index.verify(X)  # rebuilt, and whole


@pytest.mark.parametrize("damage", ["users.ann truncated to half", "users.ann random bytes"])
def test_a_damaged_index_does_not_kill_the_recommend_page(store, damage):
    X = _copy(store, "0000000000aa")
    INDEX_DAMAGE[damage](X / "index")
    at = _page("app_pages/recommend.py", run=X.name)
    assert len(at.dataframe) == 5 and "Annoy recall" in _texts(at.metric) + str([m.label for m in at.metric])
    index.verify(X)


# --------------------------------------------------------------------------- 2: one unreadable run
RUN_DAMAGE = {
    "metrics.json truncated": (lambda f: _truncate(f / "metrics.json"), "metrics.json is not valid JSON"),
    "history.json empty": (lambda f: (f / "history.json").write_text(""), "history.json is empty"),
    "config.json garbled": (lambda f: (f / "config.json").write_bytes(b"\x00\xffgarbage"), "config.json"),
    "unknown key in the config": (
        lambda f: (f / "config.json").write_text(json.dumps(
            {**json.loads((f / "config.json").read_text()),
             "config": {**json.loads((f / "config.json").read_text())["config"], "colour": "red"}})),
        "unknown field(s): colour"),
    "weights.npz truncated": (lambda f: _truncate(f / "weights.npz"), "weights.npz has"),
}


def _stray(root: Path) -> Path:
    folder = root / "0000000000bb"
    folder.mkdir()
    for name in runs.FILES:
        (folder / name).write_text("")
    return folder


@pytest.mark.parametrize("damage", RUN_DAMAGE)
def test_one_unreadable_run_breaks_no_listing_and_no_page(store, damage, capsys):
    X = _copy(store, "0000000000aa")
    hurt, reason = RUN_DAMAGE[damage]
    hurt(X)
    code, out, err = _cli_in_process(capsys, "runs", "--json")
    assert code == 0, err
    listed = {r["run_id"]: r for r in json.loads(out)}
    assert reason in listed[X.name]["damaged"] and "damaged" not in listed[store]
    for name in PAGES:
        _page(name, run=X.name)  # no traceback on any page, even asked for the damaged run
    at = _page("app_pages/compare.py")
    assert "Damaged runs" in _texts(at.subheader) and reason in _texts(at.markdown)


def test_a_stray_folder_is_damaged_and_deleted_from_the_compare_page(store, capsys):
    stray = _stray(paths.runs_dir())
    code, out, _ = _cli_in_process(capsys, "runs", "--json")
    assert code == 0 and {"run_id": stray.name, "damaged": "config.json is empty"} in json.loads(out)
    at = _page("app_pages/compare.py")
    at.checkbox(key=f"confirm_delete_damaged_{stray.name}").check().run()
    next(b for b in at.button if b.key == f"delete_damaged_{stray.name}").click().run()
    assert not at.exception and not stray.exists() and runs.is_finished(store)


def test_a_damaged_run_is_deleted_from_the_cli(store, capsys):
    stray = _stray(paths.runs_dir())
    assert _cli_in_process(capsys, "delete", stray.name)[0] == 0
    assert not stray.exists() and runs.scan()[1] == []
    code, _, err = _cli_in_process(capsys, "delete", "../../etc")
    assert code == 2 and "is not a run id" in err


# --------------------------------------------------------------------------- 3: atomic writes
def test_concurrent_writers_of_one_file_never_collide(tmp_path):
    errors, target = [], tmp_path / ".job.json"

    def write(i: int) -> None:
        try:
            for j in range(50):
                fsutil.write_json(target, {"writer": i, "n": j})
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(repr(exc))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and json.loads(target.read_text())["n"] == 49
    assert [p.name for p in tmp_path.iterdir()] == [".job.json"]  # no temporary file left


# --------------------------------------------------------------------------- 4: incomplete final folders
def test_an_incomplete_run_folder_is_replaced_when_its_config_trains_again(tiny_run, tmp_path, monkeypatch):
    prep, run = tiny_run
    root = tmp_path / "store"
    shutil.copytree(run.path, root / "runs" / run.run_id)
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(root))
    (runs.run_path(run.run_id) / "weights.npz").unlink()
    assert runs.scan()[1][0].reason == "incomplete: weights.npz missing"
    from recsys.train import train

    result = train(TINY_CONFIG, prep=prep)
    assert not result.cached and runs.find(run.run_id) is not None  # kept, not thrown away


def test_an_index_build_never_recreates_a_deleted_run(store):
    X = _copy(store, "0000000000aa")
    candidates = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    runs.delete(X.name)
    with pytest.raises(UserError, match="is not stored any more"):
        index.build(X, candidates, [str(i) for i in range(30)])
    assert not X.exists() and runs.scan() == (runs.scan()[0], [])


# --------------------------------------------------------------------------- 5: divergence
def test_a_diverging_config_ends_in_one_line_and_leaves_nothing(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path / "fresh"))
    code, _, err = _cli_in_process(capsys, "train", "--rating-weight", "1e38", "--retrieval-weight", "1",
                                   "--epochs", "2", "--batch-size", "64", "--json")
    assert code == 2 and err.strip() == ("error: the loss diverged at epoch 1; lower the learning rate "
                                         "(or the loss weights)")
    assert not list(paths.runs_dir().glob("*.partial")) and runs.scan() == ([], [])


# --------------------------------------------------------------------------- 6: limits
def test_the_cli_refuses_a_config_over_the_time_limit(tiny_run, capsys):
    code, _, err = _cli_in_process(capsys, "train", "--rating-weight", "1", "--retrieval-weight", "1",
                                   "--preset", "seed", "--epochs", "1000")
    assert code == 2 and "over the limit of 15 min" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- 7: damaged weights
def test_truncated_weights_are_a_one_line_error_in_the_cli_and_a_warning_on_the_page(store, capsys):
    X = _copy(store, "0000000000aa")
    (X / "weights.npz").write_bytes(np.random.default_rng(1).bytes((X / "weights.npz").stat().st_size))
    code, _, err = _cli_in_process(capsys, "recommend", "--user", "1", "--run", X.name)
    assert code == 2 and "is damaged: weights.npz does not match its checksum" in err
    at = _page("app_pages/recommend.py", run=X.name)
    assert "weights.npz does not match its checksum" in _texts(at.warning)


def test_weights_of_the_wrong_shape_are_refused_with_one_line(store, capsys):
    X = _copy(store, "0000000000aa")
    with np.load(X / "weights.npz") as w:
        arrays = {k: w[k] for k in w.files}
    first = sorted(arrays)[0]
    arrays[first] = np.zeros((2, 2), np.float32)
    np.savez(X / "weights.npz", **arrays)
    config = json.loads((X / "config.json").read_text())
    config["weights"] = {"format": "named", **fsutil.file_record(X / "weights.npz")}  # checksum fits
    (X / "config.json").write_text(json.dumps(config))
    code, _, err = _cli_in_process(capsys, "recommend", "--user", "1", "--run", X.name)
    assert code == 2 and "does not fit this version's model" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- 8, 9, 17: CLI arguments
@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "seed must be a whole number from 0 to 2147483647, got -1"),
    (["--split-seed", "1099511627776"], "split seed must be a whole number from 0"),
])
def test_seeds_out_of_range_are_one_line_errors(args, message, capsys):
    code, _, err = _cli_in_process(capsys, "train", "--rating-weight", "1", "--retrieval-weight", "1", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("run", ["/tmp/elsewhere/0000000000aa", "../../0000000000aa", "0000000000AA", "x" * 200])
def test_run_is_an_id_never_a_path(store, tmp_path, run, capsys):
    elsewhere = tmp_path / "elsewhere" / "0000000000aa"
    shutil.copytree(runs.run_path(store), elsewhere)
    for command in (["index", "--json"], ["recommend", "--user", "1"], ["search", "batman"]):
        code, _, err = _cli_in_process(capsys, *command, "--run", run)
        assert code == 2 and "is not a run id" in err and len(err.strip().splitlines()) == 1
    assert len(str(err)) < 300


def test_minus_zero_and_zero_are_one_run():
    assert run_id(RunConfig(rating_weight=-0.0), "fp") == run_id(RunConfig(rating_weight=0.0), "fp")
    assert run_id(RunConfig(retrieval_weight=-0.0), "fp") == run_id(RunConfig(retrieval_weight=0), "fp")


# --------------------------------------------------------------------------- 10: the claim race
def test_two_claims_at_the_same_instant_one_wins_the_other_gets_a_user_error(tmp_path):
    for trial in range(20):
        rid = f"{trial:012x}"
        barrier, outcomes = threading.Barrier(2), []
        hold = threading.Event()

        def claim() -> None:
            barrier.wait()
            try:
                with runs.claim(rid, wait=False):
                    outcomes.append("won")
                    hold.wait(5)
            except UserError as exc:
                outcomes.append(str(exc))
                hold.set()
            except Exception as exc:  # noqa: BLE001 - FileExistsError was the bug
                outcomes.append(repr(exc))
                hold.set()

        threads = [threading.Thread(target=claim) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == sorted(["won", f"run {rid} is already being trained by another process"])


# --------------------------------------------------------------------------- 15, 16: deleting runs
def test_a_forged_click_on_the_disabled_delete_button_deletes_nothing(store):
    X = _copy(store, "0000000000aa")
    at = _page("app_pages/compare.py", run=store)
    at.selectbox(key="manage_run").set_value(X.name).run()
    button = next(b for b in at.button if b.label == "Delete run")
    assert button.disabled
    button.click().run()  # the browser would not send it; a forged request does
    assert not at.exception and runs.is_finished(X.name)
    assert "nothing was deleted" in _texts(at.warning)


def test_deleting_a_symlinked_run_removes_the_link_not_its_target(store, tmp_path):
    target = tmp_path / "elsewhere" / "0000000000aa"
    shutil.copytree(runs.run_path(store), target)
    (target / "config.json").write_text((target / "config.json").read_text().replace(store, target.name))
    (paths.runs_dir() / target.name).symlink_to(target)
    at = _page("app_pages/compare.py", run=store)
    at.selectbox(key="manage_run").set_value(target.name).run()
    at.checkbox(key=f"confirm_delete_{target.name}").check().run()
    next(b for b in at.button if b.label == "Delete run").click().run()
    assert not at.exception and not (paths.runs_dir() / target.name).exists()
    assert (target / "weights.npz").exists()  # only the link went


# --------------------------------------------------------------------------- 19: Markdown from folder names
def test_a_folder_named_with_a_backtick_is_shown_literally_and_marked_damaged(store):
    odd = paths.runs_dir() / "a`b **c**"
    shutil.copytree(runs.run_path(store), odd)
    assert [d.reason for d in runs.scan()[1]] == ["the folder name is not a run id"]
    home = _page(None)
    assert "`" not in _texts(home.markdown).replace(f"`{store}`", "")  # nothing of the folder name leaks
    at = _page("app_pages/compare.py")
    shown = "\n".join(str(m.value) for m in at.markdown)
    assert r"a\`b \*\*c\*\*" in shown  # escaped: the backtick and stars are shown, not obeyed


# --------------------------------------------------------------------------- self-describing runs
def test_a_preset_change_does_not_break_older_runs(store, monkeypatch):
    from recsys.recommend import open_run

    before = open_run(store).recommend("1", k=5)
    changed = replace(presets.PRESETS["default"], tower_layers=(16, 8), embedding_dim=4)
    monkeypatch.setitem(presets.PRESETS, "default", changed)
    after = open_run(store).recommend("1", k=5)  # rebuilt from the run's own stored preset
    assert list(after.movie_id) == list(before.movie_id)


def test_a_run_made_with_a_preset_built_at_run_time_reopens_elsewhere(tiny_run, tmp_path, monkeypatch):
    from recsys.recommend import Recommender
    from recsys.train import train

    prep, _ = tiny_run
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path / "bench"))
    monkeypatch.setitem(presets.PRESETS, "bench-only", replace(presets.PRESETS["default"], tower_layers=(32,)))
    result = train(replace(TINY_CONFIG, preset="bench-only"), prep=prep)
    monkeypatch.delitem(presets.PRESETS, "bench-only")  # another process never had it
    run = runs.load(result.run.run_id)
    assert run.older is None and run.preset.tower_layers == (32,)
    assert len(Recommender(run, prep).recommend("1", k=3)) == 3


def _to_positional(folder: Path) -> None:
    """Rewrite a run as the previous format stored it: weights by position, no checksums."""
    from recsys.checkpoint import load_model
    from recsys.prepare import prepare

    run = runs.load(folder.name)
    model = load_model(run, prepare(None, run.config.split_seed))
    np.savez(folder / "weights.npz", **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    config = json.loads((folder / "config.json").read_text())
    for key in ("format", "model_version", "weights"):
        config.pop(key)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_run_of_the_previous_format_reopens_or_is_shown_as_older(store, monkeypatch, capsys):
    from recsys.recommend import open_run

    _to_positional(runs.run_path(store))
    assert runs.load(store).older is None  # same id under this code: its positional weights fit
    assert len(open_run(store).recommend("1", k=3)) == 3

    monkeypatch.setitem(presets.PRESETS, "default", replace(presets.PRESETS["default"], tower_layers=(16, 8)))
    old = runs.load(store)
    assert old.older and "by position" in old.older
    code, _, err = _cli_in_process(capsys, "recommend", "--user", "1", "--run", store)
    assert code == 2 and "made by an older version" in err
    assert [s["run_id"] for s in catalog.run_summaries()] == [store]  # its metrics are still listed
    at = _page("app_pages/recommend.py", run=store)
    assert "made by an older version" in _texts(at.warning)
    at = _page("app_pages/compare.py", run=store)
    assert "Made by an older version" in _texts(at.caption)
    at.checkbox(key=f"confirm_delete_{store}").check().run()
    next(b for b in at.button if b.label == "Delete run").click().run()
    assert not runs.run_path(store).exists()


# --------------------------------------------------------------------------- the favicon
def test_the_server_serves_its_favicon_without_a_traceback(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    env = {**os.environ, "RECSYS_ARTIFACTS": str(tmp_path / "artifacts")}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                 "--server.headless", "true"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, status = time.time() + 60, None
        while time.time() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2):
                    pass
                for encoding in ("gzip", "identity"):
                    request = urllib.request.Request(f"http://localhost:{port}/favicon.png",
                                                     headers={"Accept-Encoding": encoding})
                    with urllib.request.urlopen(request, timeout=5) as r:
                        status = r.status
            except OSError as exc:
                if getattr(exc, "code", None):  # an HTTP error status: the bug
                    status = exc.code
                time.sleep(0.3)
        assert status == 200
        time.sleep(0.5)
        assert "Traceback" not in log.read_text()
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)
