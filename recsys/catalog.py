"""Which runs exist, and which one is the app's default."""
from __future__ import annotations

from recsys import data, runs
from recsys.config import RunConfig, run_id

DEFAULT_CONFIG = RunConfig(rating_weight=1.0, retrieval_weight=1.0, preset="default")


def config_run_id(config: RunConfig, data_path: str | None = None) -> str:
    """The run id `config` has on the current data, computed without TensorFlow."""
    return run_id(config, data.load(data_path).fingerprint())


def default_run_id(data_path: str | None = None) -> str:
    """Id of the default config's run on the current data (trained or not)."""
    return config_run_id(DEFAULT_CONFIG, data_path)


def cached_run(config: RunConfig, data_path: str | None = None) -> runs.Run | None:
    """The stored run for `config`, if it was trained before; cheap (no TensorFlow)."""
    rid = config_run_id(config, data_path)
    return runs.load(rid) if runs.is_finished(rid) else None


def run_summaries(data_path: str | None = None) -> list[dict]:
    """Every finished run's summary, with `default: true` on the app's default run."""
    found = runs.list_runs()
    if not found:
        return []
    default = default_run_id(data_path)
    return [{**r.summary(), "default": r.run_id == default} for r in found]


def baselines(data_path: str | None = None, split_seed: int = 42, split: str = "random") -> dict[str, dict]:
    """Popularity, EASE and item-kNN test metrics on the same split as the runs (cached on disk)."""
    from recsys.baselines import cached_metrics
    from recsys.prepare import prepare

    return cached_metrics(prepare(data_path, split_seed, split))


def popularity_baseline(data_path: str | None = None, split_seed: int = 42) -> dict:
    """The popularity baseline's test metrics, on the same split as the runs."""
    return baselines(data_path, split_seed)["popularity"]
