"""Tables and Altair charts of runs for the app: plain DataFrames in, charts out.

Nothing here imports Streamlit or TensorFlow, so the builders are tested on their own.
"""
from __future__ import annotations

import altair as alt
import pandas as pd

from recsys.experiments import pareto_front
from recsys.metrics import KS

TOP_K = [f"top_{k}_accuracy" for k in KS]
BASELINE = "popularity"
LABEL_LIMIT = 320  # pixels of a run label shown on an axis
LABELLED_POINTS = 6  # the trade-off chart writes each point's weights up to this many runs
# Per-epoch history keys worth a curve, in the order the page offers them.
CURVE_METRICS = {
    "loss": "Total loss", "rating_loss": "Rating loss", "retrieval_loss": "Retrieval loss",
    "val_rmse": "Validation RMSE", "val_top_100_accuracy": "Validation top-100 accuracy",
    "val_top_10_accuracy": "Validation top-10 accuracy", "val_selection_loss": "Validation selection loss",
}
# Readable column names for the runs table.
COLUMNS = {
    "label": "Run", "rating_weight": "Rating weight", "retrieval_weight": "Retrieval weight",
    "preset": "Preset", "epochs": "Epochs", "stopped_epoch": "Epochs run", "best_epoch": "Best epoch",
    "batch_size": "Batch size", "learning_rate": "Learning rate", "optimizer": "Optimizer",
    "rmse": "RMSE", **{f"top_{k}_accuracy": f"Top-{k} accuracy" for k in KS},
    "recall_at_10": "Recall@10", "recall_at_100": "Recall@100", "train_seconds": "Training time (s)",
    "default": "Default", "run_id": "Run id",
}


def run_label(config: dict, run_id: str) -> str:
    """A short, unique name for a run: its weights, preset, epochs and id prefix."""
    resolved = config.get("resolved", {})
    return (f"{config['rating_weight']:g} / {config['retrieval_weight']:g} · {config['preset']}"
            f" · {resolved.get('epochs', config.get('epochs'))} ep · {run_id[:6]}")


def runs_frame(summaries: list[dict]) -> pd.DataFrame:
    """One row per run summary (`catalog.run_summaries()`), flattened for tables and charts."""
    rows = []
    for s in summaries:
        cfg, resolved = s["config"], s["config"].get("resolved", {})
        rows.append({
            "run_id": s["run_id"], "label": run_label(cfg, s["run_id"]),
            "rating_weight": float(cfg["rating_weight"]), "retrieval_weight": float(cfg["retrieval_weight"]),
            "preset": cfg["preset"], "epochs": resolved.get("epochs"), "stopped_epoch": s.get("stopped_epoch"),
            "best_epoch": s.get("best_epoch"), "batch_size": resolved.get("batch_size"),
            "learning_rate": resolved.get("learning_rate"), "optimizer": resolved.get("optimizer"),
            **{k: s["metrics"].get(k) for k in ("rmse", *TOP_K, "recall_at_10", "recall_at_100")},
            "train_seconds": s.get("train_seconds"), "default": bool(s.get("default")),
        })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs table with human column names, in display order."""
    return frame[[c for c in COLUMNS if c in frame]].rename(columns=COLUMNS)


def run_colors(labels) -> alt.Scale:
    """One colour per run label, the same in every chart given the same runs."""
    return alt.Scale(domain=sorted(set(labels)), scheme="tableau20")


def panel_height(n_runs: int) -> int:
    """Height of the RMSE and top-k charts, which sit side by side: room for every run's name."""
    return max(300, 110 + 24 * n_runs)  # Streamlit's "fit" counts the title and axes in


