"""Feature layers, towers and the loss weighting of the multi-task model."""
import numpy as np
import pytest
import tensorflow as tf

from recsys.config import RunConfig
from recsys.history import POINTER_KEYS, query_features
from recsys.layers import MovieFeatures, UserFeatures
from recsys.train import build_model
from tiny import tiny_prep


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return tiny_prep(tmp_path_factory.mktemp("tiny"))


def _batch(prep, n=16):
    """The first n training rows with every history input any preset reads."""
    p = {k: v[:n] for k, v in prep.train.items()}
    tl = prep.timeline
    pointers = {k: p[k] for k in POINTER_KEYS}
    return {"user": tf.constant(p["user"]), "movie": tf.constant(p["movie"]),
            "timestamp": tf.constant(p["timestamp"], tf.float32), "rating": tf.constant(p["rating"]),
            **query_features(tl.movie, tl.rating, pointers, 10, prep.spec.n_movies)}


def test_user_features_shape_and_parts(prep):
    layer = UserFeatures(prep.spec, dim=8)
    users = tf.constant([0, 1, 2])
    ts = tf.constant([prep.spec.timestamp_boundaries[0], prep.spec.timestamp_mean, 2e9], tf.float32)
    out = layer(users, ts).numpy()
    # user 8 + timestamp bucket 8 + timestamp value 1 + age bucket 4 + age value 1 + gender 3 (with unknown)
    assert out.shape == (3, 8 + 8 + 1 + 4 + 1 + 3)
    ts_norm = out[:, 16]
    assert abs(ts_norm[1]) < 1e-3  # the training mean normalises to 0
    assert ts_norm[2] > ts_norm[1] > ts_norm[0]
    gender = out[:, -3:]
    np.testing.assert_array_equal(gender, np.eye(3)[prep.spec.user_gender[:3]])


def test_the_unknown_user_has_neutral_age_and_unknown_gender(prep):
    layer = UserFeatures(prep.spec, dim=4)
    unknown = tf.constant([prep.spec.n_users])
    out = layer(unknown, tf.constant([prep.spec.timestamp_mean], tf.float32)).numpy()[0]
    np.testing.assert_array_equal(out[-3:], [0, 0, 1])
    assert abs(out[-4]) < 1e-5  # the training mean age normalises to 0


def test_id_dropout_hides_users_only_in_training(prep):
    layer = UserFeatures(prep.spec, dim=4, id_dropout=1.0)
    users, ts = tf.constant([0, 1, 2]), tf.constant([prep.spec.timestamp_mean] * 3, tf.float32)
    hidden = layer(users, ts, training=True).numpy()[:, :4]
    unknown = layer.user_embedding(tf.constant([prep.spec.n_users] * 3)).numpy()
    np.testing.assert_allclose(hidden, unknown)
    np.testing.assert_allclose(layer(users, ts).numpy()[:, :4], layer.user_embedding(users).numpy())


def test_history_is_the_mean_embedding_of_every_earlier_movie(prep):
    layer = UserFeatures(prep.spec, dim=4, history_dim=6)
    history = np.zeros((2, prep.spec.n_movies), np.float32)
    history[0, [1, 4, 7]] = 1.0
    out = layer(tf.constant([0, 1]), tf.constant([prep.spec.timestamp_mean] * 2, tf.float32),
                session=tf.zeros([2, 0], tf.int32), history=tf.constant(history)).numpy()
    table = layer.history_embedding.numpy()
    np.testing.assert_allclose(out[0, :6], table[[1, 4, 7]].mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out[1, :6], 0.0)


def test_timestamp_buckets_differ_across_the_range(prep):
    layer = UserFeatures(prep.spec, dim=4)
    lo, hi = prep.spec.timestamp_boundaries[[0, -1]]
    # float32 seconds are exact to about a minute, far finer than a bucket.
    bucket = layer.ts_bucket(tf.constant([[lo - 1e5], [(lo + hi) / 2], [hi + 1e5]], tf.float32)).numpy().ravel()
    assert bucket[0] == 0 and bucket[2] == len(prep.spec.timestamp_boundaries)
    assert bucket[0] < bucket[1] < bucket[2]


