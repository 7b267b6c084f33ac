"""The Streamlit pages, driven in-process by AppTest on the tiny trained run."""
from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, replace

import pytest
import streamlit as st
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from recsys import catalog, jobs, paths, runs
from recsys.charts import axis_title
from recsys.config import RunConfig
from tiny import TINY_CONFIG

ROOT = paths.ROOT
sys.path.insert(0, str(ROOT))  # the app's own modules (ui) live at the project root
import ui  # noqa: E402

PAGES = {"Home": None, "Train": "app_pages/train.py", "Compare": "app_pages/compare.py",
         "Recommend": "app_pages/recommend.py", "Movie map": "app_pages/map.py", "Search": "app_pages/search.py"}
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
    """The Vega-Lite specs of the page's charts, each dataset's rows back under "datasets"
    (Streamlit sends them beside the spec, as Arrow)."""
    out = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        spec["datasets"] = {d.name: convert_arrow_bytes_to_pandas_df(d.data.data).to_dict("records")
                            for d in chart.proto.datasets}
        out.append(spec)
    return out


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


@pytest.fixture
def two_splits(store):
    """The store's copy says it was measured on the temporal split (its config only: its model is never loaded)."""
    config = runs.run_path(COPY_ID) / "config.json"
    stored = json.loads(config.read_text())
    stored["config"]["split"] = "temporal"
    config.write_text(json.dumps(stored))
    return store


# --------------------------------------------------------------------------- every page
def test_the_navigation_lists_every_page_by_title_with_home_first():
    assert [p.title for p in ui.PAGES] == ["Home", "Train", "Compare", "Recommend", "Movie map", "Search"]
    assert [p.script for p in ui.PAGES[1:]] == [PAGES[p.title] for p in ui.PAGES[1:]]
    assert all((ROOT / p.script).is_file() for p in ui.PAGES)
    assert "showSidebarNavigation" not in (ROOT / ".streamlit" / "config.toml").read_text()
    assert not (ROOT / "pages").exists()  # it would make Streamlit ignore st.navigation


@pytest.mark.parametrize("name", PAGES)
def test_without_a_run_every_page_says_so_and_links_to_train(empty_store, name):
    at = open_page(name)
    assert "No trained run yet" in texts(at.info)
    if name != "Train":  # the Train page is where the link goes
        assert links(at, at.main).get("Go to Train") == "train"
    assert "run" not in at.query_params


@pytest.mark.parametrize("name", PAGES)
def test_the_current_run_comes_from_the_url_and_falls_back_when_unknown(store, name):
    at = open_page(name, run=COPY_ID)
    assert at.query_params["run"] == [COPY_ID]
    assert COPY_ID[:6] in texts(at.sidebar.markdown)
    at = open_page(name, run="no-such-run")
    assert at.query_params["run"] == [store]  # no default run: the newest one
    assert store[:6] in texts(at.sidebar.markdown)
    assert "· random ·" in texts(at.sidebar.markdown)  # the run says which split protocol it used


def test_without_a_run_in_the_url_the_default_run_wins_over_newer_ones(store):
    default = catalog.default_run_id()
    shutil.copytree(runs.run_path(COPY_ID), runs.run_path(default))  # as old as the copy
    config = runs.run_path(default) / "config.json"
    config.write_text(config.read_text().replace(COPY_ID, default))
    assert open_page("Home").query_params["run"] == [default]
    shutil.rmtree(runs.run_path(default))
    assert open_page("Home").query_params["run"] == [store]


def test_the_url_state_survives_a_change_of_page_that_drops_it(store):
    at = open_page("Recommend", run=COPY_ID, user="7")
    at.selectbox(key="user").set_value("9").run()
    assert at.query_params["user"] == ["9"]
    for key in list(at.query_params):  # following a sidebar link loses the query string
        del at.query_params[key]
    at.switch_page(PAGES["Search"]).run()
    assert at.query_params["run"] == [COPY_ID] and at.query_params["user"] == ["9"]
    at.text_input(key="word").input("batman").run()
    for key in list(at.query_params):
        del at.query_params[key]
    at.switch_page(PAGES["Recommend"]).run()
    assert at.selectbox(key="user").value == "9" and "User 9" in texts(at.subheader)
    assert at.query_params["word"] == ["batman"] and at.query_params["run"] == [COPY_ID]


def test_a_link_to_another_user_wins_over_the_one_the_session_had(tiny_run):
    at = open_page("Recommend", user="7")
    at.query_params["user"] = "12"  # the Search page's link to the biggest fan
    at.run()
    assert at.selectbox(key="user").value == "12"


