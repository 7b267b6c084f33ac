"""The bench's own logic: the Pareto front and the report's verdicts."""
from bench.report import _ok
from bench.run import pareto


def test_pareto_front_by_hand():
    pts = [{"rating_weight": 0.0, "rmse": 1.20, "top_100_accuracy": 0.46},  # best retrieval: front
           {"rating_weight": 0.5, "rmse": 0.95, "top_100_accuracy": 0.44},  # trade-off: front
           {"rating_weight": 0.6, "rmse": 0.97, "top_100_accuracy": 0.43},  # beaten by 0.5 on both
           {"rating_weight": 1.0, "rmse": 0.90, "top_100_accuracy": 0.40}]  # best rating: front
    assert [p["rating_weight"] for p in pareto(pts)] == [1.0, 0.5, 0.0]


def test_target_verdicts():
    assert _ok(0.89, "<=", 0.90) == "met" and _ok(0.91, "<=", 0.90) != "met"
    assert _ok(0.48, ">=", 0.48) == "met" and _ok(0.47, ">=", 0.48) != "met"
