"""The bench's own logic: the report's verdicts."""
from bench.report import _ok


def test_target_verdicts():
    assert _ok(0.89, "<=", 0.90) == "met" and _ok(0.91, "<=", 0.90) != "met"
    assert _ok(0.48, ">=", 0.48) == "met" and _ok(0.47, ">=", 0.48) != "met"


def _size(ratings: int, seconds: float, rss: float) -> dict:
    return {"ratings": ratings, "users": 10, "movies": 5, "load_seconds": 0.1, "prepare_seconds": 0.1,
            "epoch_seconds": seconds, "examples_per_second": 1000, "eval_seconds": 1.0, "index_seconds": 0.1,
            "peak_rss_mib": rss}


def test_scale_growth_exponents_come_from_two_sizes_on():
    from bench import scale

    one = scale._grown([_size(100, 1.0, 50.0)])
    assert "exponent_epoch_seconds" not in one and "needs two sizes" in scale.markdown(one)
    grown = scale._grown([_size(100, 1.0, 50.0), _size(10_000, 100.0, 500.0)])
    assert grown["exponent_epoch_seconds"] == 1.0 and grown["exponent_peak_rss"] == 0.5
    assert "n^1.0" in scale.markdown(grown) and "n^0.5" in scale.markdown(grown)