# --------------------------------------------------------------------------- home
def test_home_shows_the_data_the_current_run_and_its_baselines(tiny_run):
    _, run = tiny_run
    at = open_page("Home")
    numbers = {m.label: m.value for m in at.metric}
    assert (numbers["Ratings"], numbers["Users"], numbers["Movies"]) == ("600", "40", "30")
    assert numbers["RMSE"] == f"{run.metrics['rmse']:.3f}"
    assert numbers["Coverage@10"] == f"{run.metrics['coverage_at_10']:.1%}"
    assert run.run_id in texts(at.markdown) and "random split" in texts(at.markdown)
    assert f"trained on **{ui.escape(run.info['dataset'])}**" in texts(at.markdown)
    found = catalog.baselines()
    best = max(("EASE", "ease"), ("Item-kNN", "itemknn"), ("Popularity", "popularity"),
               key=lambda b: found[b[1]]["top_10_accuracy"])
    captions = texts(at.caption)
    assert ui.escape(f"popularity {found['popularity']['rmse']:.3f}") in captions  # beside the run's
    assert ui.escape(f"best classic: {best[0]} {found[best[1]]['top_10_accuracy']:.1%}") in captions
    rmse = next(m for m in at.metric if m.label == "RMSE")
    assert "Root mean squared error" in rmse.proto.help and "Lower is better" in rmse.proto.help
    assert len(charts(at)) == 1  # the rating histogram
    assert [label.split(":")[0] for label in links(at, at.main)] == [
        "**Train**", "**Compare**", "**Recommend**", "**Movie map**", "**Search**"]


# --------------------------------------------------------------------------- train
def _fill(at: AppTest, config: RunConfig) -> AppTest:
    at.slider(key="rating_weight").set_value(config.rating_weight)
    at.slider(key="retrieval_weight").set_value(config.retrieval_weight)
    at.number_input(key="epochs").set_value(config.epochs)
    at.number_input(key="batch_size").set_value(config.batch_size)
    at.selectbox(key="preset").set_value(config.preset)
    at.selectbox(key="split").set_value(config.split)
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
    assert {m.label: m.value for m in at.metric}["RMSE"] == f"{run.metrics['rmse']:.3f}"
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


def test_the_split_protocol_is_chosen_on_the_train_page(tiny_run, fake_queue):
    queue = fake_queue()
    at = open_page("Train")
    assert at.selectbox(key="split").options == ["random", "temporal"]
    assert at.selectbox(key="split").value == "random"
    _fill(at, replace(TINY_CONFIG, split="temporal"))
    _button(at, "Train").click().run()  # a new config: the tiny run was trained on the random split
    assert [c.split for c in queue.enqueued[0]] == ["temporal"]
    assert "temporal split" in texts(at.markdown)  # the request says which protocol it trains on


def test_the_dataset_is_chosen_among_those_this_machine_holds(tiny_run, fake_queue, monkeypatch):
    from recsys import data

    queue = fake_queue()
    monkeypatch.setattr(data, "available_datasets", lambda: ("ml-100k", "ml-1m"))
    monkeypatch.setattr(catalog, "cached_run", lambda config: None)  # ML-1M itself is not here to look up
    at = open_page("Train")
    assert at.selectbox(key="dataset").options == ["the app's data", "ml-1m"]  # 100K is the app's own
    assert at.selectbox(key="dataset").value is None
    _fill(at, TINY_CONFIG)
    at.selectbox(key="dataset").set_value("ml-1m")
    _button(at, "Train").click().run()
    assert [c.dataset for c in queue.enqueued[0]] == ["ml-1m"]
    assert "ml\\-1m" in texts(at.markdown)  # the request says which data it trains on


def test_the_train_page_says_what_each_weight_weighs(tiny_run):
    _, run = tiny_run
    at = open_page("Train")
    assert "must be trained first" in texts(at.caption)  # no stored run of the default preset as it is
    _fill(at, replace(TINY_CONFIG, rating_weight=0.5)).run()  # the tiny run's preset: its losses measure it
    best = next(h for h in run.history if h["epoch"] == run.info["best_epoch"])
    rating, retrieval = 0.5 * best["rating_loss"], best["retrieval_loss"]
    caption = texts(at.caption)
    assert f"**{rating:.3g}**" in caption and f"**{retrieval:.3g}**" in caption
    assert run.run_id in caption
    share = rating / (rating + retrieval)
    assert f"Rating {share:.0%}" in at.get("progress")[0].proto.text


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
def _title(spec: dict) -> str:
    title = spec.get("title") or spec["layer"][0].get("title")
    return title["text"] if isinstance(title, dict) else title


