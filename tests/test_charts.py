"""Run tables and Altair charts built for the app, checked without Streamlit."""
import pandas as pd

from recsys import charts

BASELINE = {"rmse": 1.02, **{f"top_{k}_accuracy": k / 200 for k in (1, 5, 10, 50, 100)}}


def summary(run_id: str, rating: float, retrieval: float, rmse: float, top100: float) -> dict:
    metrics = {"rmse": rmse, **{f"top_{k}_accuracy": top100 * k / 100 for k in (1, 5, 10, 50, 100)},
               "recall_at_10": 0.1, "recall_at_100": 0.5}
    config = {"rating_weight": rating, "retrieval_weight": retrieval, "preset": "default", "epochs": None,
              "resolved": {"epochs": 30, "batch_size": 1024, "learning_rate": 0.005, "optimizer": "adam"}}
    return {"run_id": run_id, "config": config, "metrics": metrics, "train_seconds": 12.0, "best_epoch": 4,
            "stopped_epoch": 7, "default": run_id == "a"}


RUNS = charts.runs_frame([summary("a", 1, 1, 0.92, 0.40), summary("b", 0.5, 1, 0.95, 0.45),
                          summary("c", 1, 0, 0.91, 0.10), summary("d", 0.2, 1, 0.97, 0.42)])


def test_runs_frame_flattens_configs_and_metrics_under_readable_names():
    table = charts.readable(RUNS)
    assert list(table.columns[:4]) == ["Run", "Rating weight", "Retrieval weight", "Preset"]
    assert table["Run"][0] == "1 / 1 · default · 30 ep · a"
    assert list(table["Top-100 accuracy"]) == [0.40, 0.45, 0.10, 0.42]
    assert list(table["Default"]) == [True, False, False, False]


def test_the_baseline_is_drawn_only_when_given():
    assert len(charts.rmse_chart(RUNS, BASELINE).to_dict()["layer"]) == 2
    assert len(charts.rmse_chart(RUNS).to_dict()["layer"]) == 1
    assert set(charts.top_k_frame(RUNS, BASELINE).label) == set(RUNS.label) | {"popularity"}
    assert "popularity" not in set(charts.top_k_frame(RUNS).label)
    assert len(charts.tradeoff_chart(RUNS, BASELINE).to_dict()["layer"]) == 5  # front, points, names, baseline
    assert len(charts.tradeoff_chart(RUNS).to_dict()["layer"]) == 3
    title = charts.rmse_chart(RUNS, BASELINE).to_dict()["layer"][0]["title"]
    assert title["subtitle"] == "dashed grey: popularity baseline, 1.020"


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
