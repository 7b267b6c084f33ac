"""The Streamlit pages, driven in-process by AppTest on the tiny trained run."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, replace

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from recsys import catalog, jobs, paths, runs
from recsys.config import RunConfig
from tiny import TINY_CONFIG

ROOT = paths.ROOT
PAGES = {"Home": None, "Train": "pages/1_Train.py", "Compare": "pages/2_Compare.py",
         "Recommend": "pages/3_Recommend.py", "Search": "pages/4_Search.py"}
COPY_ID = "feedbeef0000"  # a second stored run: a copy of the tiny one under another id


@pytest.fixture(autouse=True)
def fresh_app(monkeypatch):
    """The pages import `ui` from the project root; no test sees another's cached data or model."""
    monkeypatch.syspath_prepend(str(ROOT))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(name: str, **query: str) -> AppTest:
    """Run one page of the app, with `query` as the URL's query parameters."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if PAGES[name]:
        at.switch_page(PAGES[name])
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    """Every body of some elements (markdown, captions, alerts), as one string."""
    return "\n".join(str(e.value) for e in elements)


def links(at: AppTest, where=None) -> dict[str, str]:
    """Page links as {label: page url path}."""
    return {e.proto.label: e.proto.page for e in (where or at).get("page_link")}


def charts(at: AppTest) -> list[dict]:
    """The Vega-Lite specs of the page's charts."""
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


@pytest.fixture
def store(tiny_run, tmp_path, monkeypatch):
    """A writable copy of the tiny run store holding two runs: the tiny run and a copy of it."""
    _, run = tiny_run
    root = tmp_path / "store"
    shutil.copytree(paths.runs_dir(), root / "runs")
    shutil.copytree(root / "runs" / run.run_id, root / "runs" / COPY_ID)
    config = root / "runs" / COPY_ID / "config.json"
    config.write_text(config.read_text().replace(run.run_id, COPY_ID))  # a run names its own id
    old = (root / "runs" / run.run_id / "metrics.json").stat().st_mtime - 3600
    os.utime(root / "runs" / COPY_ID / "metrics.json", (old, old))  # the copy is the older run
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(root))
    return run.run_id


@pytest.fixture
def empty_store(tiny_run, tmp_path, monkeypatch):
    """The tiny data, but a fresh artifacts folder: no run was ever trained."""
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path / "empty"))


# --------------------------------------------------------------------------- every page
def test_sidebar_lists_the_five_pages_by_name(tiny_run):
    at = open_page("Compare")
    assert list(links(at, at.sidebar)) == ["Home", "Train", "Compare", "Recommend", "Search"]
    assert list(links(at, at.sidebar).values()) == ["", "Train", "Compare", "Recommend", "Search"]


@pytest.mark.parametrize("name", PAGES)
def test_without_a_run_every_page_says_so_and_links_to_train(empty_store, name):
    at = open_page(name)
    assert "No trained run yet" in texts(at.info)
    if name != "Train":  # the Train page is where the link goes
        assert links(at, at.main).get("Go to Train") == "Train"
    assert "run" not in at.query_params


@pytest.mark.parametrize("name", PAGES)
def test_the_current_run_comes_from_the_url_and_falls_back_when_unknown(store, name):
    at = open_page(name, run=COPY_ID)
    assert at.query_params["run"] == [COPY_ID]
    assert COPY_ID[:6] in texts(at.sidebar.markdown)
    at = open_page(name, run="no-such-run")
    assert at.query_params["run"] == [store]  # no default run: the newest one
    assert store[:6] in texts(at.sidebar.markdown)


def test_without_a_run_in_the_url_the_default_run_wins_over_newer_ones(store):
    default = catalog.default_run_id()
    shutil.copytree(runs.run_path(COPY_ID), runs.run_path(default))  # as old as the copy
    config = runs.run_path(default) / "config.json"
    config.write_text(config.read_text().replace(COPY_ID, default))
    assert open_page("Home").query_params["run"] == [default]
    shutil.rmtree(runs.run_path(default))
    assert open_page("Home").query_params["run"] == [store]


def _link_query(at: AppTest, label: str) -> str:
    return next(e for e in at.sidebar.get("page_link") if e.proto.label == label).proto.query_string


