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


def test_a_bench_section_replaces_its_own_part_of_the_results_page(tmp_path):
    from bench.measure import replace_section

    md = tmp_path / "results.md"
    md.write_text("# Results\n\nkept\n\n<!-- a -->\nold\n<!-- /a -->\n\nafter\n")
    replace_section(md, "<!-- a -->", "<!-- /a -->", "<!-- a -->\nnew\n<!-- /a -->")
    text = md.read_text()
    assert "old" not in text and text.count("<!-- a -->") == 1 and "new" in text
    assert "kept" in text and "after" in text
    replace_section(tmp_path / "fresh.md", "<!-- a -->", "<!-- /a -->", "<!-- a -->\nx\n<!-- /a -->")
    assert "x" in (tmp_path / "fresh.md").read_text()


def test_step_variants_get_their_thread_pools_and_compare_as_medians(monkeypatch):
    from bench import steps
    from recsys.threads import training_env

    # Each variant's speeds over the three rounds; the children run round by round.
    per_variant = [[100.0, 100.0, 90.0], [300.0, 200.0, 90.0], [100.0, 210.0, 210.0], [250.0, 250.0, 400.0]]
    envs, speeds = {}, iter([v[r] for r in range(3) for v in per_variant])

    def fake(args, env):
        variant = args[-1]
        envs[variant] = env
        return {"output": {"examples_per_second": next(speeds), "cpu_us_per_example": 10.0,
                           "optimizer": steps.VARIANTS[variant][2] or "lazyadam"}}

    monkeypatch.setattr(steps, "run_child", fake)
    measured = steps.measure(["ml-100k"], rounds=3)
    got = measured["data"]["ml-100k"]["rows"]
    first, second, third, fourth = (got[v] for v in steps.VARIANTS)
    assert first["examples_per_second"] == 100.0 and second["examples_per_second"] == 200.0
    assert third["examples_per_second"] == 210.0 and second["speed_up"] == 2.0 and first["cpu_ratio"] == 1.0
    assert fourth["examples_per_second"] == 250.0 and fourth["optimizer"] == "lazyadam" and first["optimizer"] == "adam"
    trainer = [v for v, (_, ours, _) in steps.VARIANTS.items() if ours]
    assert trainer and all(envs[v][k] == training_env()[k] for v in trainer for k in training_env())
    assert all(envs[v]["TF_NUM_INTRAOP_THREADS"] == "0" for v in steps.VARIANTS if v not in trainer)
    table = steps.markdown(measured)
    assert "| ML-100K | 8 steps a call, TensorFlow's threads, Adam | adam | 200 | 2.00 | 90-300 |" in table
