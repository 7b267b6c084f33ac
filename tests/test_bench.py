"""The bench's own logic: the report's verdicts."""
from bench.report import _ok


def test_target_verdicts():
    assert _ok(0.89, "<=", 0.90) == "met" and _ok(0.91, "<=", 0.90) != "met"
    assert _ok(0.48, ">=", 0.48) == "met" and _ok(0.47, ">=", 0.48) != "met"
