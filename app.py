"""Home: what the app is, the dataset in numbers, the current run, and the other pages."""
import streamlit as st

import ui
from recsys import charts
from recsys.errors import UserError

ui.page("Home", "🎬")
st.title("Multi-task movie recommender")
st.markdown(
    "One TensorFlow Recommenders model learns two tasks on **MovieLens 100K** at once: "
    "predicting the stars a user gives a movie (*rating*, scored by RMSE) and finding the "
    "movies a user watches among all 1,682 (*retrieval*, scored by top-k accuracy). "
    "The two losses are added with weights you choose; this app trains such runs, "
    "compares them, and serves recommendations from them, exactly and through Annoy."
)

st.subheader("The dataset")
try:
    summary, ratings = ui.dataset()
except UserError as exc:
    ui.warn(exc)
else:
    numbers, histogram = st.columns([1, 2], gap="large")
    numbers.metric("Ratings", f"{summary['ratings']:,}")
    numbers.metric("Users", f"{summary['users']:,}")
    numbers.metric("Movies", f"{summary['movies']:,}")
    numbers.caption(f"Mean rating {ratings.mean():.2f} · source: {ui.escape(summary['source'])}")
    histogram.altair_chart(charts.rating_histogram(ratings), width="stretch")

st.subheader("The current run")
run = ui.current_run()
if run is None:
    ui.no_run()
else:
    run_id, cfg = run.run_id, run.config
    st.markdown(
        f"Run {ui.escape(run_id)}: rating weight **{cfg.rating_weight:g}**, retrieval weight "
        f"**{cfg.retrieval_weight:g}**, preset **{ui.escape(cfg.preset)}**, "
        f"{run.info.get('stopped_epoch', '?')} epochs (best {run.info.get('best_epoch', '?')}), "
        f"trained in {run.info.get('train_seconds', 0):.0f} s."
    )
    m = run.metrics
    cols = st.columns(4)
    def shown(key: str, form: str) -> str:  # a run of another version may lack a metric
        return format(m[key], form) if isinstance(m.get(key), (int, float)) else "–"

    cols[0].metric("Test RMSE", shown("rmse", ".3f"), help="Lower is better")
    cols[1].metric("Top-10 accuracy", shown("top_10_accuracy", ".1%"))
    cols[2].metric("Top-100 accuracy", shown("top_100_accuracy", ".1%"))
    cols[3].metric("Recall@10", shown("recall_at_10", ".1%"), help="Among movies the user had not rated")
    if run.older:
        st.caption(f"Made by an older version ({ui.escape(run.older)}): its metrics are shown, but "
                   "Recommend and Search need a run made by this version.")
    st.caption("Choose another run on the Compare page.")

st.subheader("Pages")
ui.page_links()