def _layer_rows(spec: dict, field: str) -> list[dict]:
    """The rows of the chart's layer that encodes `field` (e.g. the baselines' strokeDash)."""
    layer = next(x for x in spec["layer"] if field in x.get("encoding", {}))
    return spec["datasets"][layer.get("data", spec.get("data"))["name"]]


def test_compare_draws_metrics_tradeoff_beyond_accuracy_and_curves_with_three_baselines(store):
    at = open_page("Compare")
    specs = charts(at)
    assert [_title(s) for s in specs[:4]] == ["Test RMSE (lower is better)", "Test top-k accuracy (higher is better)",
                                              "Trade-off: RMSE against Top-100 accuracy",
                                              "Recall@10 by user activity (higher is better)"]
    assert len(specs) == 7  # plus three training curves
    assert [r["baseline"] for r in _layer_rows(specs[0], "strokeDash")] == ["Popularity", "Item-kNN"]  # EASE: no RMSE
    assert {r["baseline"] for r in _layer_rows(specs[1], "strokeDash")} == {"Popularity", "EASE", "Item-kNN"}
    assert [r["baseline"] for r in _layer_rows(specs[2], "shape")] == ["Popularity", "Item-kNN"]
    beyond, table = at.dataframe[0].value, at.dataframe[1].value
    assert {"Coverage@10", "Novelty@10", "Mean popularity@10", "Recall@10, light users"} <= set(beyond.columns)
    assert list(table.Run)[2:] == ["Baseline: Popularity", "Baseline: EASE", "Baseline: Item-kNN"]
    assert {"RMSE", "Top-100 accuracy", "Liked recall@10"} <= set(table.columns)
    settings = at.dataframe[2].value
    assert {"Run", "Rating weight", "Retrieval weight", "Preset", "Split", "RMSE"} <= set(settings.columns)
    assert len(settings) == 2

    at.button_group(key="compare_baselines").set_value(["ease"]).run()
    assert {r["baseline"] for r in _layer_rows(charts(at)[1], "strokeDash")} == {"EASE"}
    assert len(charts(at)[0]["layer"]) == 1  # no baseline left with an RMSE
    at.button_group(key="compare_baselines").set_value([]).run()
    assert [len(s["layer"]) for s in charts(at)[:2]] == [1, 1]
    at.multiselect(key="compare_runs").set_value([COPY_ID]).run()
    assert len(at.dataframe[2].value) == 1
    at.multiselect(key="curves").set_value(["rating_loss"]).run()
    assert len(charts(at)) == 5


def test_compare_draws_the_tradeoff_on_the_axes_chosen_with_their_pareto_front(store):
    at = open_page("Compare")
    axes = {"liked_recall_at_10", "coverage_at_10", "recall_at_10_heavy"}
    assert {axis_title(k) for k in axes} <= set(at.selectbox(key="tradeoff_y").options)
    at.selectbox(key="tradeoff_x").set_value("coverage_at_10")
    at.selectbox(key="tradeoff_y").set_value("liked_recall_at_10").run()
    spec = charts(at)[2]
    assert _title(spec) == "Trade-off: Coverage@10 against Liked recall@10"
    front = spec["layer"][0]
    assert (front["encoding"]["x"]["field"], front["encoding"]["y"]["field"]) == ("coverage_at_10",
                                                                                  "liked_recall_at_10")
    assert front["mark"]["interpolate"] == "step-before"  # higher coverage is better
    assert "Coverage@10 (higher is better)" == front["encoding"]["x"]["title"]
    assert "Share of the catalogue" in texts(at.caption)  # what the chosen axes mean


def test_compare_names_each_split_and_measures_baselines_on_both(two_splits):
    at = open_page("Compare")
    labels = at.multiselect(key="compare_runs").options
    assert any("· temporal ·" in label for label in labels) and any("· random ·" in label for label in labels)
    assert "measured on different splits" in texts(at.caption)
    marks = {r["baseline"] for r in _layer_rows(charts(at)[1], "strokeDash")}
    assert {"EASE · temporal split", "EASE · random split (seed 42)"} <= marks


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
    assert len(at.dataframe[2].value) == 1


# --------------------------------------------------------------------------- recommend
def _titles(at: AppTest, which: int) -> list[str]:
    return list(at.dataframe[which].value["Title"])


def _rated_titles(prep, user: str) -> set[str]:
    """Titles the user rated, leaving out titles shared by two movie ids (the tables show titles)."""
    ml = prep.ml
    rated = ml.ratings[ml.ratings.user_id == user].movie_id
    unique = ml.movies[~ml.movies.movie_title.duplicated(keep=False)]
    return set(unique[unique.movie_id.isin(rated)].movie_title)


