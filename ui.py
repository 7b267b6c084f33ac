"""What every page shares: the page list, URL state, the current run, cached loaders, messages.

A top-level module rather than a file in app_pages/, so it is never mistaken for a page.
`app.py` builds the navigation from PAGES; the pages import the rest.
"""
from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st
from streamlit.navigation.page import StreamlitPage

from recsys import catalog, charts, runs, serving, views
from recsys.errors import UserError
from recsys.split import DEFAULT_SEED

if TYPE_CHECKING:  # the real import loads TensorFlow; only pages that serve need it
    from recsys.recommend import Recommender

APP_NAME = "Movie recommender"
serving.configure()  # this process serves every browser session from its own thread


@dataclass(frozen=True)
class PageSpec:
    """A page of the app: its script, title in the sidebar, icon and what it is for."""

    script: str
    title: str
    icon: str
    about: str


PAGES = (
    PageSpec("app_pages/home.py", "Home", ":material/home:", "what this is, the data, the current run"),
    PageSpec("app_pages/train.py", "Train", ":material/model_training:", "train a run, or the notebook's experiments"),
    PageSpec("app_pages/compare.py", "Compare", ":material/leaderboard:",
             "runs against the classic baselines: accuracy, beyond accuracy, trade-offs, curves"),
    PageSpec("app_pages/recommend.py", "Recommend", ":material/recommend:",
             "a user's top picks and why, beside a baseline's; or yours from a few ratings"),
    PageSpec("app_pages/map.py", "Movie map", ":material/scatter_plot:",
             "every movie in two dimensions, a movie's neighbours, a user's movies"),
    PageSpec("app_pages/search.py", "Search", ":material/search:", "find a movie by a word, its neighbours"),
)
TRAIN_PAGE = "app_pages/train.py"
# Page state kept in the URL (?run=…&user=…) and in the session, so it survives a change of page.
CARRIED = ("run", "user", "word", "movie", "rated")
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$])")


def escape(text: object) -> str:
    """`text` with Markdown (and Streamlit's :color[] and $math$) made literal."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def warn(exc: Exception | str) -> None:
    """Show an error's message as a one-line warning (not a traceback); its text stays literal."""
    text = escape(exc)
    st.warning(text[:1].upper() + text[1:], icon=":material/warning:")


# ---------------------------------------------------------------- navigation and URL state
def navigation() -> StreamlitPage:
    """Streamlit's own sidebar navigation over PAGES (the first is the home page)."""
    pages = [st.Page(p.script, title=p.title, icon=p.icon, default=i == 0) for i, p in enumerate(PAGES)]
    return st.navigation(pages)


def keep_url_state() -> None:
    """Carry the page state across pages: a value in the URL is remembered for the session,
    and one the URL lost (a change of page drops the query string) is put back."""
    memory = st.session_state.setdefault("_url_state", {})
    for key in CARRIED:
        if key in st.query_params:
            memory[key] = st.query_params[key]
        elif key in memory:
            st.query_params[key] = memory[key]


def remember(key: str, value: object | None) -> None:
    """Put page state in the URL and the session (None or "" removes it)."""
    memory = st.session_state.setdefault("_url_state", {})
    text = "" if value is None else str(value).strip()
    st.session_state.setdefault("_written", {})[key] = text or None
    if text:
        memory[key] = text
        if st.query_params.get(key) != text:
            st.query_params[key] = text
    else:
        memory.pop(key, None)
        st.query_params.pop(key, None)


def from_url(key: str, valid=None, param: str | None = None) -> None:
    """Before the widget keyed `key` whose value the URL holds (as `param`, default `key`): the
    URL's value becomes the widget's when the widget has none yet (a first visit, or back from
    another page) or when the app did not write it there (a link, an edited address), if
    `valid` (None: anything) has it. Otherwise the widget keeps its own."""
    param = param or key
    wanted = st.query_params.get(param)
    written = st.session_state.setdefault("_written", {})
    fresh = key not in st.session_state or wanted != written.get(param)
    if wanted is not None and fresh and (valid is None or wanted in valid):
        st.session_state[key] = wanted
        written[param] = wanted


def sidebar() -> None:
    """Below the page list: the current run, with its split protocol."""
    with st.sidebar:
        st.caption("Current run")
        run = current_run()
        st.markdown(escape(charts.run_label(run.config_dict, run.run_id)) if run else "none yet")


def page_links() -> None:
    """Every page but Home as a link with one line on what it is for (for the home page)."""
    for p in PAGES[1:]:
        st.page_link(p.script, label=f"**{p.title}**: {p.about}", icon=p.icon)


def new_ratings(known) -> list[tuple[str, float]]:
    """This session's "I'm new" ratings, [(movie id, stars)]; on first use, the ones in the link
    (?rated=50:5,181:4). A bad list leaves none and a one-line reason in `rated_error`."""
    if "new_rated" not in st.session_state:
        rated, text = [], st.query_params.get("rated")
        if text:
            try:
                rated = views.parse_rated(text, known)
            except UserError as exc:
                st.session_state["rated_error"] = f"the ratings in the link can't be used: {exc}"
        st.session_state["new_rated"] = rated
    return st.session_state["new_rated"]


