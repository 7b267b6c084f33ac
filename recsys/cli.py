"""Command line: `python -m recsys {data,train,runs,...}`. Bad input exits 2 with one line."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

from recsys import threads
from recsys.datasets import NAMES as DATASET_NAMES
from recsys.errors import UserError
from recsys.split import DEFAULT_SEED

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up noise off the CLI


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _run_id(text: str) -> str:
    from recsys.runs import check_run_id

    try:
        return check_run_id(text)  # never a path: --run ../../X or /tmp/X is refused
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit 2
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    p = _Parser(prog="python -m recsys", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("data", help="load a MovieLens dataset and report where it came from and its counts")
    d.add_argument("--dataset", choices=DATASET_NAMES,
                   help="which dataset (default: the one a --data copy holds, else ml-100k)")
    d.add_argument("--data", help="a GroupLens copy (folder or zip) or a synthetic copy")
    d.add_argument("--json", action="store_true")

    g = sub.add_parser("synth", help="write a synthetic MovieLens-like copy in the ML-25M CSV layout")
    g.add_argument("--ratings", type=_int, required=True)
    g.add_argument("--users", type=_int, help="default: ratings / 154, as in ML-25M")
    g.add_argument("--movies", type=_int, help="default: ratings / 400, as in ML-25M")
    g.add_argument("--out", required=True, help="the folder to write ratings.csv, movies.csv, synthetic.json")
    g.add_argument("--seed", type=_int, default=42)
    g.add_argument("--json", action="store_true")

    t = sub.add_parser("train", help="train a run (or return the stored one)")
    t.add_argument("--rating-weight", type=_float, required=True)
    t.add_argument("--retrieval-weight", type=_float, required=True)
    t.add_argument("--preset", default="default")
    t.add_argument("--epochs", type=_int)
    t.add_argument("--batch-size", type=_int)
    t.add_argument("--learning-rate", type=_float)
    t.add_argument("--optimizer")
    t.add_argument("--seed", type=_int, default=42)
    t.add_argument("--split-seed", type=_int, default=DEFAULT_SEED)
    t.add_argument("--split", default="random", help="evaluation protocol: random or temporal")
    t.add_argument("--dataset", choices=DATASET_NAMES, help="which MovieLens (default: the --data copy's, else ml-100k)")
    t.add_argument("--data", help="a GroupLens copy (folder or zip) or a synthetic copy")
    t.add_argument("--workers", type=_int, default=1,
                   help="tf.distribute worker processes on this machine (with TF_CONFIG set: this is one of them)")
    t.add_argument("--json", action="store_true")

    b = sub.add_parser("baselines", help="popularity, EASE and item-kNN on the same split and metrics")
    b.add_argument("--split", default="random", help="evaluation protocol: random or temporal")
    b.add_argument("--split-seed", type=_int, default=DEFAULT_SEED)
    b.add_argument("--dataset", choices=DATASET_NAMES, help="which MovieLens (default: the --data copy's, else ml-100k)")
    b.add_argument("--data", help="a GroupLens copy (folder or zip) or a synthetic copy")
    b.add_argument("--json", action="store_true")

    r = sub.add_parser("runs", help="list stored runs (damaged ones with the reason)")
    r.add_argument("--json", action="store_true")

    x = sub.add_parser("delete", help="delete a stored run, or a damaged folder `runs` lists")
    x.add_argument("name", help="a run id, or the name `runs` lists for a damaged folder")
    x.add_argument("--json", action="store_true")

    i = sub.add_parser("index", help="Annoy against exact search: recall@10 and query times")
    i.add_argument("--run", type=_run_id, help="run id (default: the app's default run)")
    i.add_argument("--rebuild", action="store_true", help="rebuild the indexes first")
    i.add_argument("--json", action="store_true")

    c = sub.add_parser("recommend", help="top-k movies for a user, or for a new user's ratings")
    who = c.add_mutually_exclusive_group(required=True)
    who.add_argument("--user")
    who.add_argument("--rated", help="a new user's ratings, oldest first: MOVIE:STARS,MOVIE:STARS,...")
    c.add_argument("--age", type=_float, help="a new user's age (optional)")
    c.add_argument("--gender", choices=("F", "M"), help="a new user's gender (optional)")
    c.add_argument("--k", type=_int, default=10)
    how = c.add_mutually_exclusive_group()
    how.add_argument("--exact", dest="method", action="store_const", const="exact")
    how.add_argument("--annoy", dest="method", action="store_const", const="annoy")
    c.add_argument("--include-rated", action="store_true", help="keep movies the user already rated")
    c.add_argument("--rank", default="blend", help="order: watch (retrieval), love (predicted rating) or blend")
    c.add_argument("--candidates", type=_int, help="movies the first stage retrieves (default: the run's)")
    c.add_argument("--run", type=_run_id)
    c.add_argument("--json", action="store_true")

    s = sub.add_parser("search", help="movies whose title contains WORD, their neighbours, a fan's picks")
    s.add_argument("word")
    s.add_argument("--k", type=_int, default=10)
    s.add_argument("--movie", help="which match to expand (default: the most rated)")
    s.add_argument("--run", type=_run_id)
    s.add_argument("--json", action="store_true")
    return p


def _progress_bar(event: dict) -> None:
    width = 30
    done = event["epoch"] / event["epochs"]
    bar = "#" * int(width * done) + "-" * (width - int(width * done))
    losses = " ".join(f"{k}={event[k]:.4f}" for k in ("rating_loss", "retrieval_loss") if k in event)
    print(f"\r[{bar}] epoch {event['epoch']}/{event['epochs']} {losses} "
          f"val_rmse={event['val_rmse']:.3f} val_top100={event['val_top_100_accuracy']:.3f} "
          f"eta {event['eta_seconds']:.0f}s", end="", file=sys.stderr, flush=True)


def cmd_data(args) -> dict:
    """Load the data; print its source and counts."""
    from recsys import data

    return data.load(args.data, dataset=args.dataset).summary()


def cmd_synth(args) -> dict:
    """Write a synthetic copy; print its sizes, folder and the seconds it took."""
    import time

    from recsys import synth

    sizes = synth.Sizes.for_ratings(args.ratings, users=args.users, movies=args.movies, seed=args.seed)
    start = time.perf_counter()
    marker = synth.generate(args.out, sizes)
    return {**marker, "out": os.path.abspath(args.out), "seconds": round(time.perf_counter() - start, 2)}


def cmd_train(args) -> dict:
    """Train (or fetch from the cache) one run."""
    from recsys.config import RunConfig

    config = RunConfig(rating_weight=args.rating_weight, retrieval_weight=args.retrieval_weight,
                       preset=args.preset, epochs=args.epochs, batch_size=args.batch_size,
                       learning_rate=args.learning_rate, optimizer=args.optimizer, seed=args.seed,
                       split_seed=args.split_seed, split=args.split, dataset=args.dataset,
                       workers=args.workers).validate()  # before TensorFlow is imported
    if args.data and not os.path.exists(args.data):
        raise UserError(f"data path {args.data} does not exist")
    progress = None if args.json else _progress_bar
    if config.workers > 1 and "TF_CONFIG" in os.environ:  # one of N hosts: worker 0 decides about the cache
        from recsys.distributed import run_worker

        out = run_worker(config, args.data, progress=progress)
        if not args.json:
            print(file=sys.stderr)
        return out
    from recsys.catalog import cached_run

    hit = cached_run(config, args.data)
    if hit is not None:  # answer from the store without importing TensorFlow
        return hit.train_json(cached=True)
    from recsys import limits

    limits.check(config)  # the same limit as the app's queue (RECSYS_MAX_TRAIN_MINUTES)
    if config.workers > 1:  # N local worker processes (recsys/distributed.py)
        from recsys import distributed

        launched = distributed.train(config, data_path=args.data, progress=progress)
        if not args.json:
            print(file=sys.stderr)
        return launched.to_json()
    from recsys.train import train

    result = train(config, progress=progress, data_path=args.data)
    if not args.json:
        print(file=sys.stderr)
    return result.to_json()


def cmd_baselines(args) -> dict:
    """Each classic baseline's test metrics on the chosen split (cached in the artifacts)."""
    from recsys.split import check_protocol

    check_protocol(args.split)
    if args.data and not os.path.exists(args.data):
        raise UserError(f"data path {args.data} does not exist")
    from recsys.baselines import cached_metrics
    from recsys.prepare import prepare

    return cached_metrics(prepare(args.data, args.split_seed, args.split, args.dataset))


