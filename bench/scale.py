"""`make bench-scale`: how time and memory grow from 100K to 25M ratings.

    python -m bench.scale [--ratings 100000 1000000 10000000 25000000]

For each size a synthetic copy in the ML-25M layout is written (`recsys.synth`; no real
ML-1M/20M/25M copy can be had offline here), then a fresh process loads and prepares it
and trains the default preset for two epochs. It reports the load and preparation
seconds, the second epoch's training seconds (its validation left out) and examples
per second, the end-of-training evaluation and the index build, and the process's peak
RSS; then the fitted growth exponent of time and memory against the number of ratings.
At 1M it also runs the whole default run (early stopping included) against popularity
and EASE. Results: bench/scale.json and a section of bench/results.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.measure import replace_section, run_child

OUT = Path(__file__).parent
SIZES = (100_000, 1_000_000, 10_000_000, 25_000_000)
BEGIN, END = "<!-- scale -->", "<!-- /scale -->"  # bench/results.md's scale section


def log(msg: str) -> None:
    """Progress on stderr."""
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def child(path: str, epochs: int, full: bool) -> dict:
    """In a fresh process: load, prepare and train on the copy at `path`; measure each step."""
    os.environ["RECSYS_ARTIFACTS"] = tempfile.mkdtemp(prefix="scale-")
    from recsys.threads import for_training

    for_training()  # as `python -m recsys train` runs
    from recsys import data, index
    from recsys.config import RunConfig
    from recsys.prepare import prepare_from
    from recsys.train import load_model, train

    start = time.perf_counter()
    ml = data.load(path)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    prep = prepare_from(ml)
    prepare_s = time.perf_counter() - start
    config = RunConfig() if full else RunConfig(epochs=epochs)
    start = time.perf_counter()
    run = train(config, prep=prep).run
    command_s = time.perf_counter() - start
    last = run.history[-1]
    previous = run.history[-2]["elapsed_seconds"] if len(run.history) > 1 else 0.0
    fit_s = last["elapsed_seconds"] - previous - last["validation_seconds"]
    candidates = load_model(run, prep).candidate_embeddings(prep.spec.n_movies)
    start = time.perf_counter()
    index.build(run.path, candidates, list(prep.spec.movie_ids))
    index_s = time.perf_counter() - start
    out = {"ratings": len(ml.ratings), "users": prep.spec.n_users, "movies": prep.spec.n_movies,
           "train_ratings": len(prep.train["user"]), "load_seconds": round(load_s, 2),
           "prepare_seconds": round(prepare_s, 2), "epoch_seconds": round(fit_s, 2),
           "examples_per_second": round(len(prep.train["user"]) / fit_s),
           "validation_seconds": round(last["validation_seconds"], 2),
           "eval_seconds": run.info["eval_seconds"], "index_seconds": round(index_s, 2),
           "train_seconds": run.info["train_seconds"], "command_seconds": round(command_s, 1),
           "epochs_run": run.info["stopped_epoch"], "metrics": run.metrics}
    if full:
        from recsys import baselines

        out["baselines"] = baselines.metrics(prep, ("popularity", "ease"))
    return out


def _run_child(path: str, epochs: int, full: bool = False) -> dict:
    args = ["-m", "bench.scale", "--child", path, "--epochs", str(epochs)] + (["--full"] if full else [])
    result = run_child(args, {"TF_CPP_MIN_LOG_LEVEL": "3"})
    return {**result["output"], "peak_rss_mib": result["peak_rss_mib"], "wall_seconds": result["wall_seconds"]}


def exponent(xs: list[float], ys: list[float]) -> float:
    """The slope of log(y) against log(x): y grows like x to this power."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def _grown(rows: list[dict]) -> dict:
    """The sizes measured so far and, from two on, the growth exponents."""
    ratings = [r["ratings"] for r in rows]
    out = {"sizes": rows}
    if len(rows) > 1:
        out["exponent_epoch_seconds"] = round(exponent(ratings, [r["epoch_seconds"] for r in rows]), 3)
        out["exponent_peak_rss"] = round(exponent(ratings, [r["peak_rss_mib"] for r in rows]), 3)
    return out