def rating_histogram(ratings: pd.Series) -> alt.Chart:
    """Bars: how many ratings gave 1, 2, 3, 4 and 5 stars."""
    counts = ratings.round().astype(int).value_counts().sort_index()
    frame = pd.DataFrame({"stars": counts.index.astype(str), "ratings": counts.to_numpy()})
    return alt.Chart(frame, title="Ratings by stars").mark_bar().encode(
        x=alt.X("stars:O", title="Stars", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("ratings:Q", title="Ratings"),
        tooltip=[alt.Tooltip("stars:O", title="Stars"), alt.Tooltip("ratings:Q", title="Ratings", format=",")],
    ).properties(height=260)


def _baseline_rule(value: float, axis: str) -> alt.Chart:
    frame = pd.DataFrame({"value": [value], "label": [BASELINE]})
    return alt.Chart(frame).mark_rule(strokeDash=[6, 4], color="gray", strokeWidth=1.5).encode(
        **{axis: "value:Q"}, tooltip=[alt.Tooltip("label:N", title="Baseline"), alt.Tooltip("value:Q", format=".4f")])


def _title(text: str, baseline: str | None) -> alt.TitleParams:
    # The baseline is named in the subtitle: a label inside the plot lands on the dots.
    return alt.TitleParams(text, subtitle=f"dashed grey: {baseline}" if baseline else "")


def rmse_chart(runs: pd.DataFrame, baseline: dict | None = None) -> alt.LayerChart:
    """Test RMSE per run as dots (lower is better), the baseline as a dashed line.

    Its axis names every run next to its colour, so it is the key for the charts beside it.
    """
    # Dots, not bars: RMSEs differ in the second decimal, and bars must start at 0.
    named = baseline and baseline.get("rmse") is not None
    title = _title("Test RMSE (lower is better)", f"{BASELINE} baseline, {baseline['rmse']:.3f}" if named else None)
    dots = alt.Chart(runs, title=title).mark_circle(size=120).encode(
        x=alt.X("rmse:Q", title="RMSE", scale=alt.Scale(zero=False, padding=20)),
        y=alt.Y("label:N", title=None, sort=alt.EncodingSortField("rmse"), axis=alt.Axis(labelLimit=LABEL_LIMIT)),
        color=alt.Color("label:N", legend=None, scale=run_colors(runs.label)),
        tooltip=[alt.Tooltip("label:N", title="Run"), alt.Tooltip("rmse:Q", title="RMSE", format=".4f")],
    )
    layers = [dots]
    if named:
        layers.append(_baseline_rule(baseline["rmse"], "x"))
    return alt.layer(*layers).properties(height=panel_height(len(runs)))


def top_k_frame(runs: pd.DataFrame, baseline: dict | None = None) -> pd.DataFrame:
    """Long form: one row per (run, k) with the top-k accuracy, baseline included."""
    rows = [{"label": r["label"], "k": k, "accuracy": r[f"top_{k}_accuracy"]}
            for _, r in runs.iterrows() for k in KS]
    if baseline:
        rows += [{"label": BASELINE, "k": k, "accuracy": baseline[f"top_{k}_accuracy"]} for k in KS]
    return pd.DataFrame(rows, columns=["label", "k", "accuracy"])


def top_k_chart(runs: pd.DataFrame, baseline: dict | None = None) -> alt.LayerChart:
    """Top-k accuracy against k, one line per run; the baseline dashed and grey."""
    frame = top_k_frame(runs, baseline)
    x = alt.X("k:O", title="k", axis=alt.Axis(labelAngle=0))
    y = alt.Y("accuracy:Q", title="Top-k accuracy", axis=alt.Axis(format="%"))
    tooltip = [alt.Tooltip("label:N", title="Run"), alt.Tooltip("k:O"),
               alt.Tooltip("accuracy:Q", title="Accuracy", format=".2%")]
    title = _title("Test top-k accuracy (higher is better)", f"{BASELINE} baseline" if baseline else None)
    model = alt.Chart(frame[frame.label != BASELINE], title=title).mark_line(
        point=True).encode(x=x, y=y, tooltip=tooltip,
                           color=alt.Color("label:N", legend=None, scale=run_colors(runs.label)))
    height = panel_height(len(runs))
    if not baseline:
        return alt.layer(model).properties(height=height)
    base_frame = frame[frame.label == BASELINE]
    base = alt.Chart(base_frame).mark_line(
        point=alt.OverlayMarkDef(color="gray"), strokeDash=[6, 4], color="gray").encode(x=x, y=y, tooltip=tooltip)
    return (model + base).properties(height=height)


def tradeoff_chart(runs: pd.DataFrame, baseline: dict | None = None) -> alt.LayerChart:
    """RMSE against top-100 accuracy, one point per run, with the Pareto front drawn."""
    frame = runs.assign(
        rating_share=runs.rating_weight / (runs.rating_weight + runs.retrieval_weight),
        weights=[f"{a:g} / {b:g}" for a, b in zip(runs.rating_weight, runs.retrieval_weight)])
    x = alt.X("rmse:Q", title="Test RMSE (lower is better)", scale=alt.Scale(zero=False))
    y = alt.Y("top_100_accuracy:Q", title="Test top-100 accuracy (higher is better)",
              scale=alt.Scale(zero=False), axis=alt.Axis(format="%"))
    tooltip = [alt.Tooltip("label:N", title="Run"), alt.Tooltip("weights:N", title="Rating / retrieval"),
               alt.Tooltip("rmse:Q", title="RMSE", format=".4f"),
               alt.Tooltip("top_100_accuracy:Q", title="Top-100", format=".2%")]
    front = alt.Chart(pareto_front(frame), title="Trade-off: rating error against retrieval accuracy").mark_line(
        interpolate="step-after", color="#888", strokeDash=[4, 3]).encode(x=x, y=y)
    points = alt.Chart(frame).mark_circle(size=160, opacity=0.9, stroke="black", strokeWidth=0.5).encode(
        x=x, y=y, tooltip=tooltip,
        color=alt.Color("rating_share:Q", title="Rating share w_r / (w_r + w_t)",
                        scale=alt.Scale(scheme="viridis", domain=[0, 1])))
    chart = front + points
    if len(frame) <= LABELLED_POINTS:  # more crowd into an unreadable blot; the tooltip has them
        chart += alt.Chart(frame).mark_text(align="left", dx=9, dy=-7, fontSize=11).encode(x=x, y=y, text="weights:N")
    if baseline:
        base = pd.DataFrame({"rmse": [baseline["rmse"]], "top_100_accuracy": [baseline["top_100_accuracy"]],
                             "label": [BASELINE]})
        chart += alt.Chart(base).mark_point(shape="diamond", size=160, color="gray", filled=True).encode(
            x=x, y=y, tooltip=[alt.Tooltip("label:N", title="Baseline"), *tooltip[2:]])
        chart += alt.Chart(base).mark_text(align="left", dx=9, color="gray").encode(x=x, y=y, text="label:N")
    return chart.properties(height=420)


def curves_frame(histories: dict[str, list[dict]]) -> pd.DataFrame:
    """Long form of per-epoch histories: one row per (run, epoch, metric)."""
    rows = [{"label": label, "epoch": h["epoch"], "metric": k, "value": h[k]}
            for label, history in histories.items() for h in history for k in CURVE_METRICS if k in h]
    return pd.DataFrame(rows, columns=["label", "epoch", "metric", "value"])


def _epoch_axis(epochs: pd.Series) -> alt.X:
    # Whole epochs only, at most ~10 ticks: Vega would put ticks at 1.5 for a 2-epoch run.
    last = int(epochs.max()) if len(epochs) else 1
    step = max(1, -(-last // 10))
    return alt.X("epoch:Q", title="Epoch", scale=alt.Scale(domain=[1, max(last, 2)]),
                 axis=alt.Axis(values=list(range(1, last + 1, step)), format="d"))


def curve_chart(curves: pd.DataFrame, metric: str) -> alt.Chart:
    """One metric over the epochs, one line per run, coloured as in the RMSE chart."""
    frame = curves[curves.metric == metric]
    return alt.Chart(frame, title=CURVE_METRICS.get(metric, metric)).mark_line(point=True).encode(
        x=_epoch_axis(frame.epoch),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("label:N", legend=None, scale=run_colors(curves.label)),
        tooltip=[alt.Tooltip("label:N", title="Run"), "epoch:Q", alt.Tooltip("value:Q", format=".4f")],
    ).properties(height=260)


LIVE_LOSSES = ("loss", "rating_loss", "retrieval_loss")


def live_loss_chart(events: list[dict], loss: str) -> alt.Chart:
    """One loss of the run training now, growing epoch by epoch (each loss has its own scale)."""
    frame = pd.DataFrame([{"epoch": e["epoch"], "value": e[loss]} for e in events if loss in e],
                         columns=["epoch", "value"])
    return alt.Chart(frame, title=CURVE_METRICS[loss]).mark_line(point=True).encode(
        x=_epoch_axis(frame.epoch),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        tooltip=["epoch:Q", alt.Tooltip("value:Q", title=CURVE_METRICS[loss], format=".4f")],
    ).properties(height=220)


MAP_POINT_SIZES = (8, 400)  # pixels^2 for the least and the most rated movie


def movie_map_chart(movies: pd.DataFrame, highlight: dict[str, list[str]] | None = None) -> alt.LayerChart:
    """Every movie on the 2-D map: colour by first genre, size by number of ratings, title on hover.

    `highlight` names groups of movie ids drawn again on top, ringed and labelled in the
    legend (e.g. {"Chosen movie": [...], "Neighbours": [...], "Rated": [...]}).
    """
    tooltip = [alt.Tooltip("title:N", title="Title"), alt.Tooltip("genre:N", title="Genre"),
               alt.Tooltip("ratings:Q", title="Ratings", format=",")]
    x = alt.X("x:Q", title="first principal axis", axis=alt.Axis(labels=False, ticks=False))
    y = alt.Y("y:Q", title="second principal axis", axis=alt.Axis(labels=False, ticks=False))
    size = alt.Size("ratings:Q", title="Ratings", scale=alt.Scale(range=list(MAP_POINT_SIZES)))
    base = alt.Chart(movies).mark_circle(opacity=0.55).encode(
        x=x, y=y, size=size, tooltip=tooltip, color=alt.Color("genre:N", title="First genre",
                                                               scale=alt.Scale(scheme="tableau20")))
    layers = [base]
    groups = [(name, ids) for name, ids in (highlight or {}).items() if ids]
    if groups:
        marked = pd.concat([movies[movies.movie_id.isin(ids)].assign(group=name) for name, ids in groups])
        layers.append(alt.Chart(marked).mark_point(filled=False, strokeWidth=2.5, size=260).encode(
            x=x, y=y, tooltip=[*tooltip, alt.Tooltip("group:N", title="Shown as")],
            shape=alt.Shape("group:N", title="Highlighted", sort=[n for n, _ in groups]),
            stroke=alt.Stroke("group:N", title="Highlighted", sort=[n for n, _ in groups],
                              scale=alt.Scale(range=["black", "#d62728", "#1f77b4", "#2ca02c"]))))
    return alt.layer(*layers).properties(height=560).interactive()
