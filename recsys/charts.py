"""Tables and Altair charts of runs for the app: plain DataFrames in, charts out.

Nothing here imports Streamlit or TensorFlow, so the builders are tested on their own.
Metric names, directions and formats come from `recsys.glossary`; the Pareto rule
from `recsys.experiments`.

Baselines are passed as `{label: metrics}` (e.g. {"Popularity": {...}, "EASE": {...}}):
each is drawn as a grey reference mark with its own dash pattern and named in a legend.
"""
from __future__ import annotations

import altair as alt
import pandas as pd

from recsys import glossary
from recsys.experiments import pareto_front
from recsys.metrics import KS
from recsys.split import DEFAULT_SEED

TOP_K = [f"top_{k}_accuracy" for k in KS]
LABEL_LIMIT = 320  # pixels of a run label shown on an axis
LABELLED_POINTS = 6  # the trade-off chart writes each point's weights up to this many runs
BASELINE_COLOR = "#777"
# One dash pattern per baseline, in the order given (three baselines, on up to two splits).
BASELINE_DASHES = ([6, 4], [2, 2], [10, 3, 2, 3], [1, 3], [12, 2], [4, 2, 1, 2])
BASELINE_SHAPES = ("diamond", "square", "triangle-up", "cross", "triangle-down", "circle")
# Per-epoch history keys worth a curve, in the order the page offers them.
CURVE_METRICS = {
    "loss": "Total loss", "rating_loss": "Rating loss", "retrieval_loss": "Retrieval loss",
    "val_rmse": "Validation RMSE", "val_top_100_accuracy": "Validation top-100 accuracy",
    "val_top_10_accuracy": "Validation top-10 accuracy", "val_selection_loss": "Validation selection loss",
}
# Every metric a run may report, as runs_frame's columns (the per-activity recall spread out).
METRIC_COLUMNS = tuple(glossary.METRICS)
# What the runs table shows by default: accuracy, then what lies beyond it.
ACCURACY = ("rmse", "top_10_accuracy", "top_100_accuracy", "recall_at_10", "recall_at_100", "liked_recall_at_10",
            "ndcg_at_10")
BEYOND = ("coverage_at_10", "novelty_at_10", "mean_popularity_at_10", "recall_at_10_light", "recall_at_10_medium",
          "recall_at_10_heavy", "low_rated_share_at_10")
CONFIG_COLUMNS = {
    "label": "Run", "rating_weight": "Rating weight", "retrieval_weight": "Retrieval weight",
    "preset": "Preset", "split": "Split", "split_seed": "Split seed", "epochs": "Epochs",
    "stopped_epoch": "Epochs run", "best_epoch": "Best epoch", "batch_size": "Batch size",
    "learning_rate": "Learning rate", "optimizer": "Optimizer",
}
TAIL_COLUMNS = {"train_seconds": "Training time (s)", "default": "Default", "run_id": "Run id"}


def run_label(config: dict, run_id: str) -> str:
    """A short, unique name for a run: weights, preset, split protocol, epochs and id prefix.

    The split seed is named only when it is not the usual one, so the common label stays short.
    """
    resolved = config.get("resolved", {})
    split = config.get("split", "random")
    seed = config.get("split_seed", DEFAULT_SEED)
    split_text = split if seed == DEFAULT_SEED or split != "random" else f"{split} {seed}"
    return (f"{config['rating_weight']:g} / {config['retrieval_weight']:g} · {config['preset']} · {split_text}"
            f" · {resolved.get('epochs', config.get('epochs'))} ep · {run_id[:6]}")


