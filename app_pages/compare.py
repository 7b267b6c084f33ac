"""Compare: chosen runs against the classic baselines: accuracy, beyond accuracy, trade-offs, curves."""
import streamlit as st

import ui
from recsys import charts, glossary, runs, views
from recsys.baselines import LABELS, NAMES
from recsys.errors import UserError

st.title("Compare runs")


def _delete(name: str, confirm_key: str, current: str | None) -> None:
    """Delete after the confirmation, checked here on the server: a forged click on the
    disabled button deletes nothing."""
    if not st.session_state.get(confirm_key):
        st.warning("Tick the confirmation first; nothing was deleted.", icon=":material/warning:")
        return
    try:
        runs.delete(name)
    except UserError as exc:
        ui.warn(exc)
        return
    if name == current:
        ui.set_current_run(None)
    st.toast(f"Deleted {ui.escape(name)}")
    st.rerun()


def _damaged_section(current: str | None) -> None:
    damaged = runs.scan()[1]
    if not damaged:
        return
    st.subheader("Damaged runs")
    st.caption("These folders of the run store can't be read. Nothing else is affected; delete them here "
               "or with `python -m recsys delete NAME`.")
    for entry in damaged:
        name_col, reason_col, sure_col, button_col = st.columns([2, 4, 2, 1], vertical_alignment="center")
        name_col.markdown(f"**{ui.escape(entry.name)}**")
        reason_col.markdown(ui.escape(entry.reason))
        key = f"confirm_delete_damaged_{entry.name}"
        sure = sure_col.checkbox("Yes, delete it", key=key)
        if button_col.button("Delete", key=f"delete_damaged_{entry.name}", disabled=not sure,
                             icon=":material/delete:"):
            _delete(entry.name, key, current)


def _metric_columns(keys) -> dict:
    """Table columns named and explained by the glossary, formatted as the metric reads."""
    return {glossary.label(k): st.column_config.NumberColumn(
        format=charts.table_format(k),
        help=f"{glossary.METRICS[k].meaning} {'Higher' if glossary.METRICS[k].higher_is_better else 'Lower'} "
             "is better.") for k in keys}


summaries = ui.run_summaries()
if not summaries:
    _damaged_section(None)
    ui.no_run()
    st.stop()

frame = charts.runs_frame(summaries)
labels = dict(zip(frame.run_id, frame.label))
current = ui.current_run_id()
chosen = st.multiselect("Runs to compare", list(frame.run_id), default=list(frame.run_id),
                        format_func=labels.get, key="compare_runs")
shown = st.pills("Classic baselines, on the same split as the runs", NAMES, selection_mode="multi",
                 default=list(NAMES), format_func=LABELS.get, key="compare_baselines",
                 help="Popularity: everyone gets the most-rated movies. EASE: a closed-form item-item linear "
                      "model. Item-kNN: movies like the ones the user rated. Each is fitted on the same training "
                      "ratings as the runs, its setting chosen on validation.")
if not chosen:
    st.info("Choose at least one run.", icon=":material/info:")
    st.stop()
picked = frame[frame.run_id.isin(chosen)]
splits = sorted(set(zip(picked.split, picked.split_seed)))
base = ui.baselines(splits, shown or [])
if len(splits) > 1:
    st.caption("The chosen runs were measured on different splits: each baseline is shown once per split, "
               "and a run is only comparable with the marks of its own split.")

left, right = st.columns(2, gap="large")
left.altair_chart(charts.rmse_chart(picked, base), width="stretch")
right.altair_chart(charts.top_k_chart(picked, base), width="stretch")
st.caption("Each run has one colour in these charts and the training curves; the RMSE chart names them. "
           "Hover a point or line for its run. EASE predicts no ratings, so it has no RMSE.")

st.subheader("Trade-off")
axes = charts.available_metrics(picked)
x_col, y_col = st.columns(2)
x = x_col.selectbox("Across", axes, index=axes.index("rmse") if "rmse" in axes else 0,
                    format_func=charts.axis_title, key="tradeoff_x")
y_default = "top_100_accuracy" if "top_100_accuracy" in axes else axes[min(1, len(axes) - 1)]
y = y_col.selectbox("Up", axes, index=axes.index(y_default), format_func=charts.axis_title, key="tradeoff_y")
st.altair_chart(charts.tradeoff_chart(picked, base, x, y), width="stretch")
st.caption(ui.escape(
    f"{glossary.label(x)}: {glossary.METRICS[x].meaning} {glossary.label(y)}: {glossary.METRICS[y].meaning}")
    + " Each point is a run, coloured by the share of the loss weight that goes to rating; its weights "
      "(rating / retrieval) are written beside it, or in its tooltip when there are many runs. The dashed step "
      "line is the Pareto front for these two axes: the runs no other run beats on both.")

st.subheader("Beyond accuracy")
st.altair_chart(charts.activity_chart(picked, base), width="stretch")
st.dataframe(views.with_baselines(picked, base, charts.BEYOND), hide_index=True,
             column_config=_metric_columns(charts.BEYOND))
st.caption("Whether the lists reach the whole catalogue, how obvious their picks are, and how well they serve "
           "users with few or many ratings; the baselines on the same split for comparison.")

st.subheader("Training curves")
histories = {r.run_id: r.history for r in runs.list_runs()}
curves = charts.curves_frame({labels[r]: histories.get(r, []) for r in chosen})
available = [m for m in charts.CURVE_METRICS if m in set(curves.metric)]
metrics = st.multiselect("Curves", available, default=[m for m in ("val_rmse", "val_top_100_accuracy", "loss")
                                                       if m in available],
                         format_func=charts.CURVE_METRICS.get, key="curves")
columns = st.columns(2, gap="large")
for i, metric in enumerate(metrics):
    columns[i % 2].altair_chart(charts.curve_chart(curves, metric), width="stretch")
st.caption("Losses are on the training data (with dropout); validation metrics on the 10% held out for "
           "choosing the best epoch. The test split is only used for the metrics above.")

st.subheader("Runs")
st.dataframe(views.with_baselines(picked, base, charts.ACCURACY), hide_index=True,
             column_config=_metric_columns(charts.ACCURACY))
with st.expander("Every setting of the chosen runs"):
    st.dataframe(charts.readable(picked), hide_index=True, column_config={
        **_metric_columns(charts.ACCURACY),
        "Training time (s)": st.column_config.NumberColumn(format="%.1f"),
    })

st.subheader("Current run")
ids = list(frame.run_id)
target = st.selectbox("Run", ids, index=ids.index(current) if current in ids else 0, format_func=labels.get,
                      key="manage_run")
use_col, delete_col = st.columns(2, gap="large")
with use_col:
    if target == current:
        st.success("This is the current run: Home, Recommend, the map and Search use it.", icon=":material/check:")
    elif st.button("Make it the current run", type="primary"):
        ui.set_current_run(target)
        st.rerun()
with delete_col:
    confirm = f"confirm_delete_{target}"
    sure = st.checkbox("Yes, delete this run and its files", key=confirm)
    if st.button("Delete run", disabled=not sure, icon=":material/delete:"):
        _delete(target, confirm, current)
older = [s for s in summaries if s.get("older")]
if older:
    st.caption(ui.escape("Made by an older version (metrics only; Recommend and Search need a run made by this "
                         "version): " + "; ".join(f"{labels.get(s['run_id'], s['run_id'])}: {s['older']}"
                                                  for s in older)))

_damaged_section(current)
