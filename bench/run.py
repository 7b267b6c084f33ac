"""`make bench`: regenerate bench/results.md and bench/results.json from nothing.

Everything trains into a fresh temporary artifacts folder, so no cached run is reused.
Timings alternate between the variants compared and report medians; this machine
is shared and noisy. `python -m bench.run SECTION ...` re-measures some sections and
keeps the others.
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Runs go to temporary artifact folders, but the data stays where `make setup` put it.
os.environ.setdefault("RECSYS_DATA_DIR", str(Path(__file__).resolve().parent.parent / "artifacts" / "data"))
WORK = Path(tempfile.gettempdir())  # replaced by a fresh folder in main()
from recsys.threads import for_training  # noqa: E402

for_training()  # the runs trained in this process start TensorFlow as `python -m recsys train` does

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench import report  # noqa: E402
from bench.measure import median, percentiles, run_child, time_calls  # noqa: E402
from recsys import baselines, charts, experiments, presets  # noqa: E402
from recsys import index as annoy_index  # noqa: E402
from recsys.config import RunConfig  # noqa: E402
from recsys.evaluate import evaluate, model_scores  # noqa: E402
from recsys.newuser import cold_start_metrics  # noqa: E402
from recsys.prepare import prepare  # noqa: E402
from recsys.recommend import Recommender  # noqa: E402
from recsys.split import PROTOCOLS  # noqa: E402
from recsys.ranking import Blend  # noqa: E402
from recsys.taste import NOW, Taste  # noqa: E402
from recsys.train import load_model, train  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
SPLIT_SEEDS = (42, 7, 123)
OUT = Path(__file__).parent


def log(msg: str) -> None:
    """Progress on stderr, so a long bench is visibly alive."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _with_artifacts(name: str) -> None:
    os.environ["RECSYS_ARTIFACTS"] = str(WORK / name)


def _register_variants() -> None:
    # Built at run time; a stored run carries its resolved preset, so it reopens anywhere.
    for name, overrides in experiments.VARIANTS.items():
        presets.PRESETS[name] = replace(presets.PRESETS["default"], **overrides)


def _row(run) -> dict:
    return {**run.metrics, "train_seconds": run.info["train_seconds"], "stopped_epoch": run.info["stopped_epoch"],
            "taste": run.info.get("taste"), "blend": run.info.get("blend")}


def epoch_times() -> dict:
    """Training seconds per epoch: notebook loop, seed preset, default preset, alternating.

    Every sample is a fresh process (see bench/epochs.py); epoch 1 is left out, and so is
    the presets' per-epoch validation, which the notebook's loop does not do.
    """
    names = {"notebook": "notebook (metrics off)", "seed": "seed preset", "default": "default preset"}
    samples = {v: [] for v in names.values()}
    for r in range(ROUNDS):
        for variant, key in names.items():
            log(f"epoch timing round {r + 1}/{ROUNDS}: {key}")
            samples[key] += run_child(["-m", "bench.epochs", variant, str(100 + r)], {})["output"]
    log("notebook as written (top-k metrics on every training batch), one round")
    samples["notebook as written (metrics on)"] = run_child(["-m", "bench.epochs", "notebook-metrics-on"], {})["output"]
    med = {k: median(v) for k, v in samples.items()}
    base = med["notebook (metrics off)"]
    return {k: {"median_seconds": m, "samples": [round(x, 2) for x in samples[k]],
                "speedup_vs_notebook_metrics_off": round(base / m, 2)} for k, m in med.items()}


def full_default_run() -> dict:
    """The whole `python -m recsys train` for the default config, from an empty store."""
    results = []
    for r in range(ROUNDS):
        log(f"full default run {r + 1}/{ROUNDS}")
        env = {"RECSYS_ARTIFACTS": str(WORK / f"full-{r}")}
        results.append(run_child(["-m", "recsys", "train", "--rating-weight", "1", "--retrieval-weight", "1",
                                  "--json"], env))
    first = results[0]["output"]
    return {"command_seconds": median([r["wall_seconds"] for r in results]),
            "train_seconds": median([r["output"]["train_seconds"] for r in results]),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
            "runs": [{"command_seconds": r["wall_seconds"], "train_seconds": r["output"]["train_seconds"],
                      "peak_rss_mib": r["peak_rss_mib"]} for r in results],
            "run_id": first["run_id"], "metrics": first["metrics"], "artifacts": str(WORK / "full-0")}