def cmd_runs(args) -> list:
    """List the stored runs, marking the app's default; damaged folders come last, with the reason."""
    from recsys.catalog import damaged_runs, run_summaries

    return run_summaries() + damaged_runs()


def cmd_delete(args) -> dict:
    """Delete one stored run (or damaged folder) by the name `runs` lists."""
    from recsys import runs

    runs.delete(args.name)
    return {"deleted": args.name}


def cmd_index(args) -> dict:
    """Measure Annoy against exact search on the run's embeddings."""
    from recsys import index
    from recsys.recommend import open_run

    rec = open_run(args.run)
    if args.rebuild:
        rec.build_index()
    queries = np.stack([rec.query(r) for r in range(rec.prep.spec.n_users)])
    out = index.measure(rec.index, queries, rec.candidates, user_vectors=rec.user_vectors)
    out["run_id"] = rec.run.run_id
    out["n_trees"], out["search_k"] = rec.index.meta["n_trees"], rec.index.search_k
    out["annoy_dot_metric_recall_at_10"] = round(index.dot_metric_recall(queries, rec.user_vectors), 4)
    return out


def _records(frame) -> list[dict]:
    return json.loads(frame.to_json(orient="records")) if frame is not None else None


def cmd_recommend(args) -> dict:
    """Top-k recommendations for one user."""
    from recsys.recommend import open_run

    from recsys.ranking import check_rank
    from recsys.recommend import check_candidates, check_k

    check_rank(args.rank)  # bad input fails before TensorFlow loads
    check_k(args.k)
    if args.candidates is not None:
        check_candidates(args.candidates)
    rated = None
    if args.rated is not None:
        from recsys.newuser import check_profile, parse_rated

        rated = parse_rated(args.rated)
        check_profile(args.age, args.gender)
    rec = open_run(args.run)
    method = args.method or "exact"
    if rated is None:
        top = rec.recommend(args.user, args.k, method=method, exclude_rated=not args.include_rated, rank=args.rank,
                            candidates=args.candidates)
    else:
        top = rec.recommend_new(rated, args.k, method=method, rank=args.rank, candidates=args.candidates,
                                age=args.age, gender=args.gender)
    who = {"user": str(args.user)} if rated is None else {"rated": [[m, s] for m, s in rated]}
    return {"run_id": rec.run.run_id, **who, "method": method, "rank": args.rank,
            "candidates": max(args.k, args.candidates or rec.blend.candidates), "recommendations": _records(top)}


def cmd_search(args) -> dict:
    """Keyword search over titles, expanded for one match."""
    from recsys import search

    search.check_keyword(args.word)  # fail fast, before TensorFlow loads
    from recsys.recommend import open_run

    rec = open_run(args.run)
    found = rec.keyword(args.word, args.k, movie_id=args.movie)
    return {**found, "run_id": rec.run.run_id, "matches": _records(found["matches"]),
            "neighbours": _records(found["neighbours"]), "recommendations": _records(found["recommendations"])}


COMMANDS = {"data": cmd_data, "synth": cmd_synth, "train": cmd_train, "baselines": cmd_baselines, "runs": cmd_runs,
            "delete": cmd_delete, "index": cmd_index, "recommend": cmd_recommend, "search": cmd_search}


def _print_human(out) -> None:
    if isinstance(out, dict):
        for k, v in out.items():
            print(f"{k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    else:
        for item in out:
            print(json.dumps(item))


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    threads.for_training()  # before TensorFlow starts: training is what this process may do
    try:
        args = build_parser().parse_args(argv)
        out = COMMANDS[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, default=lambda x: None if isinstance(x, float) and math.isnan(x) else str(x)))
    else:
        _print_human(out)
    return 0