def test_movie_features_mean_pool_title_words(prep):
    layer = MovieFeatures(prep.spec, dim=4)
    out = layer(tf.constant([0, 1])).numpy()
    assert out.shape == (2, 8)
    words = layer.word_embedding.embeddings.numpy()
    tokens = prep.spec.title_tokens[0]
    expected = words[tokens[tokens > 0]].mean(axis=0)
    np.testing.assert_allclose(out[0, 4:], expected, rtol=1e-5)
    np.testing.assert_allclose(out[0, :4], layer.movie_embedding.embeddings.numpy()[0])


def _grads(prep, rating_weight, retrieval_weight, training=True):
    tf.keras.utils.set_random_seed(0)
    model = build_model(prep, RunConfig(rating_weight=rating_weight, retrieval_weight=retrieval_weight))
    with tf.GradientTape() as tape:
        loss = model.compute_loss(_batch(prep), training=training)
    grads = tape.gradient(loss, model.trainable_variables)
    return model, loss, dict(zip([v.name for v in model.trainable_variables], grads))


def _nonzero(g):
    return g is not None and float(tf.reduce_sum(tf.abs(tf.convert_to_tensor(g)))) > 0


def test_zero_rating_weight_removes_the_rating_gradient(prep):
    model, _, grads = _grads(prep, 0.0, 1.0)
    head = {v.name for v in model.rating_head.trainable_variables}
    assert head and not any(_nonzero(grads[n]) for n in head)
    assert any(_nonzero(g) for n, g in grads.items() if n not in head)


def test_zero_retrieval_weight_leaves_only_the_rating_loss(prep):
    model, loss, grads = _grads(prep, 1.0, 0.0, training=False)  # no dropout: deterministic
    rating_pred = model(_batch(prep))[2]
    mse = float(tf.reduce_mean((tf.squeeze(rating_pred) - _batch(prep)["rating"]) ** 2))
    assert float(loss) == pytest.approx(mse, rel=1e-5)
    assert any(_nonzero(g) for n, g in grads.items() if "rating_head" in n or "dense" in n)


def test_weights_scale_the_losses(prep):
    _, one, _ = _grads(prep, 1.0, 0.0, training=False)
    _, three, _ = _grads(prep, 3.0, 0.0, training=False)
    assert float(three) == pytest.approx(3 * float(one), rel=1e-5)
    _, r, _ = _grads(prep, 0.0, 1.0, training=False)
    _, both, _ = _grads(prep, 1.0, 1.0, training=False)
    assert float(both) == pytest.approx(float(one) + float(r), rel=1e-4)


def test_candidate_embeddings_cover_the_catalogue(prep):
    model = build_model(prep, RunConfig())
    emb = model.candidate_embeddings(prep.spec.n_movies)
    assert emb.shape == (prep.spec.n_movies, model.preset.tower_layers[-1])


def test_seed_preset_builds_the_notebook_architecture(prep):
    model = build_model(prep, RunConfig(preset="seed"))
    dense = [l for l in model.rating_head.mlp.layers if isinstance(l, tf.keras.layers.Dense)]
    assert [l.units for l in dense] == [256, 128, 64, 64, 32, 32, 1]
    q = [l.units for l in model.query_tower.dense.layers if isinstance(l, tf.keras.layers.Dense)]
    assert q == [64, 32, 32, 32, 32]
    assert model.preset.batch_size == 8192 and model.preset.optimizer == "ranger"


def test_the_session_feeds_the_query_tower_only_when_the_preset_uses_it(prep):
    batch = _batch(prep, 8)
    assert (batch["session"].numpy() > 0).any()
    other = dict(batch, session=tf.where(batch["session"] > 0, (batch["session"] % prep.spec.n_movies) + 1, 0))
    for preset, differs in (("default", True), ("seed", False)):
        model = build_model(prep, RunConfig(preset=preset))
        q1 = model.query_tower(batch).numpy()
        q2 = model.query_tower(other).numpy()
        assert (not np.allclose(q1, q2)) == differs, preset
    assert build_model(prep, RunConfig()).preset.context_size > 0


