"""Scale benchmark for the data layer: generate synthetic copies, load them, measure.

    python -m bench.data_load [--ratings 1000000 25000000] [--keep DIR]

For each size: the seconds `recsys.synth` takes to write the copy, then, in a fresh
process, the seconds `data.load` takes (parse, canonical order, validation), the seconds
of `fingerprint()`, the process's peak RSS (VmHWM) and its RSS just after the imports,
and the memory of the loaded tables. Prints one JSON line per size.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(path: str) -> dict:
    """Load the copy at `path` in this process and measure it."""
    from recsys import data

    base = _rss_mib("VmRSS")
    start = time.perf_counter()
    ml = data.load(path)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    ml.fingerprint()
    fingerprint_s = time.perf_counter() - start
    tables = sum(int(f.memory_usage(deep=True).sum()) for f in (ml.ratings, ml.movies, ml.users))
    return {"ratings": len(ml.ratings), "users": len(ml.users), "movies": len(ml.movies),
            "load_s": round(load_s, 2), "fingerprint_s": round(fingerprint_s, 2),
            "rss_after_imports_mib": round(base), "peak_rss_mib": round(_rss_mib("VmHWM")),
            "tables_mib": round(tables / 2**20)}


def main(argv: list[str] | None = None) -> None:
    """Generate and measure one synthetic copy per size."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ratings", type=int, nargs="+", default=[1_000_000, 25_000_000])
    p.add_argument("--keep", help="write the copies here (default: a temporary folder, removed)")
    args = p.parse_args(argv)
    from recsys import synth

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        for n in args.ratings:
            out = root / f"synthetic-{n}"
            sizes = synth.Sizes.for_ratings(n)
            start = time.perf_counter()
            synth.generate(out, sizes)
            generate_s = time.perf_counter() - start
            run = subprocess.run([sys.executable, "-m", "bench.data_load", "--child", str(out)],
                                 capture_output=True, text=True, check=True)
            size_mib = sum(f.stat().st_size for f in out.iterdir()) / 2**20
            print(json.dumps({"generate_s": round(generate_s, 2), "copy_mib": round(size_mib),
                              **json.loads(run.stdout)}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
    else:
        main()