def test_page_links_carry_the_run_user_and_word(store):
    at = open_page("Recommend", run=store, user="7")
    assert "run=" + store in _link_query(at, "Search") and "user=7" in _link_query(at, "Search")
    at.selectbox(key="user").set_value("9").run()
    assert "user=9" in _link_query(at, "Search")  # the user chosen in this very run
    at.switch_page(PAGES["Search"]).run()
    at.text_input(key="word").input("batman").run()
    assert "user=9" in _link_query(at, "Recommend") and "word=batman" in _link_query(at, "Recommend")


# --------------------------------------------------------------------------- home
def test_home_shows_the_data_in_numbers_and_the_current_run(tiny_run):
    _, run = tiny_run
    at = open_page("Home")
    numbers = {m.label: m.value for m in at.metric}
    assert (numbers["Ratings"], numbers["Users"], numbers["Movies"]) == ("600", "40", "30")
    assert numbers["Test RMSE"] == f"{run.metrics['rmse']:.3f}"
    assert run.run_id in texts(at.markdown)
    assert len(charts(at)) == 1  # the rating histogram
    assert [label.split(":")[0] for label in links(at, at.main)] == [
        "**Train**", "**Compare**", "**Recommend**", "**Search**"]


# --------------------------------------------------------------------------- train
def _fill(at: AppTest, config: RunConfig) -> AppTest:
    at.slider(key="rating_weight").set_value(config.rating_weight)
    at.slider(key="retrieval_weight").set_value(config.retrieval_weight)
    at.number_input(key="epochs").set_value(config.epochs)
    at.number_input(key="batch_size").set_value(config.batch_size)
    at.selectbox(key="preset").set_value(config.preset)
    return at


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label.startswith(label))


def test_a_cached_config_shows_its_run_at_once_without_a_job(tiny_run, monkeypatch):
    _, run = tiny_run
    monkeypatch.setattr(jobs, "enqueue", lambda *a, **k: pytest.fail("a cached config was queued"))
    at = _fill(open_page("Train", run="no-such-run"), TINY_CONFIG)
    _button(at, "Train").click().run()
    assert not at.exception
    assert "Cached" in texts(at.success)
    assert {m.label: m.value for m in at.metric}["Test RMSE"] == f"{run.metrics['rmse']:.3f}"
    assert jobs.status().requests == []
    assert at.query_params["run"] == [run.run_id]


class FakeQueue:
    """Stands in for the queue: records what is enqueued; the first request trains, the rest wait."""

    def __init__(self, progress: dict | None = None):
        self.enqueued: list[list[RunConfig]] = []
        self.cancelled: list[str] = []
        self.requests: list[jobs.Request] = []
        self.progress = progress

    def enqueue(self, configs, session, data_path=None):
        self.enqueued.append(list(configs))
        batch = f"b{len(self.enqueued)}"
        new = [jobs.Request(id=f"{batch}-{i}", run_id=f"r{len(self.requests) + i}", config=asdict(c),
                            requesters=[session], enqueued=1000.0 + len(self.requests) + i, estimate_seconds=30.0,
                            batch=batch) for i, c in enumerate(configs)]
        self.requests += new
        return new

    def status(self):
        active = [r for r in self.requests if r.active]
        for i, r in enumerate(active):
            r.state = "running" if i == 0 else "queued"
            r.position = i
            r.progress = self.progress if i == 0 else None
        return jobs.QueueStatus([jobs.Request(**asdict(r)) for r in self.requests], True)

    def cancel(self, request_id, session):
        self.cancelled.append(request_id)
        r = next(r for r in self.requests if r.id == request_id)
        r.state = "cancelled"
        return r

    def history(self):
        running = next((r for r in self.requests if r.state == "running"), None)
        return [{**self.progress, "request": running.id}] if self.progress and running else []

    def end(self, state: str, run_id: str | None = None, error: str | None = None) -> None:
        """The running request ends."""
        r = next(r for r in self.requests if r.active)
        r.state, r.error, r.finished = state, error, 1030.0
        if run_id:
            r.run_id = run_id


@pytest.fixture
def fake_queue(monkeypatch):
    def make(progress: dict | None = None) -> FakeQueue:
        queue = FakeQueue(progress)
        for name in ("enqueue", "status", "cancel", "history"):
            monkeypatch.setattr(jobs, name, getattr(queue, name))
        return queue
    return make