def protocols() -> dict:
    """Each protocol: the default, its variants and the classic baselines, every metric.

    "default, now only" is the default run with each user's list asked at their latest
    moment alone: what the long-term taste (recsys/taste.py) adds; "default, no item-item"
    the same run without its item-item part (recsys/itemitem.py) in the lists.
    """
    _register_variants()
    out = {}
    for protocol in PROTOCOLS:
        _with_artifacts(f"protocol-{protocol}")
        prep = prepare(None, 42, protocol)
        rows = {}
        for name in ("default", *experiments.VARIANTS):
            log(f"{protocol} split: {name}")
            run = train(RunConfig(1.0, 1.0, preset=name, split=protocol), prep=prep).run
            rows[name] = _row(run)
            if name == "default":
                chosen = Taste.from_dict(run.info["taste"])
                rows["default, now only"] = _with_taste(run, prep, replace(chosen, horizon=NOW, mixture=False))
                rows["default, no item-item"] = _with_taste(run, prep, replace(chosen, item_item=0.0))
        log(f"{protocol} split: baselines")
        rows.update(baselines.metrics(prep))
        out[protocol] = rows
    return out


def _with_taste(run, prep, user_taste: Taste) -> dict:
    """The run's test metrics with every user's list made by `user_taste` instead of its own."""
    scores = model_scores(load_model(run, prep), prep, "test", user_taste=user_taste)
    return {**evaluate(scores, prep, "test", Blend.from_dict(run.info["blend"])), "taste": user_taste.to_dict()}


def robustness() -> dict:
    """The default over three split seeds, against the baselines on each split."""
    rows = {}
    for seed in SPLIT_SEEDS:
        log(f"split seed {seed}")
        _with_artifacts(f"split-{seed}")
        prep = prepare(None, seed)
        rows[seed] = {"model": _row(train(RunConfig(1.0, 1.0, split_seed=seed), prep=prep).run),
                      **baselines.metrics(prep)}
    keys = report.TARGETS_9_RANDOM
    summary = {k: {"mean": round(float(np.mean([r["model"][k] for r in rows.values()])), 4),
                   "std": round(float(np.std([r["model"][k] for r in rows.values()])), 4)} for k in keys}
    return {"per_seed": rows, "summary": summary}


def sweep() -> dict:
    """Rating weight 0, 0.1, ..., 1 with retrieval weight 1, one after another, from nothing."""
    _with_artifacts("sweep")
    prep = prepare()
    start = time.perf_counter()
    points = []
    for config in experiments.sweep_configs(RunConfig()):
        log(f"sweep rating weight {config.rating_weight}")
        points.append({"rating_weight": config.rating_weight, "retrieval_weight": 1.0,
                       **_row(train(config, prep=prep).run)})
    seconds = round(time.perf_counter() - start, 1)
    log("rating only (1, 0)")
    rating_only = _row(train(RunConfig(1.0, 0.0), prep=prep).run)
    front = experiments.pareto_front(pd.DataFrame(points), "rmse", "top_100_accuracy")
    return {"total_seconds": seconds, "points": points, "rating_only": rating_only,
            "pareto": front.rating_weight.tolist()}


