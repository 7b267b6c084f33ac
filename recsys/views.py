"""What the app's pages show, assembled from recsys answers: plain data in, plain data out.

No Streamlit here (the pages draw), and no TensorFlow at import time: the modules that
need it are imported inside the functions that use a model or a baseline.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping

import pandas as pd

from recsys import glossary
from recsys.errors import UserError
from recsys.split import DEFAULT_SEED

STAR = "★"


# ---------------------------------------------------------------- splits and baselines
def split_name(split: str, split_seed: int = DEFAULT_SEED) -> str:
    """How a protocol reads in a sentence: "random split (seed 42)", "temporal split"."""
    return f"{split} split" + (f" (seed {split_seed})" if split == "random" else "")


def baseline_labels(per_split: Mapping[tuple[str, int], Mapping[str, dict]],
                    names: Collection[str] | None = None) -> dict[str, dict[str, float]]:
    """`{(split, seed): catalog.baselines(...)}` as `{label: flat glossary metrics}` for the charts,
    keeping the baselines in `names` (all when None).

    With one split the label is the baseline's name ("EASE"); with several it also names
    the split ("EASE · temporal split"), so no run is measured against another split's mark.
    """
    from recsys.baselines import LABELS  # imports TensorFlow; computing baselines did already

    out = {}
    for (split, seed), found in per_split.items():
        for name, metrics in found.items():
            if names is not None and name not in names:
                continue
            label = LABELS.get(name, name)
            if len(per_split) > 1:
                label += f" · {split_name(split, seed)}"
            out[label] = only_metrics(metrics)
    return out


def only_metrics(metrics: Mapping) -> dict[str, float]:
    """The glossary's metrics of a run or baseline (per-activity recall spread out), nothing else."""
    flat = glossary.flat(dict(metrics))
    return {k: float(v) for k, v in flat.items()
            if k in glossary.METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)}


def best_baseline(baselines: Mapping[str, Mapping], key: str) -> tuple[str, float] | None:
    """The baseline best at `key` (its direction from the glossary) and its value; None if none has it."""
    found = [(label, float(m[key])) for label, m in baselines.items() if isinstance(m.get(key), (int, float))]
    if not found or key not in glossary.METRICS:
        return None
    pick = max if glossary.METRICS[key].higher_is_better else min
    return pick(found, key=lambda item: item[1])


def with_baselines(runs: pd.DataFrame, baselines: Mapping[str, Mapping], keys: Collection[str]) -> pd.DataFrame:
    """The runs' `keys`, then one row per baseline, under glossary labels ("Run" names each row)."""
    rows = [{"Run": r["label"], **{k: r.get(k) for k in keys}} for _, r in runs.iterrows()]
    rows += [{"Run": f"Baseline: {label}", **{k: m.get(k) for k in keys}} for label, m in baselines.items()]
    frame = pd.DataFrame(rows, columns=["Run", *keys])
    return frame.rename(columns={k: glossary.label(k) for k in keys})


def compared(key: str, value: float | None, baselines: Mapping[str, Mapping], popularity: str) -> str:
    """One line on how `value` stands: the popularity baseline's value and the best classic one's."""
    parts = []
    pop = baselines.get(popularity, {}).get(key)
    if isinstance(pop, (int, float)):
        parts.append(f"popularity {glossary.fmt(key, pop)}")
    best = best_baseline(baselines, key)
    if best is not None:
        parts.append(f"best classic: {best[0]} {glossary.fmt(key, best[1])}")
    return " · ".join(parts) if parts else "no baseline has this metric"


# ---------------------------------------------------------------- recommendation lists
def user_stars(ratings: pd.DataFrame, user_id: str) -> dict[str, float]:
    """A dataset user's stars by movie id (their latest rating of a movie wins)."""
    mine = ratings[ratings.user_id == str(user_id)].sort_values("timestamp")
    return dict(zip(mine.movie_id.astype(str), mine.user_rating.astype(float)))


def explain(because: list[str], stars: Mapping[str, float], titles: Mapping[str, str]) -> str:
    """The rated movies behind a recommendation, with their stars: "Fargo (1996) ★5 · Heat (1995) ★4"."""
    return " · ".join(f"{titles.get(m, m)} {STAR}{stars[m]:g}" if m in stars else str(titles.get(m, m))
                      for m in because)


