"""Settings for a process that serves lists from many threads at once.

Streamlit runs every browser session's page in a thread of one process, and
bench/reliability.py stands in for those sessions with threads of its own. Three
things then decide a list's tail latency more than its arithmetic does:

- OpenBLAS's own worker threads. A list is a few small matrix products; with several
  sessions making them at once, each product's two BLAS threads spin against the other
  sessions' on two cores. In one-off probes of each setting alone this was the one that
  mattered; bench/reliability.py measures the server with and without all three,
  alternately (bench/results.md).
- The GIL's switch interval: a list's NumPy calls give the GIL up and win it back
  from the other sessions' page runs, each wait up to one interval (Python's is 5 ms).
- Full garbage collections: they scan every live object holding the GIL, 0.14 s on an
  idle machine once TensorFlow and a run are loaded. Objects loaded for good (the
  model, the data) are taken out of their reach (`settle_heap`).
"""
from __future__ import annotations

import gc
import sys

from threadpoolctl import threadpool_limits

BLAS_THREADS = 1
SWITCH_INTERVAL = 0.001  # seconds


def configure() -> None:
    """Make this process a many-session server: one BLAS thread per product and a short GIL
    switch interval. Call once, before the sessions start."""
    threadpool_limits(BLAS_THREADS, user_api="blas")
    sys.setswitchinterval(SWITCH_INTERVAL)


def settle_heap() -> None:
    """Leave every object alive now out of later collections: call after loading what the
    process keeps (a run, its data). What an earlier call froze is thawed and collected
    first, so a run the app's cache has since dropped is freed, not kept for good."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
