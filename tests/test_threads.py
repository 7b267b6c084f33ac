"""The thread pools a training process starts TensorFlow with."""
import os

from recsys import threads


def test_training_runs_one_thread_per_op_and_as_many_ops_as_cores():
    env = threads.training_env()
    assert env["TF_NUM_INTRAOP_THREADS"] == "1"
    assert env["TF_NUM_INTEROP_THREADS"] == str(threads.cores()) and threads.cores() >= 1


def test_an_explicit_setting_in_the_environment_wins(monkeypatch):
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "2")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "")
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS")
    threads.for_training()
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "2"
    assert os.environ["TF_NUM_INTEROP_THREADS"] == str(threads.cores())


def test_the_command_line_sets_them_before_any_command(monkeypatch, capsys):
    from recsys.cli import main

    for key in threads.training_env():
        monkeypatch.setenv(key, "")  # recorded, so the test's own settings go when it ends
        monkeypatch.delenv(key)
    main(["runs", "--json"])
    assert {k: os.environ[k] for k in threads.training_env()} == threads.training_env()


def test_tensorflow_defaults_name_the_same_variables_and_let_it_choose():
    assert set(threads.tensorflow_defaults()) == set(threads.training_env())
    assert set(threads.tensorflow_defaults().values()) == {"0"}
