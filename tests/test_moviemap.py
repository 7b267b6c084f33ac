"""The movie map: PCA by hand, stored with the run, one row per movie."""
import numpy as np
import pandas as pd

from recsys import moviemap


def test_pca_finds_the_direction_of_most_variance():
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    # Points along (3, 4)/5 with a little noise across it, shifted away from the origin.
    points = np.outer(t * 10, [0.6, 0.8]) + np.outer(rng.normal(size=200) * 0.1, [-0.8, 0.6]) + 5.0
    xy, variance = moviemap.pca_2d(points)
    centred = points - points.mean(0)
    np.testing.assert_allclose(np.abs(xy[:, 0]), np.abs(centred @ [0.6, 0.8]), atol=0.05)
    assert variance[0] > 0.99 and variance.sum() <= 1.0 + 1e-9
    assert abs(xy[:, 0].mean()) < 1e-9  # centred


def test_pca_is_deterministic_in_sign():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(50, 6))
    a, _ = moviemap.pca_2d(v)
    b, _ = moviemap.pca_2d(v.copy())
    np.testing.assert_allclose(a, b)


def test_coordinates_are_stored_once_and_a_damaged_file_is_recomputed(tmp_path):
    v = np.random.default_rng(2).normal(size=(30, 4))
    xy, _ = moviemap.coordinates(tmp_path, v)
    assert (tmp_path / moviemap.FILE).exists()
    stored = (tmp_path / moviemap.FILE).read_bytes()
    again, _ = moviemap.coordinates(tmp_path, v * 0)  # read back, not recomputed from new vectors
    np.testing.assert_allclose(again, xy)
    (tmp_path / moviemap.FILE).write_bytes(stored[:20])
    fresh, _ = moviemap.coordinates(tmp_path, v)
    np.testing.assert_allclose(fresh, xy)
    assert not list(tmp_path.glob("*.tmp*"))


def test_frame_has_one_row_per_movie_with_its_first_genre():
    movies = pd.DataFrame({"movie_id": ["1", "2"], "movie_title": ["A (1990)", "B (1991)"],
                           "movie_genres": [("Comedy", "Drama"), ()]})
    f = moviemap.frame(np.array([[0.0, 1.0], [2.0, 3.0]]), movies, np.array([5, 0]))
    assert f.genre.tolist() == ["Comedy", "Unknown"] and f.ratings.tolist() == [5, 0]
    assert f.x.tolist() == [0.0, 2.0] and f.title.tolist() == ["A (1990)", "B (1991)"]


def test_the_recommenders_map_covers_the_catalogue(tiny_recommender):
    m = tiny_recommender.movie_map()
    assert len(m) == tiny_recommender.prep.spec.n_movies
    assert m.movie_id.tolist() == list(tiny_recommender.prep.spec.movie_ids)
    assert (tiny_recommender.run.path / moviemap.FILE).exists()