def runs_frame(summaries: list[dict]) -> pd.DataFrame:
    """One row per run summary (`catalog.run_summaries()`), flattened for tables and charts.

    Every glossary metric is a column (NaN where a run lacks it, e.g. one of an older version).
    """
    rows = []
    for s in summaries:
        cfg, resolved = s["config"], s["config"].get("resolved", {})
        metrics = glossary.flat(s.get("metrics") or {})
        rows.append({
            "run_id": s["run_id"], "label": run_label(cfg, s["run_id"]),
            "rating_weight": float(cfg["rating_weight"]), "retrieval_weight": float(cfg["retrieval_weight"]),
            "preset": cfg["preset"], "split": cfg.get("split", "random"),
            "split_seed": int(cfg.get("split_seed", DEFAULT_SEED)), "epochs": resolved.get("epochs"),
            "stopped_epoch": s.get("stopped_epoch"), "best_epoch": s.get("best_epoch"),
            "batch_size": resolved.get("batch_size"), "learning_rate": resolved.get("learning_rate"),
            "optimizer": resolved.get("optimizer"),
            **{k: _number(metrics.get(k)) for k in METRIC_COLUMNS},
            "train_seconds": s.get("train_seconds"), "default": bool(s.get("default")),
        })
    return pd.DataFrame(rows, columns=[*CONFIG_COLUMNS, *METRIC_COLUMNS, *TAIL_COLUMNS])


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def readable(frame: pd.DataFrame, metrics: tuple[str, ...] = ACCURACY) -> pd.DataFrame:
    """The runs table with human column names: the config, then `metrics`, then time and id."""
    names = {**CONFIG_COLUMNS, **{k: glossary.label(k) for k in metrics}, **TAIL_COLUMNS}
    return frame[[c for c in names if c in frame]].rename(columns=names)


def available_metrics(frame: pd.DataFrame) -> list[str]:
    """The glossary metrics at least one row of `frame` has a value for, in glossary order."""
    return [k for k in METRIC_COLUMNS if k in frame and frame[k].notna().any()]


def run_colors(labels) -> alt.Scale:
    """One colour per run label, the same in every chart given the same runs."""
    return alt.Scale(domain=sorted(set(labels)), scheme="tableau20")


def panel_height(n_runs: int, n_baselines: int = 0) -> int:
    """Height of the RMSE and top-k charts, which sit side by side: room for every run's name,
    and for the baselines' legend under the top-k chart (Streamlit's "fit" counts it in)."""
    legend = 40 + 24 * n_baselines if n_baselines else 0
    return max(300, 110 + 24 * n_runs) + legend


def axis_title(key: str) -> str:
    """A metric's name and which way is better, for an axis or a chart title."""
    metric = glossary.METRICS.get(key)
    if metric is None:
        return key
    return f"{metric.label} ({'higher' if metric.higher_is_better else 'lower'} is better)"


def _percent(key: str) -> bool:
    metric = glossary.METRICS.get(key)
    return metric is not None and metric.percent


def _tooltip_format(key: str) -> str:
    return ".2%" if _percent(key) else ".4f"