def test_recommend_shows_profile_and_the_models_list_explained_beside_annoys(tiny_run):
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
    model, mine, annoy = at.dataframe[2].value, at.dataframe[3].value, at.dataframe[4].value
    assert len(model) == len(annoy) == 10 and list(mine.Title) == list(model.Title)
    assert list(model.columns) == ["Title", "Watch score", "Predicted rating", "Blend", "Because you rated"]
    assert list(mine["Also beside"]) == [t in set(annoy.Title) for t in model.Title]
    assert shown["Annoy recall@10"] == f"{mine['Also beside'].mean():.0%}"
    assert list(model.Blend) == sorted(model.Blend, reverse=True)  # the default order: the validated blend
    # Each pick is explained by movies the user rated, with the stars they gave.
    mine = prep.ml.ratings[prep.ml.ratings.user_id == "5"].merge(prep.ml.movies, on="movie_id")
    given = {f"{t} ★{s:g}" for t, s in zip(mine.movie_title, mine.user_rating)}
    for because in model["Because you rated"]:
        assert because and set(because.split(" · ")) <= given


def test_switching_the_order_reorders_the_list_by_that_score(tiny_run):
    at = open_page("Recommend", user="5")
    blend = _titles(at, 2)
    at.segmented_control(key="rank").set_value("love").run()
    love = at.dataframe[2].value
    assert list(love["Predicted rating"]) == sorted(love["Predicted rating"], reverse=True)
    at.segmented_control(key="rank").set_value("watch").run()
    watch = at.dataframe[2].value
    assert list(watch["Watch score"]) == sorted(watch["Watch score"], reverse=True)
    assert len({tuple(blend), tuple(love.Title), tuple(watch.Title)}) > 1  # the list changed
    assert "likely to watch" in texts(at.subheader)


@pytest.mark.parametrize("name, label", [("popularity", "Popularity"), ("ease", "EASE"), ("itemknn", "Item-kNN")])
def test_a_baselines_list_is_shown_beside_the_models(tiny_run, name, label):
    prep, _ = tiny_run
    at = open_page("Recommend", user="5")
    at.selectbox(key="beside").set_value(name).run()
    model, other = at.dataframe[3].value, at.dataframe[4].value
    assert f"**{label} baseline**" in texts(at.markdown)
    assert len(other) == 10 and not set(other.Title) & _rated_titles(prep, "5")
    assert ("Predicted rating" in other.columns) == (name != "ease")  # EASE scores, it predicts no stars
    assert list(other["Also beside"]) == [t in set(model.Title) for t in other.Title]
    if name == "popularity":  # the most-rated movies the user has not rated
        counts = prep.ml.ratings.movie_id.astype(str).value_counts()
        titles = prep.ml.movies.set_index("movie_id").movie_title
        assert counts[titles[titles == other.Title[0]].index[0]] >= counts[titles[titles == other.Title[9]].index[0]]
    assert "Annoy recall@10" not in {m.label for m in at.metric}


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
    assert len(at.dataframe[2].value) == len(at.dataframe[4].value) == 5

    monkeypatch.setattr("random.choice", lambda options: "17")
    _button(at, "Random user").click().run()
    assert at.selectbox(key="user").value == "17" and "User 17" in texts(at.subheader)
    assert at.query_params["user"] == ["17"]


def _rate(at: AppTest, movie: str, stars: int) -> AppTest:
    at.selectbox(key="new_movie").set_value(movie)
    at.segmented_control(key="new_stars").set_value(stars)
    return _button(at, "Rate it").click().run()


def test_someone_new_rates_three_movies_and_the_list_follows_each_rating(tiny_run):
    prep, _ = tiny_run
    titles = prep.ml.movies.set_index("movie_id").movie_title
    at = open_page("Recommend")
    at.segmented_control(key="who").set_value("new").run()
    assert "Your list appears after your first rating" in texts(at.info) and not at.dataframe

    lists = []
    for movie, stars in (("3", 5), ("25", 4), ("9", 1)):
        _rate(at, movie, stars)
        assert not at.exception and not at.warning
        table = at.dataframe[0].value
        assert len(table) == 10 and not {titles["3"], titles["25"], titles["9"]} & set(table.Title)
        lists.append(list(zip(table.Title, table["Watch score"])))
        assert at.selectbox(key="new_movie").value is None  # ready for the next one
    assert lists[0] != lists[1] != lists[2]  # each rating changed the list
    assert at.query_params["rated"] == ["3:5,25:4,9:1"]  # shareable, and never in the training data
    assert f"{ui.escape(titles['9'])}\n★\n" in texts(at.markdown)  # the latest rating first, with its star
    # The liked ones explain the picks, with their stars; the 1-star one never does.
    because = " · ".join(at.dataframe[0].value["Because you rated"])
    assert f"{titles['3']} ★5" in because and titles["9"] not in because

    _button(at, "Remove").click().run()  # the latest rating is listed first
    assert at.query_params["rated"] == ["3:5,25:4"]
    at.number_input(key="new_age").set_value(70)
    at.selectbox(key="new_gender").set_value("F").run()
    assert not at.exception and len(at.dataframe[0].value) == 10


