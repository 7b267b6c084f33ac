"""Train: choose the weights and settings, then train in the background (or reuse a cached run)."""
from __future__ import annotations

import time
from dataclasses import asdict, replace

import streamlit as st

import ui
from recsys import catalog, charts, jobs, presets, runs
from recsys.config import MAX_BATCH, MAX_EPOCHS, RunConfig
from recsys.errors import UserError
from recsys.optim import OPTIMIZERS

EXPERIMENTS = {"Rating only · 1 / 0": (1.0, 0.0), "Retrieval only · 0 / 1": (0.0, 1.0), "Joint · 1 / 1": (1.0, 1.0)}
SWEEP = [round(i / 10, 1) for i in range(11)]  # rating weights, retrieval weight 1
POLL_SECONDS = 1.0

ui.page("Train", "🏋️")
st.title("Train a run")
st.markdown(
    "A run is one config: the two loss weights plus the training settings. A config trained "
    "before is reused at once. Training runs in the background, one job at a time for everyone "
    "using the app: you can leave the page and come back."
)
if ui.current_run_id() is None:
    st.info("No trained run yet. The settings below as they are train the app's default model.",
            icon=":material/info:")


def _act(action: str, weights: tuple[float, float] | None = None) -> None:
    # Runs before the rerun, so the sliders already show an experiment's weights.
    if weights is not None:
        st.session_state["rating_weight"], st.session_state["retrieval_weight"] = weights
    st.session_state["train_action"] = action


def _preset_line(name: str) -> str:
    p = presets.PRESETS[name]
    stop = f", stops after {p.patience} epochs without progress" if p.patience else ""
    return (f"**{name}**: {p.optimizer}, learning rate {p.learning_rate:g}, batch {p.batch_size}, "
            f"{p.epochs} epochs{stop}")


with st.form("train"):
    left, middle, right = st.columns(3)
    left.slider("Rating weight", 0.0, 1.0, 1.0, 0.1, format="%.1f", key="rating_weight",
                help="Weight of the rating loss (MSE)")
    middle.slider("Retrieval weight", 0.0, 1.0, 1.0, 0.1, format="%.1f", key="retrieval_weight",
                  help="Weight of the retrieval loss (softmax over the movies)")
    right.number_input("Epochs", 1, MAX_EPOCHS, value=None, step=1, key="epochs",
                       placeholder="the preset's", help="Empty: the preset's number of epochs")
    with st.expander("Advanced"):
        a, b, c, d = st.columns(4)
        a.selectbox("Preset", list(presets.PRESETS), index=list(presets.PRESETS).index("default"), key="preset",
                    help="seed: the notebook's settings; default: tuned for this data")
        b.selectbox("Optimizer", [None, *OPTIMIZERS], key="optimizer",
                    format_func=lambda o: "the preset's" if o is None else o)
        c.number_input("Learning rate", 1e-5, 10.0, value=None, step=0.001, format="%.4f", key="learning_rate",
                       placeholder="the preset's")
        d.number_input("Batch size", 1, MAX_BATCH, value=None, step=64, key="batch_size",
                       placeholder="the preset's")
        st.markdown("  \n".join(_preset_line(name) for name in presets.PRESETS))
    st.form_submit_button("Train", type="primary", on_click=_act, args=("single",), icon=":material/play_arrow:")
    st.caption("Or one click for the notebook's experiments (rating / retrieval weight), "
               "with the other settings above:")
    buttons = st.columns(4)
    for col, (label, weights) in zip(buttons, EXPERIMENTS.items()):
        with col:
            st.form_submit_button(label, on_click=_act, args=("single", weights), width="stretch")
    with buttons[3]:
        st.form_submit_button("Sweep: rating 0, 0.1 … 1", on_click=_act, args=("sweep",), width="stretch",
                              help="Train rating weights 0, 0.1, …, 1 with retrieval weight 1, one after "
                                   "another; cached ones are skipped")


def _form_config() -> RunConfig:
    s = st.session_state
    # Sliders hand back 0.30000000000000004; the run id must see 0.3.
    return RunConfig(rating_weight=round(float(s.rating_weight), 1),
                     retrieval_weight=round(float(s.retrieval_weight), 1), preset=s.preset, epochs=s.epochs,
                     batch_size=s.batch_size, learning_rate=s.learning_rate, optimizer=s.optimizer)


def _start(configs: list[RunConfig], kind: str) -> None:
    if jobs.is_running():
        st.warning("A training job is already running (one at a time, for everyone using the app); "
                   "wait for it to finish: its progress is below.", icon=":material/hourglass:")
        return
    state = jobs.start(configs)
    if state.get("configs") != [asdict(c) for c in configs]:  # another session won the race
        st.warning("Another training job started just before yours; wait for it to finish.",
                   icon=":material/hourglass:")
        return
    st.session_state["watching"] = {"started": state["started"], "kind": kind}
    st.session_state.pop("cached_result", None)


action = st.session_state.pop("train_action", None)
if action:
    try:
        base = _form_config()
        if action == "sweep":
            _start([replace(base, rating_weight=w, retrieval_weight=1.0).validate() for w in SWEEP], "sweep")
        else:
            hit = catalog.cached_run(base.validate())
            if hit is not None:  # no job: the stored run answers at once
                st.session_state["cached_result"] = hit.run_id
                ui.set_current_run(hit.run_id)
            else:
                _start([base], "single")
    except UserError as exc:
        ui.warn(exc)