EVENT = {"epoch": 1, "epochs": 2, "loss": 4.5, "rating_loss": 1.25, "retrieval_loss": 3.25, "val_rmse": 1.1,
         "val_top_100_accuracy": 0.5, "eta_seconds": 7.0}


def test_a_new_config_trains_in_the_background_with_live_progress(tiny_run, fake_queue):
    queue = fake_queue(EVENT)
    at = _fill(open_page("Train"), replace(TINY_CONFIG, epochs=3))
    _button(at, "Train").click().run()
    assert not at.exception
    assert queue.enqueued == [[replace(TINY_CONFIG, epochs=3)]]
    assert "Training in progress" in texts(at.subheader) and "another session" not in texts(at.subheader)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Rating loss"] == "1.2500" and shown["Retrieval loss"] == "3.2500" and shown["Time left"] == "7 s"
    assert "Epoch 1 of 2" in at.get("progress")[0].proto.text
    assert [c["title"] for c in charts(at)] == ["Total loss", "Rating loss", "Retrieval loss"]  # the curves so far
    assert "Training now" in texts(at.markdown)  # where this session's request stands


@pytest.mark.parametrize("label, weights", [("Rating only", (1.0, 0.0)), ("Retrieval only", (0.0, 1.0)),
                                            ("Joint", (1.0, 1.0))])
def test_one_click_sets_up_each_notebook_experiment(tiny_run, fake_queue, label, weights):
    queue = fake_queue()
    at = _fill(open_page("Train"), replace(TINY_CONFIG, rating_weight=0.3, retrieval_weight=0.6, epochs=3))
    _button(at, label).click().run()
    assert [(c.rating_weight, c.retrieval_weight, c.epochs) for c in queue.enqueued[0]] == [(*weights, 3)]
    assert (at.slider(key="rating_weight").value, at.slider(key="retrieval_weight").value) == weights
    assert "Loading the data" in at.get("progress")[0].proto.text  # no epoch finished yet


def test_the_sweep_queues_eleven_rating_weights_with_retrieval_weight_one(tiny_run, fake_queue):
    queue = fake_queue()
    at = _fill(open_page("Train"), TINY_CONFIG)
    _button(at, "Sweep").click().run()
    (configs,) = queue.enqueued
    assert [c.rating_weight for c in configs] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert {(c.retrieval_weight, c.epochs, c.batch_size) for c in configs} == {(1.0, 2, 64)}
    assert "Run 1 of 11" in texts(at.markdown)
    assert "Waiting: 10 in line" in texts(at.markdown)


def test_a_second_session_queues_behind_the_running_request(tiny_run, fake_queue):
    queue = fake_queue(EVENT)
    queue.enqueue([replace(TINY_CONFIG, epochs=5)], "another-session")
    at = _fill(open_page("Train"), replace(TINY_CONFIG, epochs=3))
    assert "requested in another session" in texts(at.subheader)
    _button(at, "Train").click().run()
    assert len(queue.enqueued) == 2  # queued, not refused
    assert "Next in line" in texts(at.markdown)


def test_the_requester_cancels_a_request(tiny_run, fake_queue):
    queue = fake_queue()
    at = _fill(open_page("Train"), replace(TINY_CONFIG, epochs=3))
    _button(at, "Train").click().run()
    _button(at, "Cancel").click().run()
    assert queue.cancelled == [queue.requests[0].id]
    assert not at.exception and "Cancelled" in texts(at.info)


def test_bad_weights_say_why_and_start_nothing(tiny_run, fake_queue):
    queue = fake_queue()
    at = _fill(open_page("Train"), replace(TINY_CONFIG, rating_weight=0.0, retrieval_weight=0.0, epochs=3))
    _button(at, "Train").click().run()
    assert not at.exception and queue.enqueued == []
    assert "At least one of the rating and retrieval weights must be above 0" in texts(at.warning)


