"""What every page shares: navigation, the current run, cached loaders and messages.

A top-level module rather than a file in pages/: Streamlit lists every pages/*.py
(even `_name.py`) as a page. The sidebar is drawn here with st.page_link, because
Streamlit's automatic one names the main page after its file ("app").
"""
from __future__ import annotations

import os
import re
import uuid
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from recsys import catalog, charts, runs
from recsys.errors import UserError

if TYPE_CHECKING:  # the real import loads TensorFlow; only pages that serve need it
    from recsys.recommend import Recommender

APP_NAME = "Movie recommender"
TRAIN_PAGE = "pages/1_Train.py"
PAGES = (  # (script, label, icon, what it is for)
    ("app.py", "Home", ":material/home:", "what this is, the data, the current run"),
    (TRAIN_PAGE, "Train", ":material/model_training:", "train a run, or the notebook's experiments"),
    ("pages/2_Compare.py", "Compare", ":material/leaderboard:", "metrics, trade-off and curves of runs"),
    ("pages/3_Recommend.py", "Recommend", ":material/recommend:", "a user's profile and top picks"),
    ("pages/4_Search.py", "Search", ":material/search:", "find a movie by a word, its neighbours"),
)
CARRIED = ("user", "word")  # page state that page links carry along with the run
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$])")


def escape(text: object) -> str:
    """`text` with Markdown (and Streamlit's :color[] and $math$) made literal."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def warn(exc: Exception) -> None:
    """Show an error's message as a warning (not a traceback); its text stays literal."""
    text = escape(exc)
    st.warning(text[:1].upper() + text[1:], icon=":material/warning:")


def page(title: str, icon: str) -> None:
    """Configure the page and draw the sidebar: the page links and the current run."""
    st.set_page_config(page_title=f"{title} · {APP_NAME}", page_icon=icon, layout="wide")
    run_id = current_run_id()
    params = nav_params(run_id)
    with st.sidebar:
        st.markdown(f"### {APP_NAME}")
        for script, label, page_icon, _ in PAGES:
            st.page_link(script, label=label, icon=page_icon, query_params=params, width="stretch")
        st.divider()
        st.caption("Current run")
        run = current_run()
        if run:
            st.markdown(escape(charts.run_label(run.config_dict, run.run_id)))
        else:
            st.markdown("none yet")


def page_links() -> None:
    """Every page as a link with one line on what it is for (for the home page)."""
    params = nav_params(current_run_id())
    for script, label, icon, about in PAGES[1:]:
        st.page_link(script, label=f"**{label}**: {about}", icon=icon, query_params=params)


def nav_params(run_id: str | None) -> dict[str, str] | None:
    """Query parameters a page link carries: the run, and the user and word last seen."""
    params = {k: str(st.query_params[k]) for k in CARRIED if k in st.query_params}
    params.update(st.session_state.get("_carried", {}))
    for key in CARRIED:
        if key in st.session_state:  # its widget is on this page: the value it has in this run
            value = str(st.session_state[key] or "").strip()
            if value:
                params[key] = value
            else:
                params.pop(key, None)
    if run_id:
        params["run"] = run_id
    return params or None


def carry(key: str, value: str | None) -> None:
    """Remember page state (user, word) so links to other pages keep it."""
    carried = st.session_state.setdefault("_carried", {})
    if value:
        carried[key] = str(value)
    else:
        carried.pop(key, None)


# ---------------------------------------------------------------- the current run
def current_run_id() -> str | None:
    """The run the pages show: ?run= if stored, else the default run, else the newest.

    Only runs the store lists readable qualify (damaged ones are on Compare), and ?run=
    is only ever compared with their ids: it is never used as a path.
    """
    readable = runs.list_runs()
    if not readable:
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
    st.query_params["run"] = chosen  # the URL names what is shown (and drops a deleted run)
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


def session_token() -> str:
    """This browser session's id in the training queue (who asked for what, who may cancel it)."""
    if "_session_token" not in st.session_state:
        st.session_state["_session_token"] = uuid.uuid4().hex
    return st.session_state["_session_token"]


def set_current_run(run_id: str | None) -> None:
    """Make `run_id` the current run (None: back to the default choice)."""
    if run_id:
        st.query_params["run"] = run_id
    else:
        st.query_params.pop("run", None)


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


def dataset() -> tuple[dict, pd.Series]:
    """The data's summary (source, counts) and every rating value; UserError if missing."""
    return _dataset(data_key())


@st.cache_data(show_spinner="Computing the popularity baseline…")
def _baseline(key: str) -> dict:
    return catalog.popularity_baseline()


def baseline() -> dict | None:
    """The popularity baseline's test metrics, or None when the data can't be loaded."""
    try:
        return _baseline(data_key())
    except UserError:
        return None


def run_summaries() -> list[dict]:
    """Every readable run's summary, newest state (uncached: a new run shows at once)."""
    return catalog.run_summaries()


@st.cache_resource(max_entries=3, show_spinner="Loading the model and its Annoy index…")
def _recommender(run_id: str, stamp: int, key: str) -> "Recommender":
    from recsys.recommend import open_run

    return open_run(run_id)


def recommender(run_id: str) -> "Recommender":
    """The run's Recommender, cached per run id and per stored version of the run."""
    try:
        stamp = (runs.run_path(run_id) / "metrics.json").stat().st_mtime_ns
    except OSError:
        raise UserError(f"run {run_id} is not stored any more") from None
    return _recommender(run_id, stamp, data_key())


def clear_caches() -> None:
    """Forget cached data and models (after deleting a run)."""
    st.cache_data.clear()
    st.cache_resource.clear()
