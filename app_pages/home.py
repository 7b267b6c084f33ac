"""Home: what the app is, the dataset in numbers, the current run against the baselines, the pages."""
import streamlit as st

import ui
from recsys import charts, datasets, glossary, views
from recsys.errors import UserError

# The current run's headline numbers: the two tasks, then lists, then beyond accuracy.
SHOWN = ("rmse", "top_10_accuracy", "top_100_accuracy", "recall_at_10", "liked_recall_at_10", "ndcg_at_10",
         "coverage_at_10", "novelty_at_10")
POPULARITY = "Popularity"  # its label in ui.baselines

st.title("Multi-task movie recommender")
st.markdown(
    "One TensorFlow Recommenders model learns two tasks on **MovieLens 100K** at once: "
    "predicting the stars a user gives a movie (*rating*, scored by RMSE) and finding the "
    "movies a user watches among all 1,682 (*retrieval*, scored by top-k accuracy). "
    "The two losses are added with weights you choose; this app trains such runs, "
    "compares them with classic recommenders, and serves recommendations from them, "
    "with the reasons behind each, for MovieLens users and for you."
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
    cfg = run.config
    st.markdown(
        f"Run {ui.escape(run.run_id)}: rating weight **{cfg.rating_weight:g}**, retrieval weight "
        f"**{cfg.retrieval_weight:g}**, preset **{ui.escape(cfg.preset)}**, trained on "
        f"**{ui.escape(run.info.get('dataset') or cfg.dataset or datasets.DEFAULT)}** and measured on the "
        f"**{ui.escape(views.split_name(cfg.split, cfg.split_seed))}**, "
        f"{run.info.get('stopped_epoch', '?')} epochs (best {run.info.get('best_epoch', '?')}), "
        f"trained in {run.info.get('train_seconds', 0):.0f} s."
    )
    metrics = views.only_metrics(run.metrics)
    base = ui.run_baselines(run)
    for row in range(0, len(SHOWN), 4):
        for col, key in zip(st.columns(4), SHOWN[row:row + 4]):
            meaning = glossary.METRICS[key].meaning
            direction = "Higher" if glossary.METRICS[key].higher_is_better else "Lower"
            col.metric(glossary.label(key), glossary.fmt(key, metrics.get(key)),
                       help=f"{meaning} {direction} is better.")
            col.caption(ui.escape(views.compared(key, metrics.get(key), base, POPULARITY)))
    st.caption("Under each number: the classic baselines on the same split (Compare has them all).")
    if run.older:
        st.caption(f"Made by an older version ({ui.escape(run.older)}): its metrics are shown, but "
                   "Recommend and Search need a run made by this version.")
    st.caption("Choose another run on the Compare page.")

st.subheader("Pages")
ui.page_links()
