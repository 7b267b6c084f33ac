"""Recommend: a user's profile and their top movies, exact search and Annoy side by side."""
import random

import pandas as pd
import streamlit as st

import ui
from recsys.errors import UserError

ui.page("Recommend", "🍿")
st.title("Recommendations for a user")
run_id = ui.require_run()
try:
    rec = ui.recommender(run_id)
except UserError as exc:
    ui.warn(exc)
    st.stop()
user_ids = list(rec.prep.spec.user_ids)


def _random_user() -> None:
    st.session_state["user"] = random.choice(user_ids)


pick, dice, size, hide_col = st.columns([3, 2, 3, 3], vertical_alignment="bottom")
user = pick.selectbox("User", user_ids, key="user", bind="query-params", help="Type to search the user ids")
dice.button("Random user", icon=":material/casino:", on_click=_random_user, width="stretch")
k = size.slider("How many movies", 5, 50, 10, 5, key="k")
hide_rated = hide_col.toggle("Hide movies already rated", value=True, key="hide_rated")
ui.carry("user", user)

profile = rec.profile(user)
st.subheader(f"User {ui.escape(profile['user_id'])}")
cols = st.columns([1, 1, 2, 1, 1])
cols[0].metric("Age", profile["age"])
cols[1].metric("Gender", {"M": "male", "F": "female"}[profile["gender"]])
cols[2].metric("Occupation", profile["occupation"])
cols[3].metric("Ratings", profile["ratings"])
cols[4].metric("Mean rating", f"{profile['mean_rating']:.2f}" if profile["mean_rating"] is not None else "–")
with st.expander(f"Highest-rated movies of user {ui.escape(profile['user_id'])}"):
    st.dataframe(profile["top_rated"].rename(columns={"movie_id": "Movie id", "movie_title": "Title",
                                                      "user_rating": "Stars"}), hide_index=True)
session = rec.session(user)
if len(session):
    with st.expander(f"Latest {len(session)} ratings: the session the recommendations start from"):
        st.dataframe(session.rename(columns={"movie_id": "Movie id", "title": "Title", "user_rating": "Stars"}),
                     hide_index=True)

exact = rec.recommend(user, k, method="exact", exclude_rated=hide_rated)
annoy = rec.recommend(user, k, method="annoy", exclude_rated=hide_rated)
overlap = len(set(exact.movie_id) & set(annoy.movie_id))
recall = overlap / max(len(exact), 1)


def _table(frame: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"Title": frame.title, "Score": frame.score, "Predicted rating": frame.predicted_rating,
                         "Both": frame.movie_id.isin(set(other.movie_id))})


# Half-width tables: the title gets what the three narrow columns leave.
COLUMNS = {"Title": st.column_config.TextColumn(width=175),
           "Score": st.column_config.NumberColumn(format="%.3f", help="Dot product of user and movie embeddings",
                                                  width=62),
           "Predicted rating": st.column_config.NumberColumn("Predicted", format="%.2f ★", width=78,
                                                             help="Predicted rating"),
           "Both": st.column_config.CheckboxColumn(help="Also in the other list", width=50)}
st.subheader(f"Top {k} movies")
st.metric(f"Annoy recall@{k}", f"{recall:.0%}", help="Share of the exact top-k that Annoy also returned")
left, right = st.columns(2, gap="large")
left.markdown("**Exact** (every movie scored)")
left.dataframe(_table(exact, annoy), hide_index=True, column_config=COLUMNS)
right.markdown("**Annoy** (approximate nearest neighbours)")
right.dataframe(_table(annoy, exact), hide_index=True, column_config=COLUMNS)
if hide_rated:
    st.caption(f"Movies user {ui.escape(user)} already rated are left out.")
