"""Run tables and Altair charts built for the app, checked without Streamlit."""
import pandas as pd
import pytest

from recsys import charts, glossary
from recsys.experiments import pareto_front

KS = (1, 5, 10, 50, 100)


def baseline(rmse: float | None, top100: float, recall: float) -> dict:
    out = {**{f"top_{k}_accuracy": top100 * k / 200 for k in KS}, "recall_at_10": recall,
           "coverage_at_10": 0.02, "recall_at_10_by_activity": {"light": recall / 2, "medium": recall,
                                                                "heavy": recall * 1.5},
           "params": {"k": 50}, "fit_seconds": 1.5}
    if rmse is not None:
        out["rmse"] = rmse
    return out


# Three baselines as the Compare page passes them: EASE predicts no ratings.
BASELINES = {"Popularity": baseline(1.02, 0.30, 0.12), "EASE": baseline(None, 0.55, 0.20),
             "Item-kNN": baseline(0.99, 0.50, 0.18)}


def summary(run_id: str, rating: float, retrieval: float, rmse: float, top100: float, split: str = "random",
            coverage: float = 0.3) -> dict:
    metrics = {"rmse": rmse, **{f"top_{k}_accuracy": top100 * k / 100 for k in KS},
               "recall_at_10": 0.1, "recall_at_100": 0.5, "coverage_at_10": coverage, "novelty_at_10": 7.5,
               "recall_at_10_by_activity": {"light": 0.05, "medium": 0.1, "heavy": 0.2}}
    config = {"rating_weight": rating, "retrieval_weight": retrieval, "preset": "default", "epochs": None,
              "split": split, "split_seed": 42,
              "resolved": {"epochs": 30, "batch_size": 1024, "learning_rate": 0.005, "optimizer": "adam"}}
    return {"run_id": run_id, "config": config, "metrics": metrics, "train_seconds": 12.0, "best_epoch": 4,
            "stopped_epoch": 7, "default": run_id == "a"}


RUNS = charts.runs_frame([summary("a", 1, 1, 0.92, 0.40, coverage=0.30), summary("b", 0.5, 1, 0.95, 0.45, coverage=0.10),
                          summary("c", 1, 0, 0.91, 0.10, coverage=0.05),
                          summary("d", 0.2, 1, 0.97, 0.42, split="temporal", coverage=0.50)])


def layers(chart) -> list[dict]:
    return chart.to_dict()["layer"]


def layer_data(chart, layer: dict) -> list[dict]:
    """The rows a layer draws (Altair moves each layer's data into the top-level datasets, and
    a layer's data to the top when all layers share it)."""
    spec = chart.to_dict()
    return spec["datasets"][layer.get("data", spec.get("data"))["name"]]


def test_runs_frame_flattens_configs_and_metrics_under_readable_names():
    table = charts.readable(RUNS)
    assert list(table.columns[:5]) == ["Run", "Rating weight", "Retrieval weight", "Preset", "Split"]
    assert table["Run"][0] == "1 / 1 · default · random · 30 ep · a"
    assert list(table["Top-100 accuracy"]) == [0.40, 0.45, 0.10, 0.42]
    assert list(table["Default"]) == [True, False, False, False]
    assert list(RUNS.recall_at_10_heavy) == [0.2] * 4  # the per-activity recall, spread into columns
    assert RUNS.liked_recall_at_10.isna().all()  # a metric the runs lack is a column of NaN
    assert "Coverage@10" in charts.readable(RUNS, charts.BEYOND).columns


def test_a_run_label_names_its_split_protocol():
    assert "· temporal ·" in RUNS.label[3]
    other_seed = summary("e", 1, 1, 0.9, 0.4)
    other_seed["config"]["split_seed"] = 7
    assert "· random 7 ·" in charts.run_label(other_seed["config"], "e")
    older = summary("f", 1, 1, 0.9, 0.4)
    del older["config"]["split"], older["config"]["split_seed"]  # stored before the protocol existed
    assert "· random ·" in charts.run_label(older["config"], "f")


