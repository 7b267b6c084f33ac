"""Which runs exist, and which one is the app's default."""
from __future__ import annotations

from recsys import data, runs
from recsys.config import RunConfig, run_id
from recsys.errors import UserError
from recsys.split import DEFAULT_SEED

DEFAULT_CONFIG = RunConfig(rating_weight=1.0, retrieval_weight=1.0, preset="default")


def config_run_id(config: RunConfig, data_path: str | None = None) -> str:
    """The run id `config` has on the current data, computed without TensorFlow."""
    return run_id(config, data.load(data_path, dataset=config.dataset).fingerprint())


def default_run_id(data_path: str | None = None) -> str:
    """Id of the default config's run on the current data (trained or not)."""
    return config_run_id(DEFAULT_CONFIG, data_path)


def cached_run(config: RunConfig, data_path: str | None = None) -> runs.Run | None:
    """The stored, servable run for `config`, if it was trained before; cheap (no TensorFlow).

    A damaged or older run of the config is not an answer: training it again replaces it.
    """
    return runs.find(config_run_id(config, data_path))


def run_summaries(data_path: str | None = None) -> list[dict]:
    """Every readable run's summary, with `default: true` on the app's default run.

    Runs made by an older version carry `older` (why this code can't serve them).
    Damaged folders are not here: see `damaged_runs`. Without data the default is unknown.
    """
    found = runs.list_runs()
    if not found:
        return []
    try:
        default = default_run_id(data_path)
    except UserError:  # no data to tell the default run by: still list the runs
        default = None
    return [{**r.summary(), "default": r.run_id == default} for r in found]


def damaged_runs() -> list[dict]:
    """Every folder of the run store that is not a readable run: `{"run_id": name, "damaged": reason}`."""
    return [d.summary() for d in runs.scan()[1]]


def baselines(data_path: str | None = None, split_seed: int = DEFAULT_SEED, split: str = "random",
              dataset: str | None = None) -> dict[str, dict]:
    """Popularity, EASE and item-kNN test metrics on the same split as the runs (cached on disk)."""
    from recsys.baselines import cached_metrics
    from recsys.prepare import prepare

    return cached_metrics(prepare(data_path, split_seed, split, dataset))


def popularity_baseline(data_path: str | None = None, split_seed: int = DEFAULT_SEED) -> dict:
    """The popularity baseline's test metrics, on the same split as the runs."""
    return baselines(data_path, split_seed)["popularity"]
