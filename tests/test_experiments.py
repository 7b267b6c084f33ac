"""The shared experiment lists and the one Pareto rule the app and the bench use."""
import pandas as pd

from recsys.config import RunConfig
from recsys.experiments import NOTEBOOK, SWEEP, notebook_configs, pareto_front, sweep_configs


def test_pareto_front_by_hand():
    pts = pd.DataFrame([{"w": 0.0, "rmse": 1.20, "top_100_accuracy": 0.46},  # best retrieval: front
                        {"w": 0.5, "rmse": 0.95, "top_100_accuracy": 0.44},  # trade-off: front
                        {"w": 0.6, "rmse": 0.97, "top_100_accuracy": 0.43},  # beaten by 0.5 on both
                        {"w": 1.0, "rmse": 0.90, "top_100_accuracy": 0.40}])  # best rating: front
    assert pareto_front(pts).w.tolist() == [1.0, 0.5, 0.0]


def test_pareto_ties_and_directions():
    # Same RMSE, lower accuracy: beaten. Identical points: both stay.
    tie = pd.DataFrame({"rmse": [0.9, 0.9, 0.9], "top_100_accuracy": [0.3, 0.4, 0.4]})
    assert pareto_front(tie).top_100_accuracy.tolist() == [0.4, 0.4]
    # Two higher-is-better axes: only the corner point survives.
    pts = pd.DataFrame({"recall_at_10": [0.1, 0.2, 0.15], "coverage_at_10": [0.5, 0.6, 0.7]})
    assert sorted(pareto_front(pts, "recall_at_10", "coverage_at_10").recall_at_10) == [0.15, 0.2]
    # Lower-is-better on both: the smallest pair wins.
    pts = pd.DataFrame({"rmse": [0.9, 0.8], "mean_popularity_at_10": [100, 90]})
    assert pareto_front(pts, "rmse", "mean_popularity_at_10").rmse.tolist() == [0.8]


def test_missing_values_are_left_off_the_front():
    pts = pd.DataFrame({"rmse": [0.9, None], "top_100_accuracy": [0.3, 0.9]})
    assert pareto_front(pts).rmse.tolist() == [0.9]


def test_experiment_lists_keep_the_other_settings():
    base = RunConfig(preset="seed", epochs=3, split="temporal")
    configs = notebook_configs(base)
    assert {n: (c.rating_weight, c.retrieval_weight) for n, c in configs.items()} == NOTEBOOK
    assert all(c.preset == "seed" and c.epochs == 3 and c.split == "temporal" for c in configs.values())
    sweep = sweep_configs(base)
    assert [c.rating_weight for c in sweep] == list(SWEEP) == [i / 10 for i in range(11)]
    assert {c.retrieval_weight for c in sweep} == {1.0}
