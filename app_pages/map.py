"""Movie map: every movie's embedding in two dimensions; a movie's neighbours and a user's movies on it."""
import pandas as pd
import streamlit as st

import ui
from recsys import charts, views
from recsys.errors import UserError

YOU = "you"  # the "user" whose ratings were given on the Recommend page

st.title("The movie map")
rec = ui.servable()
movies = rec.movie_map()  # also sets rec.map_variance
titles = dict(zip(movies.movie_id, movies.title))
st.caption(ui.escape(
    "Each dot is a movie, placed by its embedding in the model's candidate tower, projected on its two main axes; "
    "colour is its first genre, size its number of ratings; hover for the title, drag and scroll to move and zoom. "
    + views.variance_text(rec.map_variance)))

rated = ui.new_ratings(titles)
user_ids = list(rec.prep.spec.user_ids)
owners = [None, *([YOU] if rated else []), *user_ids]
by_title = sorted(titles, key=lambda m: titles[m])
movie_col, k_col, user_col = st.columns([4, 1, 3], vertical_alignment="bottom")
ui.from_url("map_movie", by_title, param="movie")
movie = movie_col.selectbox("Highlight a movie and its neighbours", by_title, index=None, key="map_movie",
                            format_func=titles.get, placeholder="Type part of a title")
k = k_col.slider("Neighbours", 3, 20, 10, 1, key="map_k", persist_state="session")
owner = user_col.selectbox("Show a user's movies", owners, key="map_user", persist_state="session",
                           format_func=lambda u: "nobody" if u is None else
                           f"you ({len(rated)} ratings)" if u == YOU else f"user {u}")
ui.remember("movie", movie)

highlight, labelled = {}, ()
try:
    if movie is not None:
        highlight.update(views.movie_highlight(rec, movie, k))
        labelled = ("Chosen movie",)
    if owner == YOU:
        picks = rec.recommend_new(rated, 10)
        highlight.update({"Rated by you": [m for m, _ in rated], "Recommended for you": list(picks.movie_id)})
    elif owner is not None:
        highlight.update(views.user_highlight(rec, owner, 10))
except UserError as exc:
    ui.warn(exc)
st.altair_chart(charts.movie_map_chart(movies, highlight, labelled), width="stretch")

if movie is not None:
    neighbours = rec.similar(movie, k, method="annoy")
    st.markdown(f"**Annoy neighbours of {ui.escape(titles[movie])}**")
    st.dataframe(pd.DataFrame({"Title": neighbours.title, "Similarity": neighbours.score}), hide_index=True,
                 column_config={"Similarity": st.column_config.NumberColumn(format="%.3f")})
    st.caption("Neighbours are found in all the embedding's dimensions, so some sit further away on the map "
               "than others that are not neighbours.")
