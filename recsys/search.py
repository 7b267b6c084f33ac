"""Title keyword search: the seed's `predict_with_word`, done right.

The keyword is a literal substring (never a regex), matched ignoring case and accents,
so "miserables" finds "Misérables, Les (1995)".
"""
from __future__ import annotations

import pandas as pd

from recsys.errors import UserError
from recsys.features import fold_accents

MAX_KEYWORD = 100


def normalise(text: str) -> str:
    """Accent-free, case-folded text for literal matching."""
    return fold_accents(text.casefold())  # casefold first: "ß" -> "ss" before accents go


def check_keyword(word: str | None) -> str:
    """The stripped keyword, or a UserError that says what is wrong with it."""
    word = (word or "").strip()
    if not word:
        raise UserError("type a word from a movie title (the keyword is empty)")
    if len(word) > MAX_KEYWORD:
        raise UserError(f"the keyword is {len(word)} characters long; keep it to {MAX_KEYWORD}")
    return word


def match_titles(movies: pd.DataFrame, ratings: pd.DataFrame, word: str) -> pd.DataFrame:
    """Movies whose title contains `word`, with their number of ratings and mean rating."""
    word = check_keyword(word)
    needle = normalise(word)
    if needle:
        hit = movies[[needle in normalise(t) for t in movies.movie_title]]
    else:  # nothing left after folding (e.g. "€"): an empty needle would match every title
        hit = movies[[word.casefold() in t.casefold() for t in movies.movie_title]]
    if hit.empty:
        raise UserError(f"no movie title contains {word.strip()!r}")
    stats = ratings[ratings.movie_id.isin(hit.movie_id)].groupby("movie_id", observed=True).user_rating.agg(["size", "mean"])
    out = hit[["movie_id", "movie_title"]].merge(stats, left_on="movie_id", right_index=True, how="left")
    out = out.rename(columns={"size": "ratings", "mean": "mean_rating"})
    out["ratings"] = out.ratings.fillna(0).astype(int)
    return out.sort_values(["ratings", "movie_title"], ascending=[False, True]).reset_index(drop=True)


def top_rater(ratings: pd.DataFrame, movie_id: str) -> str:
    """The user who rated `movie_id` highest; ties go to the user with more ratings."""
    rated = ratings[ratings.movie_id == movie_id]
    if rated.empty:
        raise UserError(f"nobody rated movie {movie_id}")
    activity = ratings.user_id.value_counts()
    rated = rated.assign(activity=rated.user_id.map(activity), uid=pd.to_numeric(rated.user_id, errors="coerce"))
    best = rated.sort_values(["user_rating", "activity", "uid"], ascending=[False, False, True]).iloc[0]
    return str(best.user_id)