def measure(sizes: tuple[int, ...], keep: Path | None = None) -> dict:
    """Every size, the growth exponents, and the full default run at 1M; written as they come."""
    from recsys import synth

    work = keep or Path(tempfile.mkdtemp(prefix="scale-data-"))
    rows, extra = [], {}
    for n in sizes:
        folder = work / f"synthetic-{n}"
        if not (folder / "ratings.csv").exists():
            log(f"writing {n:,} synthetic ratings")
            synth.generate(folder, synth.Sizes.for_ratings(n))
        log(f"{n:,} ratings: two epochs")
        rows.append(_run_child(str(folder), 2))
        log(json.dumps({k: v for k, v in rows[-1].items() if k != "metrics"}))
        if n == 1_000_000:
            log("1M ratings: the whole default run, early stopping included, against popularity and EASE")
            extra["default_1m"] = _run_child(str(folder), 0, full=True)
        write({**_grown(rows), **extra})  # after every size: a larger one that fails keeps the smaller ones'
    return {**_grown(rows), **extra}


def markdown(r: dict) -> str:
    """The scale section of bench/results.md."""
    rows = [[f"{s['ratings']:,}", f"{s['users']:,}", f"{s['movies']:,}", s["load_seconds"], s["prepare_seconds"],
             s["epoch_seconds"], f"{s['examples_per_second']:,}", s["eval_seconds"], s["index_seconds"],
             f"{s['peak_rss_mib']:,.0f}"] for s in r["sizes"]]
    head = ["ratings", "users", "movies", "load s", "prepare s", "epoch s", "examples/s", "evaluation s",
            "index s", "peak RSS MiB"]
    table = "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                      + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])
    growth = (f"time per epoch ~ n^{r['exponent_epoch_seconds']}, peak RSS ~ n^{r['exponent_peak_rss']}"
              if "exponent_peak_rss" in r else "needs two sizes")
    text = [BEGIN, "## Scale (synthetic copies in the ML-25M layout; `make bench-scale`)\n", table,
            f"\nGrowth with the number of ratings: {growth} (least-squares slopes on log-log axes; target <= 1.1). "
            "Epoch seconds are "
            "the second epoch's training, its validation left out; evaluation is the end-of-training scoring "
            "(validation choices and test metrics) on at most 4e8 pair-movie scores per part.\n"]
    d = r.get("default_1m")
    if d:
        pop, ease = d["baselines"]["popularity"], d["baselines"]["ease"]
        m = d["metrics"]
        text.append(f"The whole default run on the synthetic 1M copy: {d['command_seconds']} s ({d['epochs_run']} "
                    f"epochs, early stopping included; target <= 300 s). Test recall@10 {m['recall_at_10']:.3f} "
                    f"against popularity {pop['recall_at_10']:.3f} and EASE {ease['recall_at_10']:.3f}; RMSE "
                    f"{m['rmse']:.3f} (target <= 0.86; popularity {pop['rmse']:.3f}). Synthetic ratings are not "
                    "real ones: this checks that the pipeline scales, not what ML-1M's numbers would be.\n")
    return "\n".join(text + [END])


def write(r: dict) -> None:
    """Store the results and replace the scale section of bench/results.md."""
    (OUT / "scale.json").write_text(json.dumps(r, indent=2, default=float))
    md = OUT / "results.md"
    replace_section(md, BEGIN, END, markdown(r))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--keep", type=Path, help="keep the synthetic copies in this folder")
    parser.add_argument("--child")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.epochs, args.full), default=float))
    else:
        measure(tuple(args.ratings), args.keep)  # writes after every size
