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


def _round(p95: float, lists: list[float], visits: int, errors: int) -> dict:
    latency = {"recommend_calls": len(lists), "recommend_p50_ms": min(lists), "recommend_p95_ms": p95}
    return {"seconds": 45, "sessions": 8, **latency, "with_browsers": latency,
            "in_server": {**latency, "lists_ms": lists, "cold_start_lists_ms": [9.0]},
            "errors": ["x"] * errors, "error_count": errors, "sweep_training_throughout": True,
            "browsers": {"sessions": 8, "page_visits": visits, "errors": [], "error_count": errors,
                         "base_url_probes_404": 2, "browser_nice": 19, "cold_start_seconds": 10.0},
            "server_tracebacks": 0}


def test_the_serving_rounds_combine_as_medians_of_latencies_and_totals_of_counts():
    from bench.reliability import _combine

    lists = [[1.0] * 19 + [500.0], [2.0] * 20, [3.0] * 20]
    combined = _combine([_round(p95, xs, visits=10, errors=e) for p95, xs, e in zip((60.0, 160.0, 40.0), lists,
                                                                                      (0, 1, 0))])
    assert combined["in_server"]["recommend_p95_ms"] == 60.0  # the median round, not the worst or the mean
    assert combined["in_server"]["recommend_calls"] == 60 and combined["browsers"]["page_visits"] == 30
    assert combined["error_count"] == 1 and combined["browsers"]["error_count"] == 1
    assert combined["in_server"]["recommend_p95_ms_pooled"] == 3.0  # one slow list in 60 is under the p95
    assert combined["in_server"]["cold_start_lists_ms"] == [9.0] * 3 and combined["sessions"] == 8
