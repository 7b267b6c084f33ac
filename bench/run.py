"""`make bench`: regenerate bench/results.md and bench/results.json from nothing.

Everything trains into a fresh temporary artifacts folder, so no cached run is reused.
Timings alternate between the variants compared and report medians; this machine
is shared and noisy.
"""
from __future__ import annotations

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

import numpy as np  # noqa: E402

from bench import report  # noqa: E402
from bench.measure import median, percentiles, run_child, time_calls  # noqa: E402
from recsys import index as annoy_index  # noqa: E402
from recsys import presets  # noqa: E402
from recsys.baseline import popularity_metrics  # noqa: E402
from recsys.config import RunConfig  # noqa: E402
from recsys.evaluate import evaluate  # noqa: E402
from recsys.prepare import prepare  # noqa: E402
from recsys.recommend import Recommender  # noqa: E402
from recsys.train import load_model, train  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))
OUT = Path(__file__).parent


def log(msg: str) -> None:
    """Progress on stderr, so a long bench is visibly alive."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _with_artifacts(name: str) -> None:
    os.environ["RECSYS_ARTIFACTS"] = str(WORK / name)


def epoch_times() -> dict:
    """Seconds per epoch: notebook loop, seed preset, default preset, alternating.

    Every sample is a fresh process (see bench/epochs.py); epoch 1 is left out.
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


def full_default_runs() -> dict:
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


def experiments(prep) -> dict:
    """The notebook's three experiments with the default preset, plus the popularity baseline."""
    _with_artifacts("experiments")
    out = {}
    for name, (rw, tw) in {"rating-only (1, 0)": (1, 0), "retrieval-only (0, 1)": (0, 1),
                           "joint (1, 1)": (1, 1)}.items():
        log(f"experiment {name}")
        res = train(RunConfig(float(rw), float(tw)), prep=prep)
        out[name] = {**res.run.metrics, "stopped_epoch": res.run.info["stopped_epoch"],
                     "train_seconds": res.run.info["train_seconds"]}
    # What the session context buys, and costs: the same preset without it.
    name = "joint (1, 1), no session context"
    log(f"experiment {name}")
    presets.PRESETS["default-no-context"] = replace(presets.PRESETS["default"], context_size=0,
                                                    context_rating=False)
    out[name] = train(RunConfig(1.0, 1.0, preset="default-no-context"), prep=prep).run.metrics
    out["popularity baseline"] = popularity_metrics(prep.train_all, prep.test, prep.spec.n_users, prep.spec.n_movies)
    return out


def pareto(points: list[dict]) -> list[dict]:
    """Runs no other run beats on both lower RMSE and higher top-100 accuracy."""
    front = []
    for p in points:
        dominated = any(q["rmse"] <= p["rmse"] and q["top_100_accuracy"] >= p["top_100_accuracy"]
                        and (q["rmse"], q["top_100_accuracy"]) != (p["rmse"], p["top_100_accuracy"])
                        for q in points)
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: p["rmse"])


def sweep(prep) -> dict:
    """Rating weight 0, 0.1, ..., 1 with retrieval weight 1, one after another, from nothing."""
    _with_artifacts("sweep")
    start = time.perf_counter()
    points = []
    for w in np.round(np.linspace(0, 1, 11), 1):
        log(f"sweep rating weight {w}")
        m = train(RunConfig(float(w), 1.0), prep=prep).run.metrics
        points.append({"rating_weight": float(w), "retrieval_weight": 1.0, **m})
    return {"total_seconds": round(time.perf_counter() - start, 1), "points": points, "pareto": pareto(points)}