def serving(run_dir: str, run_id: str) -> dict:
    """Evaluation time, Annoy against exact, query latencies and new-user quality, default run."""
    from recsys import runs

    os.environ["RECSYS_ARTIFACTS"] = run_dir
    run = runs.load(run_id)
    prep = prepare()
    model = load_model(run, prep)
    user_taste = Taste.from_dict(run.info["taste"])

    def evaluate_test(_):
        return evaluate(model_scores(model, prep, "test", user_taste=user_taste), prep, "test", None, full=False)

    evaluate_test(0)  # warm-up (tracing)
    eval_ms = time_calls(evaluate_test, range(3))
    rec = Recommender(run, prep)
    rng = random.Random(0)
    users = [rng.choice(prep.spec.user_ids) for _ in range(200)]
    rec.recommend(users[0])  # warm-up
    movies = list(prep.spec.movie_ids)
    new_users = [[(m, float(rng.randint(1, 5))) for m in rng.sample(movies, rng.randint(1, 10))]
                 for _ in range(100)]
    rec.recommend_new(new_users[0])
    words = ["batman", "star", "love", "the", "man", "night", "war", "day", "life", "king", "miserables", "toy"]
    queries = np.stack([rec.query(r) for r in range(prep.spec.n_users)])
    index_grid = []
    for n_trees in (10, 50):
        for search_k in (-1, 200, 500, 1000, 2000):
            with tempfile.TemporaryDirectory() as tmp:
                annoy_index.build(Path(tmp), rec.candidates, movies, n_trees=n_trees, search_k=search_k,
                                  user_vectors=rec.user_vectors)
                measured = annoy_index.measure(annoy_index.load(Path(tmp)), queries, rec.candidates,
                                               user_vectors=rec.user_vectors)
            index_grid.append({"n_trees": n_trees, "search_k": search_k, **measured})
    map_first = time_calls(lambda _: rec.movie_map(), [0])
    rec._map = None  # the cached file stays: this times reading it back and building the chart
    map_again = time_calls(lambda _: charts.movie_map_chart(rec.movie_map()).to_dict(), range(5))
    return {
        "eval_20k_pairs_ms": median(eval_ms),
        "index": annoy_index.measure(rec.index, queries, rec.candidates, user_vectors=rec.user_vectors),
        "index_grid": index_grid,
        "annoy_dot_metric_recall_at_10": {
            str(k): round(annoy_index.dot_metric_recall(queries, rec.user_vectors, search_k=k), 4)
            for k in (-1, 2000)},
        "latency": {
            "recommend exact (retrieve, rank, explain)": percentiles(
                time_calls(lambda u: rec.recommend(u, 10, "exact"), users)),
            "recommend annoy (retrieve, rank, explain)": percentiles(
                time_calls(lambda u: rec.recommend(u, 10, "annoy"), users)),
            "new user, 1 to 10 ratings": percentiles(time_calls(lambda r: rec.recommend_new(r, 10), new_users)),
            "title search": percentiles(time_calls(lambda w: rec.keyword(w, 10), words * 5)),
            "movie map, first computation": percentiles(map_first),
            "movie map, cached, with its chart": percentiles(map_again),
        },
        "candidates": rec.blend.candidates,
        "new_user_quality": cold_start_metrics(model, prep, rec.candidates, rec.new_user_taste),
        "new_user_taste": rec.new_user_taste.to_dict(),
        "full_history_recall_at_10": run.metrics["recall_at_10"],
    }


def app_memory(run_dir: str, run_id: str) -> dict:
    """Resident memory of a process that loads what the app loads for the default run."""
    return run_child(["-m", "bench.app_memory", run_id], {"RECSYS_ARTIFACTS": run_dir})["output"]


RERUNNABLE = ("full_default_run", "epoch_times", "protocols", "robustness", "sweep")  # need nothing else
ON_DEFAULT_RUN = ("serving", "app_memory")  # measured on full_default_run's first run


def main() -> None:
    """Run every benchmark and write the results."""
    global WORK
    WORK = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    _with_artifacts("main")
    start = time.perf_counter()
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "date": time.strftime("%Y-%m-%d %H:%M")}}
    partial = OUT / "results.partial.json"
    for name in RERUNNABLE:
        results[name] = globals()[name]()
        partial.write_text(json.dumps(results, indent=2, default=float))  # a late failure keeps the hours before it
    _on_default_run(results, ON_DEFAULT_RUN)
    results["bench_seconds"] = round(time.perf_counter() - start, 1)
    _write(results)
    partial.unlink()


def _on_default_run(results: dict, sections) -> None:
    run_dir, run_id = results["full_default_run"]["artifacts"], results["full_default_run"]["run_id"]
    for name in sections:
        log(f"{name}, on the default run {run_id}")
        results[name] = globals()[name](run_dir, run_id)


def _write(results: dict) -> None:
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=float))
    sections = [report.markdown(results)]
    # The sections other benches measured last keep their place (they rewrite only their own).
    for name, module in (("reliability", "bench.reliability"), ("scale", "bench.scale"), ("steps", "bench.steps")):
        stored = OUT / f"{name}.json"
        if stored.exists():
            sections.append(importlib.import_module(module).markdown(json.loads(stored.read_text())))
    (OUT / "results.md").write_text("\n\n".join(sections))
    log(f"wrote {OUT / 'results.md'}")


def rerun(sections: list[str]) -> None:
    """Recompute some sections of an existing results.json (for a quick re-measure)."""
    global WORK
    WORK = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    results = json.loads((OUT / "results.json").read_text())
    for name in (s for s in sections if s in RERUNNABLE):
        log(f"re-running {name}")
        results[name] = globals()[name]()
    _on_default_run(results, [s for s in sections if s in ON_DEFAULT_RUN])
    results.setdefault("rerun", {}).update({name: time.strftime("%Y-%m-%d %H:%M") for name in sections})
    _write(results)


if __name__ == "__main__":
    unknown = set(sys.argv[1:]) - set(RERUNNABLE + ON_DEFAULT_RUN)
    if unknown:
        sys.exit(f"cannot re-run {sorted(unknown)} alone; choose from {RERUNNABLE + ON_DEFAULT_RUN}, or none "
                 "for everything")
    rerun(sys.argv[1:]) if sys.argv[1:] else main()
