"""Search: movies whose title holds a word, a match's Annoy neighbours and its biggest fan's picks."""
import pandas as pd
import streamlit as st

import ui
from recsys import search
from recsys.errors import UserError

ui.page("Search", "🔎")
st.title("Search movies by a word")
run_id = ui.require_run()

box, size = st.columns([3, 1], vertical_alignment="bottom")
word = box.text_input("A word from a movie title", key="word", bind="query-params", placeholder="e.g. batman")
k = size.slider("How many", 5, 30, 10, 5, key="search_k")
ui.carry("word", word.strip())

if not word:
    st.info("Type a word from a movie title, for example *batman*, *star* or *miserables*.",
            icon=":material/search:")
    st.stop()
try:
    search.check_keyword(word)  # before loading the model: bad input needs no TensorFlow
    rec = ui.recommender(run_id)
    matches = search.match_titles(rec.prep.ml.movies, rec.prep.ml.ratings, word)
except UserError as exc:
    ui.warn(exc)
    st.stop()

titles = dict(zip(matches.movie_id, matches.movie_title))
st.dataframe(pd.DataFrame({"Title": matches.movie_title, "Ratings": matches.ratings,
                           "Mean rating": matches.mean_rating}), hide_index=True,
             column_config={"Mean rating": st.column_config.NumberColumn(format="%.2f ★")},
             height=min(38 + 35 * len(matches), 300))
ids = list(matches.movie_id)
wanted = st.query_params.get("movie")
# Kept in the URL by hand: a bound selectbox would store the title, and titles repeat.
movie = st.selectbox(f"{len(matches)} match(es): choose one", ids, index=ids.index(wanted) if wanted in ids else 0,
                     format_func=titles.get, key="movie")
st.query_params["movie"] = movie
found = rec.keyword(word, k, movie_id=movie)

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Similar movies")
    st.caption(f"Annoy neighbours of {ui.escape(found['title'])} (cosine similarity of the movie embeddings)")
    neighbours = found["neighbours"]
    st.dataframe(pd.DataFrame({"Title": neighbours.title, "Similarity": neighbours.score}), hide_index=True,
                 column_config={"Similarity": st.column_config.NumberColumn(format="%.3f")})
with right:
    st.subheader("Its biggest fan's picks")
    if found["top_rater"] is None:
        st.info("Nobody rated this movie, so it has no biggest fan.", icon=":material/info:")
    else:
        fan = found["top_rater"]
        st.caption(f"User {ui.escape(fan)} rated it highest; their top movies by Annoy, rated ones left out")
        picks = found["recommendations"]
        st.dataframe(pd.DataFrame({"Title": picks.title, "Predicted rating": picks.predicted_rating}), hide_index=True,
                     column_config={"Predicted rating": st.column_config.NumberColumn(format="%.2f ★")})
        st.page_link("pages/3_Recommend.py", label=f"User {fan} on the Recommend page", icon=":material/person:",
                     query_params={**(ui.nav_params(run_id) or {}), "user": fan})
