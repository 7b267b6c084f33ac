"""Train: choose the weights and settings, then train in the background (or reuse a cached run)."""
from __future__ import annotations

import streamlit as st

import ui
from recsys import catalog, charts, experiments, glossary, jobs, limits, losses, presets, runs, views
from recsys.config import MAX_BATCH, MAX_EPOCHS, RunConfig
from recsys.errors import UserError
from recsys.optim import OPTIMIZERS
from recsys.split import PROTOCOLS

POLL_SECONDS = 1.0
SHOWN = ("rmse", "top_10_accuracy", "top_100_accuracy", "recall_at_10")  # a finished run's headline numbers
PROTOCOL_HELP = {"random": "random: the notebook's split, 20% of all ratings at random are test",
                 "temporal": "temporal: each user's latest 20% of ratings are test (predict the future)"}

st.title("Train a run")
st.markdown(
    "A run is one config: the two loss weights plus the training settings. A config trained "
    "before is reused at once. Training runs in the background, one run at a time for everyone "
    "using the app, in the order asked: you can leave the page and come back, or cancel a request."
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


def _form_config() -> RunConfig:
    s = st.session_state
    # Sliders hand back 0.30000000000000004; the run id must see 0.3.
    return RunConfig(rating_weight=round(float(s.rating_weight), 1),
                     retrieval_weight=round(float(s.retrieval_weight), 1), preset=s.preset, epochs=s.epochs,
                     batch_size=s.batch_size, learning_rate=s.learning_rate, optimizer=s.optimizer, split=s.split,
                     dataset=s.dataset)


def _loss_sizes() -> None:
    """What the two weights multiply: each loss's size at these settings, measured on a stored run."""
    config = _form_config()
    try:
        sizes = losses.sizes(config.rating_weight, config.retrieval_weight, config.resolved_preset())
    except UserError:  # settings that make no sense: the Train button says why
        return
    if sizes is None:
        st.caption(f"What the weights weigh: the two losses live on different scales. A run with the "
                   f"**{ui.escape(config.preset)}** preset and these settings must be trained first to measure "
                   "them; then this line shows each loss's size at the chosen weights.")
        return
    share = sizes.share()
    parts = [f"rating loss × weight ≈ **{sizes.rating:.3g}**" if sizes.rating is not None else None,
             f"retrieval loss × weight ≈ **{sizes.retrieval:.3g}**" if sizes.retrieval is not None else None,
             f"so rating is **{share:.0%}** of the total" if share is not None else None]
    st.caption("What the weights weigh, at these settings: " + ", ".join(p for p in parts if p)
               + f" (training losses of the best epoch of run {ui.escape(sizes.run_id)}).")
    if share is not None:
        st.progress(share, text=f"Rating {share:.0%} · retrieval {1 - share:.0%} of the weighted loss")


# No form: every change redraws the estimate and the loss sizes at once (nothing here loads a model).
left, middle, right = st.columns(3)
left.slider("Rating weight", 0.0, 1.0, 1.0, 0.1, format="%.1f", key="rating_weight",
            help="Weight of the rating loss (MSE, in stars squared)")
middle.slider("Retrieval weight", 0.0, 1.0, 1.0, 0.1, format="%.1f", key="retrieval_weight",
              help="Weight of the retrieval loss (softmax cross-entropy over the batch's movies)")
right.number_input("Epochs", 1, MAX_EPOCHS, value=None, step=1, key="epochs",
                   placeholder="the preset's", help="Empty: the preset's number of epochs")
with st.expander("Advanced"):
    a, b, c, d, e, f = st.columns(6)
    a.selectbox("Preset", list(presets.PRESETS), index=list(presets.PRESETS).index("default"), key="preset",
                help="seed: the notebook's settings; default: tuned for this data")
    b.selectbox("Split protocol", PROTOCOLS, key="split", help="; ".join(PROTOCOL_HELP[p] for p in PROTOCOLS)
                + ". Validation always comes from the training part.")
    c.selectbox("Optimizer", [None, *OPTIMIZERS], key="optimizer",
                format_func=lambda o: "the preset's" if o is None else o)
    d.number_input("Learning rate", 1e-5, 10.0, value=None, step=0.001, format="%.4f", key="learning_rate",
                   placeholder="the preset's")
    e.number_input("Batch size", 1, MAX_BATCH, value=None, step=64, key="batch_size",
                   placeholder="the preset's")
    f.selectbox("Dataset", ui.dataset_choices(), key="dataset",
                format_func=lambda n: "the app's data" if n is None else n,
                help="The app's data (MovieLens 100K unless RECSYS_DATA names another copy), or another MovieLens "
                     "this machine holds: put its GroupLens zip in the tfds manual folder (README, Data)")
    st.markdown("  \n".join(_preset_line(name) for name in presets.PRESETS))
_loss_sizes()
st.button("Train", type="primary", on_click=_act, args=("single",), icon=":material/play_arrow:")
st.caption("Or one click for the notebook's experiments (rating / retrieval weight), "
           "with the other settings above:")
buttons = st.columns(len(experiments.NOTEBOOK) + 1)
for col, (name, weights) in zip(buttons, experiments.NOTEBOOK.items()):
    col.button(f"{name.capitalize()} · {weights[0]:g} / {weights[1]:g}", on_click=_act, args=("single", weights),
               width="stretch", key=f"experiment_{name}")
sweep = experiments.SWEEP
buttons[-1].button(f"Sweep: rating {sweep[0]:g}, {sweep[1]:g} … {sweep[-1]:g}", on_click=_act, args=("sweep",),
                   width="stretch", help=f"Train rating weights {', '.join(f'{w:g}' for w in sweep)} with retrieval "
                                         "weight 1, one after another; cached ones are skipped")


def _enqueue(configs: list[RunConfig], kind: str) -> None:
    requests = jobs.enqueue(configs, ui.session_token())
    st.session_state["watching"] = {"batch": [r.id for r in requests], "kind": kind}
    st.session_state.pop("cached_result", None)


action = st.session_state.pop("train_action", None)
if action:
    try:
        base = _form_config()
        if action == "sweep":
            _enqueue([c.validate() for c in experiments.sweep_configs(base)], "sweep")
        else:
            hit = catalog.cached_run(base.validate())
            if hit is not None:  # no job: the stored run answers at once
                st.session_state["cached_result"] = hit.run_id
                ui.set_current_run(hit.run_id)
                st.rerun()  # so the sidebar names the new current run
            else:
                _enqueue([base], "single")
    except UserError as exc:  # an invalid config, one over the time limit, a full queue
        ui.warn(exc)

try:
    _estimate = limits.estimate_seconds(_form_config())
    _limit = limits.max_seconds()
except UserError:
    _estimate = _limit = None
if _estimate is not None:
    over = _estimate > _limit
    st.caption(f"{'⚠️ ' if over else ''}With these settings, a run trains for up to "
               f"{limits.describe(_estimate)} (a sweep: up to {limits.describe(len(sweep) * _estimate)}); requests "
               f"over {limits.describe(_limit)} each are refused. Early stopping often ends a run sooner.")


def _show_run(run_id: str) -> None:
    try:
        run = runs.load(run_id)
    except UserError as exc:
        ui.warn(exc)
        return
    m = views.only_metrics(run.metrics)
    cols = st.columns(len(SHOWN) + 1)
    for col, key in zip(cols, SHOWN):
        col.metric(glossary.label(key), glossary.fmt(key, m.get(key)), help=glossary.METRICS[key].meaning)
    cols[-1].metric("Epochs (best)", f"{run.info.get('stopped_epoch')} ({run.info.get('best_epoch')})")
    st.caption(f"Run {ui.escape(run_id)} · {ui.escape(charts.run_label(run.config_dict, run_id))}")


def _describe(r: jobs.Request) -> str:
    c = r.config
    return (f"rating weight **{c['rating_weight']:g}**, retrieval weight **{c['retrieval_weight']:g}**, "
            f"preset **{ui.escape(c['preset'])}**, {ui.escape(c.get('split', 'random'))} split"
            + (f", **{ui.escape(c['dataset'])}**" if c.get("dataset") else ""))


def _where(r: jobs.Request) -> str:
    if r.state == "running":
        return "training now"
    return "next in line" if r.position == 1 else f"waiting: {r.position} in line"


def _progress(r: jobs.Request, mine: bool, status: jobs.QueueStatus) -> None:
    who = "" if mine else " (requested in another session)"
    st.subheader(f"Training in progress{who}")
    batch = [x.id for x in status.requests if x.batch == r.batch]
    which = f"Run {batch.index(r.id) + 1} of {len(batch)}: " if len(batch) > 1 else ""
    text = _describe(r)
    st.markdown(which + (text[0].lower() if which else text[0].upper()) + text[1:])
    event = r.progress
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
    cols[4].metric("Time left", f"{event['eta_seconds']:.0f} s")
    events = [e for e in jobs.history() if e.get("request") == r.id]
    losses = [k for k in charts.LIVE_LOSSES if events and k in events[-1]]
    for col, loss in zip(st.columns(max(len(losses), 1)), losses):
        col.altair_chart(charts.live_loss_chart(events, loss), width="stretch")


def _cancel(request_id: str) -> None:
    try:
        jobs.cancel(request_id, ui.session_token())
    except UserError as exc:
        st.session_state["cancel_error"] = str(exc)


def _queue(status: jobs.QueueStatus) -> None:
    """The queue as this session sees it: the training request, then this session's waiting ones."""
    session = ui.session_token()
    running = status.running()
    if running is not None:
        _progress(running, session in running.requesters, status)
    mine = [r for r in status.active() if session in r.requesters]
    others = [r for r in status.active() if session not in r.requesters and r.state == "queued"]
    if mine:
        st.subheader("Your requests")
        for r in mine:
            text_col, button_col = st.columns([5, 1], vertical_alignment="center")
            text_col.markdown(f"{_where(r).capitalize()}: {_describe(r)} · up to "
                              f"{limits.describe(r.estimate_seconds)}")
            button_col.button("Cancel", key=f"cancel_{r.id}", on_click=_cancel, args=(r.id,),
                              icon=":material/cancel:", width="stretch")
    if others:
        st.caption(f"{len(others)} request(s) from other sessions are waiting too; one run trains at a time.")


@st.fragment(run_every=POLL_SECONDS)
def live_queue() -> None:
    """Poll the queue and redraw it; rerun the whole page when this session's requests change."""
    status = jobs.status()
    session = ui.session_token()
    active = sorted(r.id for r in status.active() if session in r.requesters)
    if active != st.session_state.get("_active_requests") or not status.active():
        st.session_state["_active_requests"] = active
        st.rerun()  # the whole page: a finished run must show everywhere
    _queue(status)


def _finished(status: jobs.QueueStatus) -> None:
    """What became of this session's last click: its runs, failures and cancellations."""
    watching = st.session_state.get("watching")
    if not watching:
        return
    batch = [r for r in status.requests if r.id in set(watching["batch"])]
    if not batch or any(r.active for r in batch):
        return
    done = [r for r in batch if r.state == "done" and runs.find(r.run_id) is not None]
    if watching["kind"] == "single" and done and not watching.get("shown"):
        watching["shown"] = True
        ui.set_current_run(done[-1].run_id)
        st.rerun()  # so the sidebar names the new current run
    for r in batch:
        if r.state == "failed":
            st.error(f"Training failed: {ui.escape(r.error or 'unknown error')}", icon=":material/error:")
        elif r.state == "cancelled":
            st.info(f"Cancelled: {_describe(r)}", icon=":material/cancel:")
    if not done:
        return
    st.subheader("Last training job")
    seconds = max(r.finished or 0 for r in batch) - min(r.enqueued for r in batch)
    st.caption(f"Finished after {seconds:.0f} s: {len(done)} run(s), {sum(r.cached for r in done)} from the cache.")
    if len(done) == 1:
        _show_run(done[0].run_id)
    else:
        found = [runs.find(r.run_id) for r in done]
        frame = charts.runs_frame([f.summary() for f in found if f is not None])
        st.dataframe(charts.readable(frame[["label", *SHOWN, "train_seconds"]], metrics=SHOWN),
                     hide_index=True)
    st.page_link("app_pages/compare.py", label="Compare the runs", icon=":material/leaderboard:")


if "cancel_error" in st.session_state:
    ui.warn(UserError(st.session_state.pop("cancel_error")))
if "cached_result" in st.session_state and runs.find(st.session_state["cached_result"]) is not None:
    st.success("Cached: this config was trained before, so its stored run is shown, and no training was needed.",
               icon=":material/bolt:")
    _show_run(st.session_state["cached_result"])

queue_status = jobs.status()
_finished(queue_status)
if queue_status.active():
    st.session_state["_active_requests"] = sorted(
        r.id for r in queue_status.active() if ui.session_token() in r.requesters)
    live_queue()
