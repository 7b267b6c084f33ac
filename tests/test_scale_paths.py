"""What larger datasets need: no user features, sampled evaluation, the dataset in the config."""
import numpy as np
import pytest

from recsys import evaluate as ev_module
from recsys import synth
from recsys.config import RunConfig, run_id
from recsys.errors import UserError
from recsys.prepare import prepare
from recsys.recommend import Recommender
from recsys.train import build_model, train


@pytest.fixture(scope="module")
def synthetic_copy(tmp_path_factory):
    """A small synthetic copy in the ML-25M layout: no ages, no genders, half stars."""
    out = tmp_path_factory.mktemp("synth") / "copy"
    synth.generate(out, synth.Sizes(users=120, movies=90, ratings=3000))
    return str(out)


def test_a_dataset_without_user_features_builds_a_model_without_them(synthetic_copy):
    prep = prepare(synthetic_copy)
    assert prep.spec.user_age is None and prep.spec.user_gender is None
    model = build_model(prep, RunConfig())
    features = model.query_tower.features
    assert not features.has_age and not features.has_gender
    assert not any("age" in v.name or "gender" in v.name for v in model.weights)


def test_training_and_serving_on_it(synthetic_copy):
    prep = prepare(synthetic_copy)
    result = train(RunConfig(epochs=2, batch_size=256), prep=prep)
    assert np.isfinite(result.run.metrics["rmse"]) and result.run.metrics["recall_at_10"] >= 0
    rec = Recommender(result.run, prep)
    user = prep.spec.user_ids[0]
    profile = rec.profile(user)
    assert profile["age"] is None and profile["gender"] is None and profile["ratings"] > 0
    assert len(rec.recommend(user, k=5)) == 5


def test_evaluation_samples_pairs_and_users_above_its_caps(tiny_run, monkeypatch):
    prep, run = tiny_run
    monkeypatch.setattr(ev_module, "MAX_SCORES", 50 * prep.spec.n_movies)
    monkeypatch.setattr(ev_module, "MAX_USERS", 7)
    prep.__dict__.pop("_evaluated", None)
    try:
        part = ev_module.part_of(prep, "test")
        assert len(part.pairs["user"]) == 50 < len(prep.test["user"]) and len(part.users) == 7
        assert len(part.relevant) == len(part.seen) == len(part.first) == 7
        again = ev_module.part_of(prep, "test")
        assert again is part  # one fixed sample per prepared data
        from recsys.checkpoint import load_model

        scores = ev_module.model_scores(load_model(run, prep), prep, "test")
        assert scores.user_scores.shape == (7, prep.spec.n_movies) and len(scores.pair_ratings) == 50
        metrics = ev_module.evaluate(scores, prep, "test")
        assert np.isfinite(metrics["rmse"]) and 0 <= metrics["recall_at_10"] <= 1
    finally:
        prep.__dict__.pop("_evaluated", None)


def test_the_dataset_is_part_of_the_config_and_checked():
    assert RunConfig(dataset="ml-1m").validate().dataset == "ml-1m"
    with pytest.raises(UserError, match="unknown dataset 'ml-2m'"):
        RunConfig(dataset="ml-2m").validate()
    assert run_id(RunConfig(dataset="ml-1m"), "f") != run_id(RunConfig(), "f")


def test_large_data_computes_each_users_list_query_when_first_asked(tiny_recommender, monkeypatch):
    from recsys import recommend, taste

    # A long-term taste, whatever the tiny run chose: only then is there anything to defer.
    monkeypatch.setattr(taste.Taste, "from_dict", classmethod(lambda cls, d: cls(float("inf"), 0.5)))
    eager = Recommender(tiny_recommender.run, tiny_recommender.prep)
    monkeypatch.setattr(recommend, "EAGER_RATINGS", 0)
    lazy = Recommender(tiny_recommender.run, tiny_recommender.prep)
    assert lazy.queries is None
    for row in (0, 5, 17):
        np.testing.assert_allclose(lazy.query(row), eager.query(row), rtol=1e-5, atol=1e-6)
    assert set(lazy._lazy_queries) == {0, 5, 17}
