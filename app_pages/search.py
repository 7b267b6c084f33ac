"""Search: movies whose title holds a word, a match's Annoy neighbours and its biggest fan's picks."""
import pandas as pd
import streamlit as st

import ui
from recsys import search, views
from recsys.errors import UserError

st.title("Search movies by a word")
run_id = ui.require_run()

box, size = st.columns([3, 1], vertical_alignment="bottom")
ui.from_url("word")
word = box.text_input("A word from a movie title", key="word", placeholder="e.g. batman", persist_state="session")
k = size.slider("How many", 5, 30, 10, 5, key="search_k", persist_state="session")
ui.remember("word", word)

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

titles = dict(zip(rec.prep.ml.movies.movie_id.astype(str), rec.prep.ml.movies.movie_title))
st.dataframe(pd.DataFrame({"Title": matches.movie_title, "Ratings": matches.ratings,
                           "Mean rating": matches.mean_rating}), hide_index=True,
             column_config={"Mean rating": st.column_config.NumberColumn(format="%.2f ★")},
             height=min(38 + 35 * len(matches), 300))
ids = list(matches.movie_id)
wanted = st.query_params.get("movie")
# A movie id, not a title, in the URL: titles repeat. The URL's choice starts the widget off.
movie = st.selectbox(f"{len(matches)} match(es): choose one", ids, index=ids.index(wanted) if wanted in ids else 0,
                     format_func=titles.get, key="movie")
ui.remember("movie", movie)
found = rec.keyword(word, k, movie_id=movie)

st.subheader("Similar movies")
st.caption(f"Annoy neighbours of {ui.escape(found['title'])} (cosine similarity of the movie embeddings)")
neighbours = found["neighbours"]
st.dataframe(pd.DataFrame({"Title": neighbours.title, "Similarity": neighbours.score}), hide_index=True,
             column_config={"Similarity": st.column_config.NumberColumn(format="%.3f")}, width=520)
st.page_link("app_pages/map.py", label="See them on the movie map", icon=":material/scatter_plot:")

st.subheader("Its biggest fan's picks")
if found["top_rater"] is None:
    st.info("Nobody rated this movie, so it has no biggest fan.", icon=":material/info:")
    st.stop()
fan = found["top_rater"]
st.caption(f"User {ui.escape(fan)} rated it highest; their top movies by Annoy, rated ones left out, in the "
           "validated blend of likely to watch and likely to love, as on the Recommend page")
picks = found["recommendations"]
table = views.recommendation_table(picks, views.user_stars(rec.prep.ml.ratings, fan), titles)
st.dataframe(table.drop(columns="Also beside"), hide_index=True, column_config={
    "Title": st.column_config.TextColumn(width=230),
    "Watch score": st.column_config.NumberColumn("Watch", format="%.2f", width=60, help="Retrieval score"),
    "Predicted rating": st.column_config.NumberColumn("Love", format="%.2f ★", width=65, help="Predicted rating"),
    "Blend": st.column_config.NumberColumn(format="%.2f", width=55, help="The validated blend of both"),
    "Because you rated": st.column_config.TextColumn("Because they rated", width="large")})
st.page_link("app_pages/recommend.py", label=f"User {fan} on the Recommend page", icon=":material/person:",
             query_params={"user": fan})