def test_available_metrics_are_the_glossarys_that_some_run_has():
    found = charts.available_metrics(RUNS)
    assert found[:2] == ["rmse", "top_1_accuracy"]
    assert {"coverage_at_10", "recall_at_10_light"} <= set(found)
    assert "liked_recall_at_10" not in found and all(k in glossary.METRICS for k in found)


def test_three_baselines_are_reference_marks_each_with_its_own_dashes():
    rmse = charts.rmse_chart(RUNS, BASELINES)
    dots, rules, *names = layers(rmse)
    assert [r["baseline"] for r in layer_data(rmse, rules)] == ["Popularity", "Item-kNN"]  # EASE has no RMSE
    dash = rules["encoding"]["strokeDash"]
    assert dash["scale"]["domain"] == list(BASELINES) and len(set(map(tuple, dash["scale"]["range"]))) == 3
    assert [layer_data(rmse, n)[0]["baseline"] for n in names] == ["Popularity", "Item-kNN"]  # each rule named
    assert [n["mark"]["dy"] for n in names] == [2, 14]  # on its own line
    assert len(layers(charts.rmse_chart(RUNS))) == 1

    frame = charts.top_k_frame(RUNS, BASELINES)
    assert set(frame[frame.kind == "baseline"].label) == set(BASELINES)
    assert len(frame) == len(KS) * (len(RUNS) + 3)
    topk = charts.top_k_chart(RUNS, BASELINES)
    assert layers(topk)[1]["encoding"]["strokeDash"]["field"] == "baseline"
    assert layers(topk)[1]["encoding"]["strokeDash"]["legend"]["title"] == "Baselines"
    assert set(charts.top_k_frame(RUNS).kind) == {"run"}

    trade = charts.tradeoff_chart(RUNS, BASELINES)
    marks = [layer for layer in layers(trade) if "shape" in layer.get("encoding", {})]
    assert [r["baseline"] for r in layer_data(trade, marks[0])] == ["Popularity", "Item-kNN"]
    plain = charts.tradeoff_chart(RUNS)
    assert not [layer for layer in layers(plain) if "shape" in layer.get("encoding", {})]
    named = [layer for layer in layers(plain) if layer["encoding"].get("text", {}).get("field") == "weights"]
    assert sum(len(layer_data(plain, layer)) for layer in named) == len(RUNS)  # every run's weights written
    # A name is written towards the middle, so one at the right edge stays inside the chart.
    right = next(layer for layer in named if layer["mark"]["align"] == "right")
    assert [r["run_id"] for r in layer_data(plain, right)] == ["b", "d"]  # RMSE 0.95 and 0.97 of 0.91-0.97


def test_the_tradeoff_axes_are_chosen_and_the_pareto_front_is_redrawn_for_them():
    default = charts.tradeoff_chart(RUNS)
    front = layers(default)[0]
    assert [r["run_id"] for r in layer_data(default, front)] == list(pareto_front(RUNS).run_id)
    assert front["mark"]["interpolate"] == "step-after"  # lower RMSE is better: steps go along x first
    assert front["title"]["text"] == "Trade-off: RMSE against Top-100 accuracy"

    chosen = charts.tradeoff_chart(RUNS, BASELINES, x="coverage_at_10", y="top_100_accuracy")
    front = layers(chosen)[0]
    on_front = [r["run_id"] for r in layer_data(chosen, front)]
    # Both higher is better: b (best top-100) and d (best coverage) beat a and c.
    assert on_front == list(pareto_front(RUNS, "coverage_at_10", "top_100_accuracy").run_id) == ["b", "d"]
    assert front["mark"]["interpolate"] == "step-before"
    assert front["encoding"]["x"]["field"] == "coverage_at_10"
    assert front["encoding"]["x"]["title"] == "Coverage@10 (higher is better)"
    assert front["encoding"]["x"]["axis"]["format"] == "%"
    marks = [layer for layer in layers(chosen) if "shape" in layer.get("encoding", {})]
    assert [r["baseline"] for r in layer_data(chosen, marks[0])] == list(BASELINES)  # all three have both


