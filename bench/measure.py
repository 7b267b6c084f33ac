"""Small measuring helpers: medians, percentiles, peak memory of a child process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from recsys import paths


def median(xs) -> float:
    """Median, rounded for tables."""
    return round(float(np.median(xs)), 3)


def percentiles(ms) -> dict:
    """p50 and p95 of a list of milliseconds."""
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def time_calls(fn, items) -> list[float]:
    """Milliseconds of `fn(item)` for each item."""
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t) * 1000)
    return out


def run_child(args: list[str], env: dict) -> dict:
    """Run `python ARGS` to completion: wall seconds, peak RSS (MiB) and its JSON stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, **env}, cwd=paths.ROOT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # rusage of this child alone
    wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{args} failed with status {status}")
    return {"wall_seconds": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "output": json.loads(out.strip().splitlines()[-1]) if out.strip() else None}


def replace_section(md: Path, begin: str, end: str, section: str) -> None:
    """Put `section` (which starts with `begin` and ends with `end`) in the file `md`, in
    place of the one there: each bench rewrites only its own part of bench/results.md."""
    text = md.read_text() if md.exists() else ""
    if begin in text:
        text = text[:text.index(begin)] + text[text.index(end) + len(end):].lstrip("\n")
    md.write_text(text.rstrip("\n") + "\n\n" + section)