def test_a_request_over_the_time_limit_is_refused_with_its_estimate(tiny_run, monkeypatch):
    monkeypatch.setattr(jobs, "_ensure_worker", lambda state: None)  # the real queue, no trainer
    at = open_page("Train")
    at.number_input(key="epochs").set_value(1000)
    at.selectbox(key="preset").set_value("seed")
    _button(at, "Train").click().run()
    assert not at.exception
    assert "over the limit of 15 min" in texts(at.warning)
    assert jobs.status().requests == []
    assert "trains for up to" in texts(at.caption)  # the estimate is on the page


def test_a_failed_request_shows_its_one_line_error(tiny_run, fake_queue):
    queue = fake_queue()
    at = _fill(open_page("Train"), replace(TINY_CONFIG, epochs=3))
    _button(at, "Train").click().run()
    queue.end("failed", error="the loss diverged at epoch 3; lower the learning rate")
    at.run()
    assert "Training failed: the loss diverged at epoch 3" in texts(at.error)
    assert not at.exception


def test_a_finished_request_shows_its_runs_metrics_and_becomes_current(tiny_run, fake_queue):
    _, run = tiny_run
    queue = fake_queue()
    at = _fill(open_page("Train", run="no-such-run"), replace(TINY_CONFIG, epochs=3))
    _button(at, "Train").click().run()
    queue.end("done", run_id=run.run_id)
    at.run()
    assert "Last training job" in texts(at.subheader)
    assert {m.label: m.value for m in at.metric}["Top-100 accuracy"] == f"{run.metrics['top_100_accuracy']:.1%}"
    assert at.query_params["run"] == [run.run_id]


# --------------------------------------------------------------------------- compare
def test_compare_draws_metrics_tradeoff_and_curves_with_the_baseline(store):
    at = open_page("Compare")
    specs = charts(at)
    titles = [s.get("title") or s["layer"][0].get("title") for s in specs]
    titles = [t["text"] if isinstance(t, dict) else t for t in titles]
    assert titles[:3] == ["Test RMSE (lower is better)", "Test top-k accuracy (higher is better)",
                          "Trade-off: rating error against retrieval accuracy"]
    assert len(specs) == 6  # plus three training curves
    with_baseline = [len(s["layer"]) for s in specs[:3]]
    table = at.dataframe[0].value
    assert {"Run", "Rating weight", "Retrieval weight", "Preset", "RMSE", "Top-100 accuracy"} <= set(table.columns)
    assert len(table) == 2

    at.toggle[0].set_value(False).run()
    assert [len(s["layer"]) for s in charts(at)[:3]] < with_baseline  # the reference lines are gone
    at.multiselect(key="compare_runs").set_value([COPY_ID]).run()
    assert len(at.dataframe[0].value) == 1
    at.multiselect(key="curves").set_value(["rating_loss"]).run()
    assert len(charts(at)) == 4


def test_compare_makes_a_run_current(store):
    at = open_page("Compare", run=store)
    at.selectbox(key="manage_run").set_value(COPY_ID).run()
    _button(at, "Make it the current run").click().run()
    assert at.query_params["run"] == [COPY_ID]
    assert "This is the current run" in texts(at.success)


def test_compare_deletes_a_run_only_after_confirmation(store):
    at = open_page("Compare", run=store)
    at.selectbox(key="manage_run").set_value(COPY_ID).run()
    assert _button(at, "Delete run").disabled
    at.checkbox(key=f"confirm_delete_{COPY_ID}").check().run()
    _button(at, "Delete run").click().run()
    assert not at.exception
    assert not runs.run_path(COPY_ID).exists() and runs.is_finished(store)
    assert len(at.dataframe[0].value) == 1


# --------------------------------------------------------------------------- recommend
def _titles(at: AppTest, which: int) -> list[str]:
    return list(at.dataframe[which].value["Title"])


def _rated_titles(prep, user: str) -> set[str]:
    """Titles the user rated, leaving out titles shared by two movie ids (the tables show titles)."""
    ml = prep.ml
    rated = ml.ratings[ml.ratings.user_id == user].movie_id
    unique = ml.movies[~ml.movies.movie_title.duplicated(keep=False)]
    return set(unique[unique.movie_id.isin(rated)].movie_title)