# ---------------------------------------------------------------- the current run
def current_run_id() -> str | None:
    """The run the pages show: ?run= if stored, else the default run, else the newest.

    Only runs the store lists readable qualify (damaged ones are on Compare), and ?run=
    is only ever compared with their ids: it is never used as a path.
    """
    readable = runs.list_runs()
    if not readable:
        remember("run", None)
        return None
    finished = [r.run_id for r in readable]
    wanted = st.query_params.get("run")
    if wanted in finished:
        return wanted
    try:
        default = catalog.default_run_id()
    except UserError:  # no data: still show the stored runs
        default = None
    servable = [r.run_id for r in readable if not r.older]
    chosen = default if default in servable else (servable or finished)[-1]
    remember("run", chosen)  # the URL names what is shown (and drops a deleted run)
    return chosen


def current_run() -> "runs.Run | None":
    """The current run as stored, or None (none yet, or it was damaged a moment ago)."""
    run_id = current_run_id()
    if run_id is None:
        return None
    try:
        return runs.load(run_id)
    except UserError:
        return None


def set_current_run(run_id: str | None) -> None:
    """Make `run_id` the current run (None: back to the default choice)."""
    remember("run", run_id)


def session_token() -> str:
    """This browser session's id in the training queue (who asked for what, who may cancel it)."""
    if "_session_token" not in st.session_state:
        st.session_state["_session_token"] = uuid.uuid4().hex
    return st.session_state["_session_token"]


def require_run() -> str:
    """The current run id; without one, say so, link to Train and stop the page."""
    run_id = current_run_id()
    if run_id is None:
        no_run()
        st.stop()
    return run_id


def no_run() -> None:
    """The message every page shows before any run was trained."""
    st.info("No trained run yet. Train one first: the default settings train the app's default model.",
            icon=":material/info:")
    st.page_link(TRAIN_PAGE, label="Go to Train", icon=":material/model_training:")


# ---------------------------------------------------------------- cached loaders
def data_key() -> str:
    """What decides which data and run store recsys sees; part of every cache key."""
    return "|".join(os.environ.get(k, "") for k in ("RECSYS_DATA", "RECSYS_DATA_DIR", "RECSYS_ARTIFACTS"))


@st.cache_data(show_spinner="Loading MovieLens…")
def _dataset(key: str) -> tuple[dict, pd.Series]:
    from recsys import data

    ml = data.load()
    return ml.summary(), ml.ratings.user_rating


@st.cache_data(ttl=60, show_spinner=False)
def _available_datasets(key: str) -> tuple[str, ...]:
    from recsys import data

    return data.available_datasets()


def dataset_choices() -> list[str | None]:
    """What the Train page offers: None (the app's data), then every other dataset this
    machine holds (a prepared tfds copy or its GroupLens zip in the manual folder)."""
    from recsys import datasets

    return [None, *(n for n in _available_datasets(data_key()) if n != datasets.DEFAULT)]


def dataset() -> tuple[dict, pd.Series]:
    """The data's summary (source, counts) and every rating value; UserError if missing."""
    return _dataset(data_key())


@st.cache_data(show_spinner="Scoring the classic baselines on this split (the first time takes about half "
                            "a minute)…")
def _baselines(key: str, split: str, split_seed: int, dataset: str | None) -> dict[str, dict]:
    return catalog.baselines(None, split_seed, split, dataset)


def baselines(splits: list[tuple[str, int]] | None = None, names=None,
              dataset: str | None = None) -> dict[str, dict[str, float]]:
    """The classic baselines `names` (all when None) on each (protocol, split seed) of
    `dataset` (None: the app's data), as {label: test metrics} (`views.baseline_labels`);
    {} when the data can't be loaded."""
    found = {}
    for split, seed in sorted(set(splits or [("random", DEFAULT_SEED)])):
        try:
            found[(split, seed)] = _baselines(data_key(), split, seed, dataset)
        except UserError:
            continue
    return views.baseline_labels(found, names)


def run_baselines(run: "runs.Run") -> dict[str, dict[str, float]]:
    """The classic baselines on the data and split `run` was measured on."""
    return baselines([(run.config.split, run.config.split_seed)], dataset=run.config.dataset)


def run_summaries() -> list[dict]:
    """Every readable run's summary, newest state (uncached: a new run shows at once)."""
    return catalog.run_summaries()


@st.cache_resource(max_entries=3, show_spinner="Loading the model and its Annoy index…")
def _recommender(run_id: str, stamp: int, key: str) -> "Recommender":
    from recsys.recommend import open_run

    opened = open_run(run_id)
    serving.settle_heap()  # what a run loads stays while it is cached: out of full collections
    return opened


def recommender(run_id: str) -> "Recommender":
    """The run's Recommender, cached per run id and per stored version of the run."""
    try:
        stamp = (runs.run_path(run_id) / "metrics.json").stat().st_mtime_ns
    except OSError:
        raise UserError(f"run {run_id} is not stored any more") from None
    return _recommender(run_id, stamp, data_key())


def servable() -> "Recommender":
    """The current run's Recommender; without a run or with one it can't serve, say why and stop."""
    run_id = require_run()
    try:
        return recommender(run_id)
    except UserError as exc:
        warn(exc)
        st.stop()