def test_rating_head_adds_biases_factors_and_the_session_offset(prep):
    model = build_model(prep, RunConfig())
    head = model.rating_head
    for var in head.user_bias.weights + head.movie_bias.weights:
        var.assign(tf.random.normal(var.shape))
    query, candidate = tf.random.normal((3, 64)), tf.random.normal((3, 64))
    user, movie = tf.constant([0, 1, 2]), tf.constant([3, 4, 5])
    ratings = tf.constant([[5.0, 3.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    ratings = tf.pad(ratings, [[0, 0], [0, model.preset.context_size - 3]])
    got = head(query, candidate, user, movie, head.user_side(ratings)).numpy().ravel()
    offset = np.array([[4.0 - head.mean_rating], [1.0 - head.mean_rating], [0.0]], np.float32)
    mlp = head.mlp(tf.concat([query, candidate, offset], 1)).numpy().ravel()
    factors = np.sum(head.user_factor(user).numpy() * head.movie_factor(movie).numpy(), 1)
    biases = head.user_bias(user).numpy().ravel() + head.movie_bias(movie).numpy().ravel()
    np.testing.assert_allclose(got, mlp + factors + biases + head.mean_rating, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("preset", ["default", "seed"])
def test_the_frozen_rating_head_predicts_what_the_keras_head_does(prep, preset):
    # Serving scores lists with the NumPy copy: it must match the trained head exactly,
    # with and without biases, factors and the session offset.
    model = build_model(prep, RunConfig(preset=preset))
    head = model.rating_head
    for var in head.trainable_variables:
        var.assign(tf.random.normal(var.shape, stddev=0.3))
    dim = model.candidate_embeddings(prep.spec.n_movies).shape[1]
    rng = np.random.default_rng(0)
    query, candidate = rng.normal(size=(7, dim)).astype(np.float32), rng.normal(size=(7, dim)).astype(np.float32)
    user, movie = rng.integers(0, prep.spec.n_users, 7), rng.integers(0, prep.spec.n_movies, 7)
    stars = rng.integers(0, 6, (7, max(model.preset.context_size, 1))).astype(np.float32)
    side = head.user_side(tf.constant(stars)).numpy()
    expected = head(tf.constant(query), tf.constant(candidate), tf.constant(user, tf.int32), tf.constant(movie, tf.int32),
                    tf.constant(side)).numpy().ravel()
    np.testing.assert_allclose(head.frozen()(query, candidate, user, movie, side), expected, rtol=1e-5, atol=1e-5)


def _factor_gradients(model, batch) -> list:
    """Gradients of one training step's loss (the tasks' plus every penalty) w.r.t. the
    rating head's factor tables."""
    tables = [model.rating_head.user_factor.embeddings, model.rating_head.movie_factor.embeddings]
    with tf.GradientTape() as tape:
        loss = model.compute_loss(batch, training=True) + tf.add_n(model.losses)
    return tape.gradient(loss, tables)


def test_large_tables_pay_the_factor_l2_per_use(prep, monkeypatch):
    import recsys.model as model_module

    small = build_model(prep, RunConfig())
    l2, head = small.preset.rating_factor_l2, small.rating_head
    tables = [head.user_factor.embeddings.numpy(), head.movie_factor.embeddings.numpy()]
    # Small tables: the penalty is on every row, and reaches every row at every step.
    assert head.row_l2 == (0.0, 0.0)
    assert float(tf.add_n(head.user_factor.losses + head.movie_factor.losses)) == pytest.approx(
        l2 * sum(float(np.sum(t ** 2)) for t in tables), rel=1e-5)
    batch = _batch(prep)
    assert not any(isinstance(g, tf.IndexedSlices) for g in _factor_gradients(small, batch))

    monkeypatch.setattr(model_module, "large_tables", lambda rows: True)
    large = build_model(prep, RunConfig())
    head = large.rating_head
    assert head.user_factor.losses == [] and head.movie_factor.losses == []
    assert head.row_l2 == pytest.approx((l2 * (prep.spec.n_users + 1), l2 * prep.spec.n_movies))
    query, candidate = tf.random.normal((3, 64)), tf.random.normal((3, 64))
    user, movie = tf.constant([0, 1, 1]), tf.constant([3, 4, 5])
    side = head.user_side(tf.zeros((3, large.preset.context_size)))
    head(query, candidate, user, movie, side)
    assert head.losses == []  # serving adds nothing
    head(query, candidate, user, movie, side, training=True)
    u = head.user_factor.embeddings.numpy()[[0, 1, 1]]
    m = head.movie_factor.embeddings.numpy()[[3, 4, 5]]
    expected = head.row_l2[0] * np.mean(np.sum(u ** 2, 1)) + head.row_l2[1] * np.mean(np.sum(m ** 2, 1))
    assert len(head.losses) == 1 and float(head.losses[0]) == pytest.approx(expected, rel=1e-5)
    # Only the batch's rows get a gradient: no dense update of the whole table.
    assert all(isinstance(g, tf.IndexedSlices) for g in _factor_gradients(large, batch))
