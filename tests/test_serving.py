"""The settings of a process that serves many sessions (recsys/serving.py), and that the app's
server has them. Each check runs in a fresh interpreter: the settings are process-wide."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = """
import gc, json, sys, threadpoolctl
blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
print(json.dumps({"blas": blas, "switch": sys.getswitchinterval(), "frozen": gc.get_freeze_count()}))
"""


def _settings(setup: str) -> dict:
    # two BLAS threads to start from, whatever this machine's core count
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", setup + REPORT], cwd=ROOT, capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_fresh_process_uses_several_blas_threads_and_pythons_switch_interval():
    # the baseline the settings change: otherwise the tests below could not fail
    found = _settings("import numpy")
    assert found["blas"] and set(found["blas"]) == {2} and found["switch"] == 0.005 and found["frozen"] == 0


def test_configure_gives_each_product_one_blas_thread_and_a_short_switch_interval():
    from recsys import serving

    found = _settings("import numpy\nfrom recsys import serving\nserving.configure()")
    assert found["blas"] == [serving.BLAS_THREADS] * len(found["blas"]) == [1] * len(found["blas"])
    assert found["switch"] == serving.SWITCH_INTERVAL


def test_the_apps_process_is_configured_as_soon_as_a_page_imports_ui():
    from recsys import serving

    found = _settings("import ui")
    assert set(found["blas"]) == {serving.BLAS_THREADS} and found["switch"] == serving.SWITCH_INTERVAL


def test_settle_heap_collects_the_garbage_and_freezes_what_lives():
    found = _settings(
        "import gc, weakref\nfrom recsys import serving\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a\n"  # a cycle only the collector frees
        "gone = weakref.ref(a); del a, b\n"
        "kept = [Node() for _ in range(1000)]\n"
        "gc.disable(); serving.settle_heap(); assert gone() is None\n")
    assert found["frozen"] > 1000  # everything alive, the kept nodes among them


def test_what_an_earlier_settle_froze_is_freed_once_dropped():
    # A run the app's cache evicts must not stay frozen for the process's life.
    found = _settings(
        "import gc, weakref\nfrom recsys import serving\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a\n"
        "gone = weakref.ref(a)\n"
        "gc.disable(); serving.settle_heap(); assert gone() is not None\n"  # alive, so frozen
        "del a, b; serving.settle_heap(); assert gone() is None\n")
    assert found["frozen"] > 0
