"""Background jobs: the per-epoch history the Train page draws its live loss curve from."""
from types import SimpleNamespace

from recsys import jobs, paths, runs
from recsys.config import RunConfig


def test_the_history_holds_every_epoch_of_the_config_training_now(monkeypatch):
    configs = [RunConfig(rating_weight=0.0), RunConfig(rating_weight=1.0)]
    seen = []

    def fake_train(config, data_path=None, progress=None):
        for epoch in (1, 2, 3):
            progress({"epoch": epoch, "epochs": 3, "loss": 10.0 - epoch})
        seen.append([(e["run_id"], e["epoch"]) for e in jobs.history()])
        return SimpleNamespace(run=SimpleNamespace(run_id=f"run-{config.rating_weight:g}"), cached=False)

    monkeypatch.setattr("recsys.train.train", fake_train)
    monkeypatch.setattr("recsys.catalog.config_run_id", lambda config, data_path=None: f"run-{config.rating_weight:g}")
    paths.runs_dir().mkdir(parents=True)
    runs.write_json(paths.runs_dir() / ".job.json", {"state": "running", "configs": [c.__dict__ for c in configs],
                                                     "done": [], "data_path": None})
    jobs.run_job()

    # Each config's curve starts afresh: the second run's history has none of the first's epochs.
    assert seen == [[("run-0", 1), ("run-0", 2), ("run-0", 3)], [("run-1", 1), ("run-1", 2), ("run-1", 3)]]
    assert [e["loss"] for e in jobs.history()] == [9.0, 8.0, 7.0]
    assert jobs.status()["state"] == "done"


def test_starting_a_job_forgets_the_last_jobs_history(monkeypatch):
    paths.runs_dir().mkdir(parents=True)
    (paths.runs_dir() / ".job.history.jsonl").write_text('{"run_id": "old", "epoch": 1}\n')
    assert jobs.history() == [{"run_id": "old", "epoch": 1}]
    monkeypatch.setattr(jobs.subprocess, "Popen", lambda *a, **k: SimpleNamespace(pid=999_999_999))
    jobs.start([RunConfig()])
    assert jobs.history() == []


def test_no_history_before_any_job_and_a_half_written_line_is_skipped():
    assert jobs.history() == []
    paths.runs_dir().mkdir(parents=True)
    (paths.runs_dir() / ".job.history.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "lo')
    assert jobs.history() == [{"epoch": 1}]