def test_recommend_shows_profile_and_exact_and_annoy_side_by_side(tiny_run):
    prep, _ = tiny_run
    at = open_page("Recommend", user="5")
    user = prep.ml.users.set_index("user_id").loc["5"]
    shown = {m.label: m.value for m in at.metric}
    assert shown["Age"] == str(int(user.raw_user_age)) and shown["Occupation"] == user.user_occupation_text
    assert shown["Ratings"] == str((prep.ml.ratings.user_id == "5").sum())
    # [0] is the highest-rated list, [1] the latest ratings the query starts from
    session = at.dataframe[1].value
    assert list(session.columns) == ["Movie id", "Title", "Stars"] and len(session) > 0
    assert set(session["Movie id"]) <= set(prep.ml.ratings[prep.ml.ratings.user_id == "5"].movie_id)
    exact, annoy = at.dataframe[2].value, at.dataframe[3].value
    assert len(exact) == len(annoy) == 10
    assert list(exact.columns) == ["Title", "Score", "Predicted rating", "Both"]
    assert list(exact.Both) == [t in set(annoy.Title) for t in exact.Title]
    assert shown["Annoy recall@10"] == f"{exact.Both.mean():.0%}"
    assert list(exact.Score) == sorted(exact.Score, reverse=True)


def test_recommend_changes_with_the_user_the_size_and_the_hide_rated_toggle(tiny_run, monkeypatch):
    prep, _ = tiny_run
    at = open_page("Recommend", user="5")
    first = at.dataframe[2].value
    assert not set(first.Title) & _rated_titles(prep, "5")

    at.toggle(key="hide_rated").set_value(False).run()
    assert set(_titles(at, 2)) & _rated_titles(prep, "5")  # rated movies are back
    assert _titles(at, 2) != list(first.Title)

    at.toggle(key="hide_rated").set_value(True)
    at.selectbox(key="user").set_value("6").run()
    assert not at.dataframe[2].value.equals(first)
    assert not set(_titles(at, 2)) & _rated_titles(prep, "6")

    at.slider(key="k").set_value(5).run()
    assert len(at.dataframe[2].value) == len(at.dataframe[3].value) == 5

    monkeypatch.setattr("random.choice", lambda options: "17")
    _button(at, "Random user").click().run()
    assert at.selectbox(key="user").value == "17" and "User 17" in texts(at.subheader)


# --------------------------------------------------------------------------- search
BAD_WORDS = {"empty": ("", "info", "Type a word"), "whitespace": ("   ", "warning", "keyword is empty"),
             "too long": ("x" * 101, "warning", "101 characters"),
             "no match": ("zzzz", "warning", "No movie title contains 'zzzz'")}


@pytest.mark.parametrize("case", BAD_WORDS)
def test_search_explains_bad_input_without_a_traceback(tiny_run, case):
    word, kind, message = BAD_WORDS[case]
    at = open_page("Search", word=word) if word else open_page("Search")
    assert message in texts(getattr(at, kind))
    assert not at.dataframe


def test_search_text_is_never_markup(tiny_run):
    at = open_page("Search", word="<b>*zz*</b>")
    assert r"\<b\>\*zz\*\</b\>" in texts(at.warning)  # shown literally, escaped for Markdown


def test_search_finds_matches_neighbours_and_the_top_raters_picks(tiny_run):
    prep, _ = tiny_run
    at = open_page("Search", word="BATMAN")
    matches = at.dataframe[0].value
    assert set(matches.Title) == {"Batman (1989)", "Batman Returns (1992)"}
    assert list(matches.columns) == ["Title", "Ratings", "Mean rating"]
    neighbours = _titles(at, 1)
    assert len(neighbours) == 10 and matches.Title[0] not in neighbours
    assert len(_titles(at, 2)) == 10

    other = "25" if at.selectbox(key="movie").value == "3" else "3"
    at.selectbox(key="movie").set_value(other).run()
    assert _titles(at, 1) != neighbours
    title = prep.ml.movies.set_index("movie_id").movie_title[other]
    assert any(title.replace("(", r"\(").replace(")", r"\)") in c.value for c in at.caption)


def test_search_word_and_chosen_movie_come_back_from_the_url(tiny_run):
    at = open_page("Search", word="batman", movie="25")
    assert at.text_input(key="word").value == "batman"
    assert at.selectbox(key="movie").value == "25"
    at.selectbox(key="movie").set_value("3").run()
    assert at.query_params["movie"] == ["3"]