def serving(prep, run_dir: str, run_id: str) -> dict:
    """Evaluation time, Annoy against exact, and query latencies on the default run."""
    from recsys import runs

    os.environ["RECSYS_ARTIFACTS"] = run_dir
    run = runs.load(run_id)
    model = load_model(run, prep)
    evaluate(model, prep, prep.test, recall=False)  # warm-up (tracing)
    eval_ms = time_calls(lambda _: evaluate(model, prep, prep.test, recall=False), range(5))
    eval_all_ms = time_calls(lambda _: evaluate(model, prep, prep.test), range(3))
    rec = Recommender(run, prep)
    rng = random.Random(0)
    users = [rng.choice(prep.spec.user_ids) for _ in range(300)]
    rec.recommend(users[0])  # warm-up
    words = ["batman", "star", "love", "the", "man", "night", "war", "day", "life", "king", "miserables", "toy"]
    queries = np.stack([rec.query(r) for r in range(prep.spec.n_users)])
    index_grid = []
    for n_trees in (10, 50):
        for search_k in (-1, 200, 500, 1000, 2000):
            with tempfile.TemporaryDirectory() as tmp:
                annoy_index.build(Path(tmp), rec.candidates, list(prep.spec.movie_ids), n_trees=n_trees,
                                  search_k=search_k)
                measured = annoy_index.measure(annoy_index.load(Path(tmp)), queries, rec.candidates)
            index_grid.append({"n_trees": n_trees, "search_k": search_k, **measured})
    return {
        "eval_20k_pairs_ms": {"rmse_and_top_k": median(eval_ms), "with_filtered_recall": median(eval_all_ms)},
        "index": annoy_index.measure(rec.index, queries, rec.candidates),
        "index_grid": index_grid,
        "annoy_dot_metric_recall_at_10": {
            str(k): round(annoy_index.dot_metric_recall(queries, rec.candidates, search_k=k), 4)
            for k in (-1, 2000)},
        "latency": {
            "recommend exact": percentiles(time_calls(lambda u: rec.recommend(u, 10, "exact"), users)),
            "recommend annoy": percentiles(time_calls(lambda u: rec.recommend(u, 10, "annoy"), users)),
            "title search": percentiles(time_calls(lambda w: rec.keyword(w, 10), words * 10)),
        },
    }


def app_memory(run_dir: str, run_id: str) -> dict:
    """Resident memory of a process that loads what the app loads for the default run."""
    return run_child(["-m", "bench.app_memory", run_id], {"RECSYS_ARTIFACTS": run_dir})["output"]


def robustness() -> dict:
    """The default preset over three split seeds, against popularity on each split."""
    rows = {}
    for seed in (42, 7, 123):
        log(f"split seed {seed}")
        _with_artifacts(f"split-{seed}")
        prep = prepare(None, seed)
        m = train(RunConfig(1.0, 1.0, split_seed=seed), prep=prep).run.metrics
        pop = popularity_metrics(prep.train_all, prep.test, prep.spec.n_users, prep.spec.n_movies)
        rows[seed] = {"model": m, "popularity": pop}
    keys = ("rmse", "top_10_accuracy", "top_100_accuracy")
    summary = {k: {"mean": round(float(np.mean([r["model"][k] for r in rows.values()])), 4),
                   "std": round(float(np.std([r["model"][k] for r in rows.values()])), 4)} for k in keys}
    return {"per_seed": rows, "summary": summary}


RERUNNABLE = ("full_default_run", "epoch_times", "robustness")  # sections that need nothing else


def main() -> None:
    """Run every benchmark (or only the named sections, keeping the rest) and write the results."""
    global WORK
    WORK = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    _with_artifacts("main")
    start = time.perf_counter()
    prep = prepare()
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "date": time.strftime("%Y-%m-%d %H:%M")}}
    results["full_default_run"] = full_default_runs()
    results["epoch_times"] = epoch_times()
    results["experiments"] = experiments(prep)
    results["sweep"] = sweep(prep)
    run_dir, run_id = results["full_default_run"]["artifacts"], results["full_default_run"]["run_id"]
    log("serving: evaluation time, index, latency")
    results["serving"] = serving(prep, run_dir, run_id)
    log("app memory")
    results["app_memory"] = app_memory(run_dir, run_id)
    results["robustness"] = robustness()
    results["bench_seconds"] = round(time.perf_counter() - start, 1)
    _write(results)


def _write(results: dict) -> None:
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=float))
    (OUT / "results.md").write_text(report.markdown(results))
    log(f"wrote {OUT / 'results.md'}")


def rerun(sections: list[str]) -> None:
    """Recompute some sections of an existing results.json (for a quick re-measure)."""
    global WORK
    WORK = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    results = json.loads((OUT / "results.json").read_text())
    for name in sections:
        log(f"re-running {name}")
        results[name] = globals()[name]()
    results.setdefault("rerun", {}).update({name: time.strftime("%Y-%m-%d %H:%M") for name in sections})
    _write(results)


if __name__ == "__main__":
    unknown = set(sys.argv[1:]) - set(RERUNNABLE)
    if unknown:
        sys.exit(f"cannot re-run {sorted(unknown)} alone; choose from {RERUNNABLE}, or none for everything")
    rerun(sys.argv[1:]) if sys.argv[1:] else main()
