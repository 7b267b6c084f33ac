"""Compare: metrics, the rating/retrieval trade-off and training curves of chosen runs."""
import streamlit as st

import ui
from recsys import charts, runs
from recsys.errors import UserError

ui.page("Compare", "📊")
st.title("Compare runs")

summaries = ui.run_summaries()
if not summaries:
    ui.no_run()
    st.stop()

frame = charts.runs_frame(summaries)
labels = dict(zip(frame.run_id, frame.label))
current = ui.current_run_id()
chosen = st.multiselect("Runs to compare", list(frame.run_id), default=list(frame.run_id),
                        format_func=labels.get, key="compare_runs")
show_baseline = st.toggle("Show the popularity baseline", value=True,
                          help="Every user gets the most-rated movies; each movie's mean rating as its rating")
if not chosen:
    st.info("Choose at least one run.", icon=":material/info:")
    st.stop()
picked = frame[frame.run_id.isin(chosen)]
base = ui.baseline() if show_baseline else None

left, right = st.columns(2, gap="large")
left.altair_chart(charts.rmse_chart(picked, base), width="stretch")
right.altair_chart(charts.top_k_chart(picked, base), width="stretch")
st.caption("Each run has one colour in these charts and the training curves; the RMSE chart names them. "
           "Hover a point or line for its run.")
st.altair_chart(charts.tradeoff_chart(picked, base), width="stretch")
st.caption("Each point is a run, coloured by the share of the loss weight that goes to rating; its weights "
           "(rating / retrieval) are written beside it, or in its tooltip when there are many runs. "
           "The dashed step line is the Pareto front: the runs no other run beats on both RMSE and "
           "top-100 accuracy.")

st.subheader("Training curves")
curves = charts.curves_frame({labels[r]: runs.load(r).history for r in chosen})
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
st.dataframe(charts.readable(picked), hide_index=True, column_config={
    "RMSE": st.column_config.NumberColumn(format="%.4f"),
    **{f"Top-{k} accuracy": st.column_config.NumberColumn(format="percent") for k in (1, 5, 10, 50, 100)},
    "Recall@10": st.column_config.NumberColumn(format="percent"),
    "Recall@100": st.column_config.NumberColumn(format="percent"),
    "Training time (s)": st.column_config.NumberColumn(format="%.1f"),
})

st.subheader("Current run")
ids = list(frame.run_id)
target = st.selectbox("Run", ids, index=ids.index(current) if current in ids else 0, format_func=labels.get,
                      key="manage_run")
use_col, delete_col = st.columns(2, gap="large")
with use_col:
    if target == current:
        st.success("This is the current run: Home, Recommend and Search use it.", icon=":material/check:")
    elif st.button("Make it the current run", type="primary"):
        ui.set_current_run(target)
        st.rerun()
with delete_col:
    sure = st.checkbox("Yes, delete this run and its files", key=f"confirm_delete_{target}")
    if st.button("Delete run", disabled=not sure, icon=":material/delete:"):
        try:
            runs.delete(target)
        except UserError as exc:
            ui.warn(exc)
        else:
            if target == current:
                ui.set_current_run(None)
            st.toast(f"Deleted run {target}")
            st.rerun()