def _show_run(run_id: str) -> None:
    run = runs.load(run_id)
    m = run.metrics
    cols = st.columns(5)
    cols[0].metric("Test RMSE", f"{m['rmse']:.3f}")
    cols[1].metric("Top-10 accuracy", f"{m['top_10_accuracy']:.1%}")
    cols[2].metric("Top-100 accuracy", f"{m['top_100_accuracy']:.1%}")
    cols[3].metric("Recall@10", f"{m['recall_at_10']:.1%}")
    cols[4].metric("Epochs (best)", f"{run.info.get('stopped_epoch')} ({run.info.get('best_epoch')})")
    st.caption(f"Run `{run_id}` · {ui.escape(charts.run_label(run.config.to_dict(), run_id))}")


def _progress(state: dict) -> None:
    cfg = state["configs"][max(state.get("position", 1), 1) - 1]
    mine = st.session_state.get("watching", {}).get("started") == state.get("started")
    who = "" if mine else " (started in another session)"
    st.subheader(f"Training in progress{who}")
    which = f"Run {state.get('position', 1)} of {state['total']}: r" if state["total"] > 1 else "R"
    st.markdown(f"{which}ating weight **{cfg['rating_weight']:g}**, retrieval weight **{cfg['retrieval_weight']:g}**, "
                f"preset **{ui.escape(cfg['preset'])}**")
    if state["total"] > 1:
        cached = sum(d["cached"] for d in state["done"])
        st.caption(f"{len(state['done'])} of {state['total']} done ({cached} from the cache)")
    event = state.get("progress")
    if not event:
        st.progress(0.0, text="Loading the data and building the model…")
        return
    st.progress(min(event["epoch"] / event["epochs"], 1.0),
                text=f"Epoch {event['epoch']} of {event['epochs']} · about {event['eta_seconds']:.0f} s left")
    cols = st.columns(5)
    cols[0].metric("Rating loss", f"{event.get('rating_loss', float('nan')):.4f}")
    cols[1].metric("Retrieval loss", f"{event.get('retrieval_loss', float('nan')):.4f}")
    cols[2].metric("Validation RMSE", f"{event['val_rmse']:.3f}")
    cols[3].metric("Validation top-100", f"{event['val_top_100_accuracy']:.1%}")
    cols[4].metric("Time left" + (" (this run)" if state["total"] > 1 else ""), f"{event['eta_seconds']:.0f} s")
    events = [e for e in jobs.history() if e.get("run_id") == state.get("run_id")]
    losses = [k for k in charts.LIVE_LOSSES if events and k in events[-1]]
    for col, loss in zip(st.columns(max(len(losses), 1)), losses):
        col.altair_chart(charts.live_loss_chart(events, loss), width="stretch")


@st.fragment(run_every=POLL_SECONDS)
def live_progress() -> None:
    """Poll the background job and redraw its progress; rerun the page when it ends."""
    state = jobs.status()
    if state["state"] != "running":
        st.rerun()  # the whole page: the finished run must show everywhere
    _progress(state)


def _finished(state: dict) -> None:
    watching = st.session_state.get("watching")
    if watching and watching["started"] == state.get("started"):
        st.session_state.pop("watching")
        if watching["kind"] == "single" and state["state"] == "done" and state["done"]:
            ui.set_current_run(state["done"][-1]["run_id"])
            st.rerun()  # so the sidebar names the new current run
    minutes = (time.time() - state.get("finished", state.get("updated", time.time()))) / 60
    ago = "just now" if minutes < 1 else f"{minutes:.0f} min ago" if minutes < 120 else f"{minutes / 60:.0f} h ago"
    if state["state"] == "failed":
        st.error(f"The last training job failed: {ui.escape(state.get('error', 'unknown error'))}",
                 icon=":material/error:")
        if state.get("traceback"):
            with st.expander("Traceback"):
                st.code(state["traceback"], language=None)
        return
    done = [d for d in state.get("done", []) if runs.is_finished(d["run_id"])]
    if not done:
        return
    st.subheader("Last training job")
    seconds = state.get("finished", 0) - state.get("started", 0)
    st.caption(f"Finished {ago} after {seconds:.0f} s: {len(done)} run(s), "
               f"{sum(d['cached'] for d in done)} from the cache.")
    if len(done) == 1:
        _show_run(done[0]["run_id"])
    else:
        frame = charts.runs_frame([runs.load(d["run_id"]).summary() for d in done])
        st.dataframe(charts.readable(frame[["label", "rmse", "top_10_accuracy", "top_100_accuracy", "train_seconds"]]),
                     hide_index=True)
    st.page_link("pages/2_Compare.py", label="Compare the runs", icon=":material/leaderboard:",
                 query_params=ui.nav_params(ui.current_run_id()))


if "cached_result" in st.session_state and runs.is_finished(st.session_state["cached_result"]):
    st.success("Cached: this config was trained before, so its stored run is shown, and no training was needed.",
               icon=":material/bolt:")
    _show_run(st.session_state["cached_result"])

status = jobs.status()
if status["state"] == "running":
    live_progress()
elif status["state"] in ("done", "failed"):
    _finished(status)