def recommendation_table(frame: pd.DataFrame, stars: Mapping[str, float], titles: Mapping[str, str],
                         others: Collection[str] = ()) -> pd.DataFrame:
    """A Recommender list for the page: title, both scores and the blend, why, and whether the
    list beside it has the movie too."""
    return pd.DataFrame({
        "Title": frame.title.to_numpy(), "Watch score": frame.score.to_numpy(),
        "Predicted rating": frame.predicted_rating.to_numpy(), "Blend": frame.blended.to_numpy(),
        "Because you rated": [explain(b, stars, titles) for b in frame.because],
        "Also beside": frame.movie_id.isin(set(others)).to_numpy(),
    })


def baseline_table(frame: pd.DataFrame, others: Collection[str] = ()) -> pd.DataFrame:
    """A baseline's list (`Recommender.baseline`) for the page: title, score, predicted rating
    where it predicts one, and whether the model's list has the movie too."""
    out = pd.DataFrame({"Title": frame.title.to_numpy(), "Score": frame.score.to_numpy()})
    if "predicted_rating" in frame:
        out["Predicted rating"] = frame.predicted_rating.to_numpy()
    out["Also beside"] = frame.movie_id.isin(set(others)).to_numpy()
    return out


# ---------------------------------------------------------------- a new user's ratings
def parse_rated(text: str | None, known: Collection[str]) -> list[tuple[str, float]]:
    """"50:5,181:4" (from the URL) as [(movie id, stars)], each a movie of the catalogue; else a UserError."""
    from recsys import newuser  # its checks; it imports TensorFlow, which the page loads anyway

    rated = newuser.parse_rated(text)
    unknown = [m for m, _ in rated if m not in known]
    if unknown:
        raise UserError(f"no movie has the id {unknown[0]!r}")
    return rated


def rated_text(rated: list[tuple[str, float]]) -> str:
    """The ratings as the URL holds them: "50:5,181:4"."""
    return ",".join(f"{m}:{s:g}" for m, s in rated)


def rate(rated: list[tuple[str, float]], movie_id: str, stars: float, limit: int) -> list[tuple[str, float]]:
    """The ratings with `movie_id` rated `stars` as the latest one (a movie rated again moves to the
    end: the model reads the latest ratings as the session). A UserError past `limit` ratings."""
    kept = [(m, s) for m, s in rated if m != str(movie_id)]
    if len(kept) >= limit:
        raise UserError(f"at most {limit} ratings; remove one first")
    return [*kept, (str(movie_id), float(stars))]


def unrate(rated: list[tuple[str, float]], movie_id: str) -> list[tuple[str, float]]:
    """The ratings without `movie_id`."""
    return [(m, s) for m, s in rated if m != str(movie_id)]


# ---------------------------------------------------------------- the movie map
def movie_highlight(rec, movie_id: str, k: int = 10) -> dict[str, list[str]]:
    """The map's groups for a movie: the movie itself and its Annoy neighbours."""
    neighbours = rec.similar(movie_id, k, method="annoy")
    return {"Chosen movie": [str(movie_id)], "Annoy neighbours": neighbours.movie_id.astype(str).tolist()}


def user_highlight(rec, user_id: str, k: int = 10, rank: str = "blend") -> dict[str, list[str]]:
    """The map's groups for a dataset user: the movies they rated and their top-k recommendations."""
    rated = user_stars(rec.prep.ml.ratings, user_id)
    picks = rec.recommend(user_id, k, rank=rank)
    return {"Rated by the user": list(rated), "Recommended": picks.movie_id.astype(str).tolist()}


def variance_text(variance) -> str:
    """What the map's two axes keep of the embeddings' spread, in one sentence."""
    if variance is None or len(variance) < 2:
        return ""
    first, second = float(variance[0]), float(variance[1])
    return (f"The two axes keep {first + second:.0%} of the variance of the movie embeddings "
            f"({first:.0%} and {second:.0%}); movies close here are often close in the model, "
            "but closeness in the other dimensions is not shown.")