@pytest.mark.parametrize("x, steps", [("rmse", "step-after"), ("mean_popularity_at_10", "step-after"),
                                      ("recall_at_10", "step-before"), ("novelty_at_10", "step-before")])
def test_the_front_steps_follow_the_x_axis_direction(x, steps):
    assert charts.front_interpolation(x) == steps


def test_recall_by_activity_has_a_bar_per_run_and_baseline_in_each_group():
    frame = charts.activity_frame(RUNS, BASELINES)
    assert len(frame) == 3 * (len(RUNS) + len(BASELINES))
    assert list(frame[frame.label == "EASE"].recall) == [0.1, 0.2, pytest.approx(0.3)]
    spec = charts.activity_chart(RUNS, BASELINES).to_dict()
    colors = spec["encoding"]["color"]["scale"]
    assert colors["domain"][-3:] == list(BASELINES) and len(colors["range"]) == len(colors["domain"])


def test_tables_show_shares_as_percentages_and_counts_as_numbers():
    assert charts.table_format("coverage_at_10") == "percent"
    assert charts.table_format("rmse") == "%.3f" and charts.table_format("mean_popularity_at_10") == "%.1f"


MAP = pd.DataFrame({"movie_id": [str(i) for i in range(1, 7)], "title": [f"Film {i}" for i in range(1, 7)],
                    "genre": ["Drama", "Comedy", "Drama", "Action", "Comedy", "Drama"],
                    "ratings": [10, 200, 5, 50, 0, 80], "x": [0.0, 1, 2, 3, 4, 5], "y": [5.0, 4, 3, 2, 1, 0]})


def test_the_map_draws_each_highlighted_group_on_top_of_every_movie():
    plain = charts.movie_map_chart(MAP)
    assert len(layers(plain)) == 1 and len(layer_data(plain, layers(plain)[0])) == 6

    chart = charts.movie_map_chart(MAP, {"Chosen movie": ["2"], "Annoy neighbours": ["1", "3"], "Rated": [],
                                         "Recommended": ["3", "6"]}, labelled=("Chosen movie",))
    base, rings, names = layers(chart)
    marked = layer_data(chart, rings)
    assert [(r["movie_id"], r["group"]) for r in marked] == [("2", "Chosen movie"), ("1", "Annoy neighbours"),
                                                            ("3", "Annoy neighbours"), ("3", "Recommended"),
                                                            ("6", "Recommended")]  # empty groups are left out
    assert rings["encoding"]["stroke"]["scale"]["domain"] == ["Chosen movie", "Annoy neighbours", "Recommended"]
    assert [r["title"] for r in layer_data(chart, names)] == ["Film 2"]  # only the chosen movie is named
    assert base["encoding"]["size"]["field"] == "ratings" and base["encoding"]["color"]["field"] == "genre"


def test_curves_keep_every_epoch_of_every_run():
    history = [{"epoch": 1, "loss": 3.0, "val_rmse": 1.0, "elapsed_seconds": 2.0},
               {"epoch": 2, "loss": 2.0, "val_rmse": 0.9, "elapsed_seconds": 4.0}]
    curves = charts.curves_frame({"x": history, "y": history[:1]})
    assert len(curves) == 6 and set(curves.metric) == {"loss", "val_rmse"}
    assert charts.curve_chart(curves, "loss").to_dict()["title"] == "Total loss"
    live = charts.live_loss_chart([{**history[0], "rating_loss": 1.0}, {**history[1], "rating_loss": 0.5}],
                                  "rating_loss")
    assert live.to_dict()["title"] == "Rating loss"
    assert list(live.data.value) == [1.0, 0.5]