def rating_histogram(ratings: pd.Series) -> alt.Chart:
    """Bars: how many ratings gave 1, 2, 3, 4 and 5 stars."""
    counts = ratings.round().astype(int).value_counts().sort_index()
    frame = pd.DataFrame({"stars": counts.index.astype(str), "ratings": counts.to_numpy()})
    return alt.Chart(frame, title="Ratings by stars").mark_bar().encode(
        x=alt.X("stars:O", title="Stars", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("ratings:Q", title="Ratings"),
        tooltip=[alt.Tooltip("stars:O", title="Stars"), alt.Tooltip("ratings:Q", title="Ratings", format=",")],
    ).properties(height=260)


# ---------------------------------------------------------------- baselines as reference marks
def baseline_frame(baselines: dict[str, dict] | None, keys: tuple[str, ...]) -> pd.DataFrame:
    """One row per baseline that has every metric in `keys`: its label and those values."""
    rows = []
    for label, metrics in (baselines or {}).items():
        flat = glossary.flat(metrics or {})
        values = {k: _number(flat.get(k)) for k in keys}
        if all(v is not None for v in values.values()):
            rows.append({"baseline": label, **values})
    return pd.DataFrame(rows, columns=["baseline", *keys])


def _dash(baselines: dict[str, dict] | None) -> alt.Scale:
    # The domain is every baseline given, so a baseline keeps its dash in every chart.
    labels = list(baselines or {})
    return alt.Scale(domain=labels, range=list(BASELINE_DASHES[:len(labels)]))


def _dash_legend(title: str = "Baselines") -> alt.Legend:
    return alt.Legend(title=title, orient="bottom", direction="vertical", symbolStrokeColor=BASELINE_COLOR,
                      symbolStrokeWidth=2, symbolSize=500, labelLimit=LABEL_LIMIT)


def _baseline_subtitle(frame: pd.DataFrame, where: str) -> str:
    # Short: a long subtitle squeezes the plot (Vega fits the title into the chart's width).
    return f"dashed grey: the classic baselines ({where})" if not frame.empty else ""


def rmse_chart(runs: pd.DataFrame, baselines: dict[str, dict] | None = None) -> alt.LayerChart:
    """Test RMSE per run as dots (lower is better), each baseline that predicts ratings as a
    dashed rule.

    Its axis names every run next to its colour, so it is the key for the charts beside it.
    """
    base = baseline_frame(baselines, ("rmse",))
    title = alt.TitleParams("Test RMSE (lower is better)", subtitle=_baseline_subtitle(base, "named at the top"))
    # Dots, not bars: RMSEs differ in the second decimal, and bars must start at 0.
    dots = alt.Chart(runs, title=title).mark_circle(size=120).encode(
        x=alt.X("rmse:Q", title="RMSE", scale=alt.Scale(zero=False, padding=20)),
        y=alt.Y("label:N", title=None, sort=alt.EncodingSortField("rmse"), axis=alt.Axis(labelLimit=LABEL_LIMIT)),
        color=alt.Color("label:N", legend=None, scale=run_colors(runs.label)),
        tooltip=[alt.Tooltip("label:N", title="Run"), alt.Tooltip("rmse:Q", title="RMSE", format=".4f")],
    )
    layers = [dots]
    if not base.empty:
        # No legend here (the run names leave it no room): each rule is named at the top, and
        # the top-k chart beside this one has the legend of the same dashes.
        tooltip = [alt.Tooltip("baseline:N", title="Baseline"), alt.Tooltip("rmse:Q", title="RMSE", format=".4f")]
        layers.append(alt.Chart(base).mark_rule(color=BASELINE_COLOR, strokeWidth=1.5).encode(
            x="rmse:Q", strokeDash=alt.StrokeDash("baseline:N", scale=_dash(baselines), legend=None),
            tooltip=tooltip))
        values = [*runs.rmse.dropna(), *base.rmse]
        middle = (min(values) + max(values)) / 2
        for i, row in enumerate(base.itertuples()):  # one name per line, so close rules' names don't overlap
            right = row.rmse > middle  # written on the inner side of its rule, so it stays in the chart
            layers.append(alt.Chart(base.iloc[[i]]).mark_text(
                align="right" if right else "left", baseline="top", dx=-3 if right else 3, dy=2 + 12 * i,
                fontSize=10, color=BASELINE_COLOR).encode(x="rmse:Q", y=alt.value(0), text="baseline:N",
                                                          tooltip=tooltip))
    return alt.layer(*layers).properties(height=panel_height(len(runs), len(baselines or {})))


def top_k_frame(runs: pd.DataFrame, baselines: dict[str, dict] | None = None) -> pd.DataFrame:
    """Long form: one row per (run or baseline, k) with the top-k accuracy; `kind` tells which."""
    rows = [{"label": r["label"], "kind": "run", "k": k, "accuracy": r[f"top_{k}_accuracy"]}
            for _, r in runs.iterrows() for k in KS]
    base = baseline_frame(baselines, tuple(TOP_K))
    rows += [{"label": r["baseline"], "kind": "baseline", "k": k, "accuracy": r[f"top_{k}_accuracy"]}
             for _, r in base.iterrows() for k in KS]
    return pd.DataFrame(rows, columns=["label", "kind", "k", "accuracy"])


def top_k_chart(runs: pd.DataFrame, baselines: dict[str, dict] | None = None) -> alt.LayerChart:
    """Top-k accuracy against k, one line per run; each baseline grey with its own dashes."""
    frame = top_k_frame(runs, baselines)
    x = alt.X("k:O", title="k", axis=alt.Axis(labelAngle=0))
    y = alt.Y("accuracy:Q", title="Top-k accuracy", axis=alt.Axis(format="%"))
    tooltip = [alt.Tooltip("label:N", title="Run"), alt.Tooltip("k:O"),
               alt.Tooltip("accuracy:Q", title="Accuracy", format=".2%")]
    base_frame = frame[frame.kind == "baseline"]
    title = alt.TitleParams("Test top-k accuracy (higher is better)",
                            subtitle=_baseline_subtitle(base_frame, "legend below"))
    model = alt.Chart(frame[frame.kind == "run"], title=title).mark_line(point=True).encode(
        x=x, y=y, tooltip=tooltip, color=alt.Color("label:N", legend=None, scale=run_colors(runs.label)))
    layers = [model]
    if not base_frame.empty:
        # Its own field name: a legend on "label" would merge with the runs' colour, which has none.
        # Lines without dots: the legend then draws each one's dashes.
        layers.append(alt.Chart(base_frame.rename(columns={"label": "baseline"})).mark_line(
            color=BASELINE_COLOR, strokeWidth=1.5).encode(
            x=x, y=y, tooltip=[alt.Tooltip("baseline:N", title="Baseline"), *tooltip[1:]],
            strokeDash=alt.StrokeDash("baseline:N", scale=_dash(baselines), legend=_dash_legend())))
    return alt.layer(*layers).properties(height=panel_height(len(runs), len(baselines or {})))


# ---------------------------------------------------------------- the trade-off
def front_interpolation(x: str) -> str:
    """How the Pareto front's steps go, sorted by `x`: along x first when lower x is better.

    The step line is then the edge of the region the front's runs beat (worked out per
    direction pair: the y direction only flips which way the steps climb).
    """
    metric = glossary.METRICS.get(x)
    return "step-before" if metric is None or metric.higher_is_better else "step-after"


def tradeoff_chart(runs: pd.DataFrame, baselines: dict[str, dict] | None = None, x: str = "rmse",
                   y: str = "top_100_accuracy") -> alt.LayerChart:
    """One metric against another, one point per run, with the Pareto front for these axes.

    Each axis says which way is better; the front (`experiments.pareto_front`) knows it too.
    Baselines that have both metrics are grey points, each its own shape, named beside it.
    """
    frame = runs.dropna(subset=[x, y]).assign(
        rating_share=lambda f: f.rating_weight / (f.rating_weight + f.retrieval_weight),
        weights=lambda f: [f"{a:g} / {b:g}" for a, b in zip(f.rating_weight, f.retrieval_weight)])

    def axis(key: str, channel):
        fmt = alt.Axis(format="%") if _percent(key) else alt.Axis()
        return channel(f"{key}:Q", title=axis_title(key), scale=alt.Scale(zero=False), axis=fmt)

    ex, ey = axis(x, alt.X), axis(y, alt.Y)
    values = [alt.Tooltip(f"{k}:Q", title=glossary.label(k), format=_tooltip_format(k)) for k in dict.fromkeys([x, y])]
    tooltip = [alt.Tooltip("label:N", title="Run"), alt.Tooltip("weights:N", title="Rating / retrieval"), *values]
    title = alt.TitleParams(f"Trade-off: {glossary.label(x)} against {glossary.label(y)}",
                            subtitle="dashed line: the Pareto front (no other run is better on both)")
    front = alt.Chart(pareto_front(frame, x, y), title=title).mark_line(
        interpolate=front_interpolation(x), color="#888", strokeDash=[4, 3]).encode(x=ex, y=ey)
    points = alt.Chart(frame).mark_circle(size=160, opacity=0.9, stroke="black", strokeWidth=0.5).encode(
        x=ex, y=ey, tooltip=tooltip,
        color=alt.Color("rating_share:Q", title="Rating share w_r / (w_r + w_t)",
                        scale=alt.Scale(scheme="viridis", domain=[0, 1])))
    layers = [front, points]
    base = baseline_frame(baselines, tuple(dict.fromkeys([x, y])))
    xs = [*frame[x], *base[x]]
    middle = (min(xs) + max(xs)) / 2 if xs else 0.0

    def names(data: pd.DataFrame, field: str, **style) -> list[alt.Chart]:
        # Written towards the middle of the chart, so a name at either edge stays inside it.
        return [alt.Chart(part).mark_text(align=align, dx=9 if align == "left" else -9, **style).encode(
                    x=ex, y=ey, text=f"{field}:N")
                for align, part in (("left", data[data[x] <= middle]), ("right", data[data[x] > middle]))
                if not part.empty]

    if len(frame) <= LABELLED_POINTS:  # more crowd into an unreadable blot; the tooltip has them
        layers += names(frame, "weights", dy=-7, fontSize=11)
    if not base.empty:
        shapes = alt.Scale(domain=list(baselines or {}), range=list(BASELINE_SHAPES[:len(baselines or {})]))
        layers.append(alt.Chart(base).mark_point(size=160, color=BASELINE_COLOR, filled=True).encode(
            x=ex, y=ey, shape=alt.Shape("baseline:N", scale=shapes, legend=None),  # each is named beside it
            tooltip=[alt.Tooltip("baseline:N", title="Baseline"), *values]))
        layers += names(base, "baseline", color=BASELINE_COLOR)
    return alt.layer(*layers).properties(height=420)


# ---------------------------------------------------------------- beyond accuracy
ACTIVITY = tuple(f"recall_at_10_{g}" for g in glossary.ACTIVITY_GROUPS)


def activity_frame(runs: pd.DataFrame, baselines: dict[str, dict] | None = None) -> pd.DataFrame:
    """Long form: recall@10 of light, medium and heavy users for each run and baseline."""
    groups = dict(zip(ACTIVITY, glossary.ACTIVITY_GROUPS))
    rows = [{"label": r["label"], "kind": "run", "users": groups[k], "recall": r[k]}
            for _, r in runs.iterrows() for k in ACTIVITY if k in r and pd.notna(r[k])]
    base = baseline_frame(baselines, ACTIVITY)
    rows += [{"label": r["baseline"], "kind": "baseline", "users": groups[k], "recall": r[k]}
             for _, r in base.iterrows() for k in ACTIVITY]
    return pd.DataFrame(rows, columns=["label", "kind", "users", "recall"])


def activity_chart(runs: pd.DataFrame, baselines: dict[str, dict] | None = None) -> alt.Chart:
    """Recall@10 by how active users are: one bar per run or baseline in each group, baselines grey."""
    frame = activity_frame(runs, baselines)
    labels = list(runs.label) + [b for b in (baselines or {}) if b in set(frame.label)]
    palette = run_colors(runs.label)
    # Runs keep their colour of the other charts; baselines are shades of grey.
    colors = alt.Scale(domain=[*palette.domain, *labels[len(runs):]],
                       range=[*_tableau20(len(palette.domain)), *_greys(len(labels) - len(runs))])
    return alt.Chart(frame, title=alt.TitleParams(
        "Recall@10 by user activity (higher is better)",
        subtitle="users split in thirds by their number of training ratings; baselines in grey")).mark_bar().encode(
        x=alt.X("users:N", title=None, sort=list(glossary.ACTIVITY_GROUPS), axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("label:N", sort=labels),
        y=alt.Y("recall:Q", title="Recall@10", axis=alt.Axis(format="%")),
        color=alt.Color("label:N", title=None, scale=colors, sort=labels,
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=LABEL_LIMIT)),
        tooltip=[alt.Tooltip("label:N", title="Run or baseline"), alt.Tooltip("users:N", title="Users"),
                 alt.Tooltip("recall:Q", title="Recall@10", format=".2%")],
    ).properties(height=300)


TABLEAU20 = ("#4c78a8", "#9ecae9", "#f58518", "#ffbf79", "#54a24b", "#88d27a", "#b79a20", "#f2cf5b", "#439894",
             "#83bcb6", "#e45756", "#ff9d98", "#79706e", "#bab0ac", "#d67195", "#fcbfd2", "#b279a2", "#d6a5c9",
             "#9e765f", "#d8b5a5")  # Vega's tableau20, so a run's bar matches its dot and line


def _tableau20(n: int) -> list[str]:
    return [TABLEAU20[i % len(TABLEAU20)] for i in range(n)]


def _greys(n: int) -> list[str]:
    return [f"#{v:02x}{v:02x}{v:02x}" for v in (0x55, 0x88, 0xaa, 0x70, 0x99, 0xbb)[:n]]


def table_format(key: str) -> str:
    """How a table cell shows the metric: a percentage for shares, else decimals that fit its size."""
    metric = glossary.METRICS.get(key)
    if metric is None or metric.percent:
        return "percent"
    return "%.1f" if key.startswith("mean_popularity") else "%.3f"


# ---------------------------------------------------------------- training curves
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


# ---------------------------------------------------------------- the movie map
MAP_POINT_SIZES = (8, 400)  # pixels^2 for the least and the most rated movie
HIGHLIGHT_COLORS = ("black", "#d62728", "#1f77b4", "#2ca02c")


def movie_map_chart(movies: pd.DataFrame, highlight: dict[str, list[str]] | None = None,
                    labelled: tuple[str, ...] = ()) -> alt.LayerChart:
    """Every movie on the 2-D map: colour by first genre, size by number of ratings, title on hover.

    `highlight` names groups of movie ids drawn again on top, ringed and labelled in the
    legend (e.g. {"Chosen movie": [...], "Neighbours": [...], "Rated": [...]}); the
    movies of the groups named in `labelled` also get their titles written beside them.
    """
    tooltip = [alt.Tooltip("title:N", title="Title"), alt.Tooltip("genre:N", title="Genre"),
               alt.Tooltip("ratings:Q", title="Ratings", format=",")]
    # Padding: a movie on the edge keeps its ring and its name inside the plot.
    scale = alt.Scale(zero=False, padding=30)
    x = alt.X("x:Q", title="first principal axis", axis=alt.Axis(labels=False, ticks=False), scale=scale)
    y = alt.Y("y:Q", title="second principal axis", axis=alt.Axis(labels=False, ticks=False), scale=scale)
    size = alt.Size("ratings:Q", title="Ratings", scale=alt.Scale(range=list(MAP_POINT_SIZES)))
    base = alt.Chart(movies).mark_circle(opacity=0.55).encode(
        x=x, y=y, size=size, tooltip=tooltip, color=alt.Color("genre:N", title="First genre",
                                                               scale=alt.Scale(scheme="tableau20")))
    layers = [base]
    groups = [(name, ids) for name, ids in (highlight or {}).items() if len(ids)]
    if groups:
        names = [n for n, _ in groups]
        marked = highlight_frame(movies, dict(groups))
        stroke = alt.Scale(domain=names, range=list(HIGHLIGHT_COLORS[:len(names)]))
        layers.append(alt.Chart(marked).mark_point(filled=False, strokeWidth=2.5, size=260).encode(
            x=x, y=y, tooltip=[*tooltip, alt.Tooltip("group:N", title="Shown as")],
            # Above the plot: beside it, under the genres, it would fall off the chart's bottom.
            shape=alt.Shape("group:N", title="Highlighted", sort=names, legend=alt.Legend(orient="top")),
            stroke=alt.Stroke("group:N", title="Highlighted", sort=names, scale=stroke,
                              legend=alt.Legend(orient="top"))))
        named = marked[marked.group.isin(labelled)]
        if not named.empty:
            layers.append(alt.Chart(named).mark_text(align="left", dx=10, dy=-8, fontSize=12,
                                                     fontWeight="bold").encode(x=x, y=y, text="title:N"))
    return alt.layer(*layers).properties(height=560).interactive()


def highlight_frame(movies: pd.DataFrame, highlight: dict[str, list[str]]) -> pd.DataFrame:
    """The map's rows of each highlighted group, with the group's name in `group` (a movie may
    be in two groups: it is drawn in both)."""
    parts = [movies[movies.movie_id.isin([str(i) for i in ids])].assign(group=name)
             for name, ids in highlight.items() if len(ids)]
    return pd.concat(parts, ignore_index=True) if parts else movies.iloc[:0].assign(group=[])
