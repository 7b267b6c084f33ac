"""`make bench-steps`: what a training step costs, the trainer's choices A/B in one run.

    python -m bench.steps [--data PATH ...] [--rounds 5]

Each variant trains the default model (`recsys.train.compiled_model`, its batches from
`training_batches`) with `model.fit` over a fixed number of examples, in a fresh process:
TensorFlow fixes its thread pools when its runtime starts, so a process cannot try two.
The variants alternate round by round and the table gives medians over the rounds: wall
examples per second, and the process's CPU time per example, which this shared machine
moves far less than wall time. Data: ML-100K and a synthetic 1M copy (`recsys.synth`),
or the copies given. Results: bench/steps.json and a section of bench/results.md.
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
BEGIN, END = "<!-- steps -->", "<!-- /steps -->"  # bench/results.md's section
EXAMPLES = 300_000  # per measurement: about 4-5 s of training, after one call to trace
ML_100K = "ml-100k"  # the default data, wherever `make setup` put it
# name -> (steps per call into TensorFlow, the trainer's thread pools (else TensorFlow's own),
# the optimiser named (None: the one the trainer picks for the data, `train.optimizer_for`)).
# Each row changes one thing from the row above it; on ML-100K the last two are the same
# run twice (the trainer keeps Adam there), which shows the noise between processes.
VARIANTS = {
    "1 step a call, TensorFlow's threads, Adam": (1, False, "adam"),
    "8 steps a call, TensorFlow's threads, Adam": (8, False, "adam"),
    "8 steps a call, 1 thread per op, Adam": (8, True, "adam"),
    "8 steps a call, 1 thread per op, the trainer's optimiser": (8, True, None),
}
BASELINE = next(iter(VARIANTS))
MEDIANS = ("examples_per_second", "cpu_us_per_example")


def log(msg: str) -> None:
    """Progress on stderr."""
    print(f"[steps {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def child(data: str, variant: str) -> dict:
    """In a fresh process: examples per second and CPU µs per example of one variant."""
    os.environ["RECSYS_ARTIFACTS"] = tempfile.mkdtemp(prefix="steps-")
    from recsys import train
    from recsys.config import RunConfig
    from recsys.prepare import prepare

    steps_per_call, _, optimizer = VARIANTS[variant]
    prep = prepare(None if data == ML_100K else data)
    config = RunConfig(optimizer=optimizer)
    preset = config.resolved_preset()
    model = train.compiled_model(config, prep, steps_per_call)
    batch = preset.batch_size
    # The dataset itself, as the trainer passes it: given a Python iterator, Keras wraps it
    # in a generator dataset, and every batch then crosses into Python and back.
    batches = train.training_batches(prep, preset, config.seed)
    model.fit(batches, epochs=1, steps_per_epoch=2 * steps_per_call, verbose=0)  # traced here, not timed
    steps = max(steps_per_call, EXAMPLES // batch // steps_per_call * steps_per_call)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"examples_per_second": steps * batch / wall, "cpu_us_per_example": cpu / (steps * batch) * 1e6,
            "optimizer": train.optimizer_for(config, prep)}


def _run_child(data: str, variant: str) -> dict:
    from recsys.threads import tensorflow_defaults, training_env

    env = {"TF_CPP_MIN_LOG_LEVEL": "3", **(training_env() if VARIANTS[variant][1] else tensorflow_defaults())}
    return run_child(["-m", "bench.steps", "--child", data, variant], env)["output"]


def measure(datas: list[str], rounds: int) -> dict:
    """Every variant on every data, alternating; medians and ratios to the first variant."""
    out = {}
    for data in datas:
        samples = {v: [] for v in VARIANTS}
        for r in range(rounds):
            for variant in VARIANTS:
                samples[variant].append(_run_child(data, variant))
                log(f"{Path(data).name} round {r + 1}/{rounds}, {variant}: "
                    f"{samples[variant][-1]['examples_per_second']:,.0f} examples/s")
        rows = {v: {**{key: float(np.median([s[key] for s in got])) for key in MEDIANS},
                    "optimizer": got[0].get("optimizer", "")} for v, got in samples.items()}
        base = rows[BASELINE]
        for row in rows.values():
            row["speed_up"] = row["examples_per_second"] / base["examples_per_second"]
            row["cpu_ratio"] = base["cpu_us_per_example"] / row["cpu_us_per_example"]
        out[data] = {"rows": rows, "samples": samples}
    return {"rounds": rounds, "examples": EXAMPLES, "date": time.strftime("%Y-%m-%d %H:%M"), "data": out}


def _name(data: str) -> str:
    return "ML-100K" if data == ML_100K else f"synthetic copy `{Path(data).name}`"


def markdown(r: dict) -> str:
    """The steps section of bench/results.md."""
    head = ["data", "variant", "optimiser", "examples/s", "× first", "rounds' range", "CPU µs per example", "CPU × first"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for data, d in r["data"].items():
        for variant, row in d["rows"].items():
            speeds = [s["examples_per_second"] for s in d["samples"][variant]]
            lines.append(f"| {_name(data)} | {variant} | {row['optimizer']} | {row['examples_per_second']:,.0f} | "
                         f"{row['speed_up']:.2f} | {min(speeds):,.0f}-{max(speeds):,.0f} | "
                         f"{row['cpu_us_per_example']:.1f} | {row['cpu_ratio']:.2f} |")
    return "\n".join([BEGIN, f"## A training step (`make bench-steps`, {r['date']})\n",
                      f"The default model's `model.fit` over {r['examples']:,} examples per measurement, each "
                      f"variant in a fresh process, the variants alternating; medians of {r['rounds']} rounds. "
                      "\"× first\" is the ratio to the first variant in the same run (CPU: its CPU time over this "
                      "one's).\n", *lines, END])


def write(r: dict) -> None:
    """Store the results and replace the steps section of bench/results.md."""
    (OUT / "steps.json").write_text(json.dumps(r, indent=2))
    md = OUT / "results.md"
    replace_section(md, BEGIN, END, markdown(r))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", help="copies to measure (default: ML-100K and a synthetic 1M copy)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("DATA", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        sys.exit(0)
    datas = args.data
    if not datas:
        from recsys import synth

        folder = Path(tempfile.mkdtemp(prefix="steps-data-")) / "synthetic-1000000"
        log("writing 1,000,000 synthetic ratings")
        synth.generate(folder, synth.Sizes.for_ratings(1_000_000))
        datas = [ML_100K, str(folder)]
    write(measure(datas, args.rounds))
    log(f"wrote {OUT / 'steps.json'} and its section of {OUT / 'results.md'}")
