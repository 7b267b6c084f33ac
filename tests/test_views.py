"""The page data that recsys.views assembles, checked without Streamlit."""
import pandas as pd
import pytest

from recsys import views
from recsys.errors import UserError

BASELINES = {"Popularity": {"rmse": 1.03, "recall_at_10": 0.12, "mean_popularity_at_10": 300.0},
             "EASE": {"recall_at_10": 0.20, "mean_popularity_at_10": 250.0},
             "Item-kNN": {"rmse": 0.98, "recall_at_10": 0.18, "mean_popularity_at_10": 280.0}}


def test_the_best_classic_baseline_follows_each_metrics_direction():
    assert views.best_baseline(BASELINES, "recall_at_10") == ("EASE", 0.20)
    assert views.best_baseline(BASELINES, "rmse") == ("Item-kNN", 0.98)  # lower is better; EASE has none
    assert views.best_baseline(BASELINES, "mean_popularity_at_10") == ("EASE", 250.0)
    assert views.best_baseline(BASELINES, "ndcg_at_10") is None
    assert views.compared("recall_at_10", 0.15, BASELINES, "Popularity") == (
        "popularity 12.0% · best classic: EASE 20.0%")
    assert views.compared("ndcg_at_10", 0.1, BASELINES, "Popularity") == "no baseline has this metric"


def test_baselines_are_labelled_by_name_and_by_split_when_there_are_several():
    found = {"popularity": {"rmse": 1.0, "params": {}, "fit_seconds": 0.1,
                            "recall_at_10_by_activity": {"light": 0.1, "medium": 0.2, "heavy": 0.3}},
             "ease": {"recall_at_10": 0.2, "params": {"lambda": 500.0}}}
    one = views.baseline_labels({("random", 42): found})
    assert one == {"Popularity": {"rmse": 1.0, "recall_at_10_light": 0.1, "recall_at_10_medium": 0.2,
                                  "recall_at_10_heavy": 0.3}, "EASE": {"recall_at_10": 0.2}}
    two = views.baseline_labels({("random", 42): found, ("temporal", 42): found}, names=["ease"])
    assert list(two) == ["EASE · random split (seed 42)", "EASE · temporal split"]


def test_runs_and_baselines_share_one_table_under_glossary_names():
    runs = pd.DataFrame({"label": ["run a"], "rmse": [0.9], "recall_at_10": [0.15]})
    table = views.with_baselines(runs, BASELINES, ["rmse", "recall_at_10"])
    assert list(table.columns) == ["Run", "RMSE", "Recall@10"]
    assert list(table.Run) == ["run a", "Baseline: Popularity", "Baseline: EASE", "Baseline: Item-kNN"]
    assert table.RMSE.isna().tolist() == [False, False, True, False]


MOVIES = {"1": "Toy Story (1995)", "2": "GoldenEye (1995)", "3": "Four Rooms (1995)", "4": "Get Shorty (1995)"}


def test_each_recommendation_is_explained_by_titles_with_their_stars():
    frame = pd.DataFrame({"movie_id": ["3", "4"], "title": ["Four Rooms (1995)", "Get Shorty (1995)"],
                          "score": [2.5, 2.0], "predicted_rating": [4.1, 3.9], "blended": [1.2, 0.8],
                          "because": [["1", "2"], ["2"]]})
    table = views.recommendation_table(frame, {"1": 5.0, "2": 4.0}, MOVIES, others=["4"])
    assert list(table.columns) == ["Title", "Watch score", "Predicted rating", "Blend", "Because you rated",
                                   "Also beside"]
    assert list(table["Because you rated"]) == ["Toy Story (1995) ★5 · GoldenEye (1995) ★4", "GoldenEye (1995) ★4"]
    assert list(table["Also beside"]) == [False, True]


def test_a_dataset_users_stars_by_movie():
    ratings = pd.DataFrame({"user_id": pd.Categorical(["7", "7", "8"]), "movie_id": pd.Categorical(["1", "2", "1"]),
                            "user_rating": [5.0, 3.0, 1.0], "timestamp": [10, 20, 30]})
    assert views.user_stars(ratings, "7") == {"1": 5.0, "2": 3.0}


def test_new_ratings_round_trip_through_the_url_and_bad_ones_say_why():
    rated = views.parse_rated("1:5, 3:4", MOVIES)
    assert rated == [("1", 5.0), ("3", 4.0)] and views.rated_text(rated) == "1:5,3:4"
    for bad, message in [("1:7", "whole number from 1 to 5"), ("99:4", "no movie has the id '99'"),
                         ("1:5,1:4", "rated twice"), ("banana", "is not MOVIE:STARS"), ("", "at least one")]:
        with pytest.raises(UserError, match=message):
            views.parse_rated(bad, MOVIES)


def test_rating_again_moves_a_movie_to_the_latest_and_the_limit_holds():
    rated = views.rate([("1", 5.0), ("2", 3.0)], "1", 4, limit=3)
    assert rated == [("2", 3.0), ("1", 4.0)]
    rated = views.rate(rated, "3", 2, limit=3)
    with pytest.raises(UserError, match="at most 3 ratings"):
        views.rate(rated, "4", 5, limit=3)
    assert views.unrate(rated, "2") == [("1", 4.0), ("3", 2.0)]


def test_the_maps_variance_sentence():
    assert views.variance_text([0.3, 0.1]).startswith("The two axes keep 40% of the variance")
    assert views.variance_text(None) == ""
