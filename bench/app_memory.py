"""Child process for the memory benchmark: load what the app loads for a run, print RSS."""
import json
import sys


def rss_mib(field: str) -> float:
    """A VmRSS/VmHWM line of /proc/self/status, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    import os

    from recsys.threads import tensorflow_defaults

    os.environ.update(tensorflow_defaults())  # as the app's server starts TensorFlow, not as the bench's trainer
    import streamlit  # noqa: F401  the server process has it loaded too
    from recsys.baselines import cached_metrics
    from recsys.recommend import open_run

    rec = open_run(sys.argv[1] if len(sys.argv) > 1 else None)
    rec.recommend(rec.prep.spec.user_ids[0], 10, method="exact")
    rec.recommend(rec.prep.spec.user_ids[0], 10, method="annoy")
    rec.keyword("batman", 10)
    rec.recommend_new([("50", 5.0), ("181", 4.0)], 10)
    rec.movie_map()
    cached_metrics(rec.prep)
    print(json.dumps({"rss_mib": round(rss_mib("VmRSS"), 1), "peak_rss_mib": round(rss_mib("VmHWM"), 1)}))