def test_ratings_come_back_from_a_shared_link_and_a_bad_one_is_a_one_line_warning(tiny_run):
    at = open_page("Recommend", rated="3:5,25:4")
    assert at.segmented_control(key="who").value == "new"
    assert len(at.dataframe[0].value) == 10 and "Your 2 ratings" in texts(at.markdown)
    for bad, message in [("3:9", "whole number from 1 to 5"), ("3:5,3:4", "rated twice"),
                         ("77:5", "no movie has the id '77'"), ("<b>x</b>", "is not MOVIE:STARS")]:
        at = open_page("Recommend", rated=bad)
        assert "The ratings in the link can" in texts(at.warning) and message in texts(at.warning).replace("\\", "")
        assert len(at.warning) == 1 and not at.dataframe
    assert at.query_params["rated"] == ["<b>x</b>"]  # nothing is lost until the user rates again


# --------------------------------------------------------------------------- the movie map
def _map(at: AppTest) -> dict:
    return next(c for c in charts(at) if any("genre" == x.get("encoding", {}).get("color", {}).get("field")
                                             for x in c["layer"]))


def test_the_map_shows_every_movie_and_the_variance_its_axes_keep(tiny_run):
    prep, _ = tiny_run
    at = open_page("Movie map")
    spec = _map(at)
    assert len(spec["layer"]) == 1 and len(_layer_rows(spec, "size")) == 30
    assert "The two axes keep" in texts(at.caption) and "of the variance" in texts(at.caption)


def test_choosing_a_movie_highlights_it_and_its_annoy_neighbours(tiny_recommender, tiny_run):
    at = open_page("Movie map")
    at.selectbox(key="map_movie").set_value("3")
    at.slider(key="map_k").set_value(5).run()
    rows = _layer_rows(_map(at), "stroke")
    expected = tiny_recommender.similar("3", 5, method="annoy").movie_id.tolist()
    assert [r["movie_id"] for r in rows if r["group"] == "Chosen movie"] == ["3"]
    assert {r["movie_id"] for r in rows if r["group"] == "Annoy neighbours"} == set(expected)
    assert list(at.dataframe[0].value.Title) == tiny_recommender.similar("3", 5, method="annoy").title.tolist()
    assert at.query_params["movie"] == ["3"]  # and the Search page opens on it


def test_choosing_a_user_overlays_their_rated_movies_and_their_picks(tiny_recommender, tiny_run):
    prep, _ = tiny_run
    at = open_page("Movie map")
    at.selectbox(key="map_user").set_value("5").run()
    rows = _layer_rows(_map(at), "stroke")
    rated = set(prep.ml.ratings[prep.ml.ratings.user_id == "5"].movie_id.astype(str))
    assert {r["movie_id"] for r in rows if r["group"] == "Rated by the user"} == rated
    assert {r["movie_id"] for r in rows if r["group"] == "Recommended"} == \
        set(tiny_recommender.recommend("5", 10).movie_id)


def test_the_map_overlays_the_ratings_given_on_the_recommend_page(tiny_run):
    at = open_page("Recommend", rated="3:5,25:4")
    at.switch_page(PAGES["Movie map"]).run()
    at.selectbox(key="map_user").set_value("you").run()
    rows = _layer_rows(_map(at), "stroke")
    assert {r["movie_id"] for r in rows if r["group"] == "Rated by you"} == {"3", "25"}
    assert len([r for r in rows if r["group"] == "Recommended for you"]) == 10
    at = open_page("Movie map", rated="3:5,25:4")  # a shared link straight to the map
    assert "you" in at.selectbox(key="map_user").options[1]


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
    picks = at.dataframe[2].value
    assert len(picks) == 10  # the same recommender and columns as the Recommend page
    assert list(picks.columns) == ["Title", "Watch score", "Predicted rating", "Blend", "Because you rated"]
    assert all("★" in b for b in picks["Because you rated"])

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
