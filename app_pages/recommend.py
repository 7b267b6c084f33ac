"""Recommend: a MovieLens user's top movies and why, beside Annoy's or a baseline's; or yours from a
few ratings, updated after each one."""
import random

import pandas as pd
import streamlit as st

import ui
from recsys import newuser, views
from recsys.baselines import LABELS, NAMES
from recsys.errors import UserError
from recsys.ranking import RANKS

ORDERS = {"watch": "Likely to watch", "love": "Likely to love", "blend": "Both (validated blend)"}
ORDER_HELP = ("Likely to watch: the retrieval score alone. Likely to love: the predicted rating alone, among the "
              "retrieved candidates. Both: the retrieval score plus a weight times the predicted rating, the weight "
              "chosen on validation (the default).")
BESIDE = {"annoy": "The model through Annoy", **{n: f"{LABELS[n]} baseline" for n in NAMES}}
WHO = {"user": "A MovieLens user", "new": "Me: I'm new"}
STARS = (1, 2, 3, 4, 5)
FULL_COLUMNS = {
    "Title": st.column_config.TextColumn(width=230),
    "Watch score": st.column_config.NumberColumn("Watch", format="%.2f", width=60,
                                                 help="Retrieval score: how likely the user is to watch it"),
    "Predicted rating": st.column_config.NumberColumn("Love", format="%.2f ★", width=65,
                                                      help="Predicted rating: how much the user would like it"),
    "Blend": st.column_config.NumberColumn(format="%.2f", width=55,
                                           help="The validated blend of both: standardised retrieval score plus "
                                                "a weight times the predicted rating above the user's mean, "
                                                "minus a penalty that grows below 3.25 predicted stars"),
    "Because you rated": st.column_config.TextColumn(
        "Because", width="large", help="The movies the user rated (4 or 5 stars when there are any) whose "
                                       "embeddings are most like this one, with the stars given"),
}
# Half-width tables, side by side.
BASELINE_COLUMNS = {
    "Title": st.column_config.TextColumn(width=230),
    "Score": st.column_config.NumberColumn(format="%.3f", width=70, help="The baseline's own score"),
    "Predicted rating": st.column_config.NumberColumn("Predicted", format="%.2f ★", width=75),
    "Also beside": st.column_config.CheckboxColumn("Both", width=45, help="Also in the list beside this one"),
}

st.title("Recommendations")
rec = ui.servable()
titles = dict(zip(rec.prep.ml.movies.movie_id.astype(str), rec.prep.ml.movies.movie_title))

who_col, order_col = st.columns([2, 3], vertical_alignment="bottom")
# A shared link with ratings and no user opens on "I'm new". The choices last the session, across pages.
first = "new" if "rated" in st.query_params and "user" not in st.query_params else "user"
who = who_col.segmented_control("For", list(WHO), format_func=WHO.get, key="who", default=first,
                                persist_state="session")
rank = order_col.segmented_control("Order by", RANKS, format_func=ORDERS.get, default="blend", key="rank",
                                   help=ORDER_HELP, persist_state="session") or "blend"  # a second click unselects


def _size(where) -> int:
    return where.slider("How many movies", 5, 50, 10, 5, key="k", persist_state="session")


def _full(frame: pd.DataFrame, stars: dict) -> None:
    """A list with both scores, the blend and the reasons, across the page."""
    table = views.recommendation_table(frame, stars, titles).drop(columns="Also beside")
    st.dataframe(table, hide_index=True, column_config=FULL_COLUMNS)


def _compact(frame: pd.DataFrame, others) -> None:
    """A list's titles and predicted ratings, marking the movies the list beside it has too."""
    table = views.recommendation_table(frame, {}, titles, others)[["Title", "Predicted rating", "Also beside"]]
    st.dataframe(table, hide_index=True, column_config=BASELINE_COLUMNS)


# --------------------------------------------------------------------------- a MovieLens user
def _random_user() -> None:
    st.session_state["user"] = random.choice(user_ids)


def dataset_user() -> None:
    """A user of the data: profile, what they rated, their list and the one beside it."""
    pick, dice, hide_col = st.columns([3, 2, 3], vertical_alignment="bottom")
    ui.from_url("user", user_ids)
    user = pick.selectbox("User", user_ids, key="user", help="Type to search the user ids", persist_state="session")
    dice.button("Random user", icon=":material/casino:", on_click=_random_user, width="stretch")
    hide_rated = hide_col.toggle("Hide movies already rated", value=True, key="hide_rated", persist_state="session")
    ui.remember("user", user)

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

    stars = views.user_stars(rec.prep.ml.ratings, user)
    top, size_col = st.columns([5, 2], vertical_alignment="bottom")
    k = _size(size_col)
    top.subheader(f"Top {k} movies, {ORDERS[rank].lower()}")
    model = rec.recommend(user, k, method="exact", exclude_rated=hide_rated, rank=rank)
    _full(model, stars)
    notes = [f"Movies user {user} already rated are left out." if hide_rated else
             f"Movies user {user} already rated are included."]
    notes.append("Watch: the retrieval score (likely to watch); Love: the predicted rating (likely to love); "
                 "Blend: both, weighted as validated; Because: the user's ratings most like the movie.")
    notes.append(f"The list's query, as chosen on validation for this run: {rec.taste.describe()}.")
    st.caption(ui.escape(" ".join(notes)))

    st.subheader("Beside another list")
    beside = st.selectbox("Compare the model's list with", list(BESIDE), format_func=BESIDE.get, key="beside",
                          persist_state="session",
                          help="Annoy: the same model, searched approximately. The baselines: classic recommenders "
                               "fitted on the same training ratings, to see what the model adds.")
    if beside == "annoy":
        other = rec.recommend(user, k, method="annoy", exclude_rated=hide_rated, rank=rank)
        recall = len(set(model.movie_id) & set(other.movie_id)) / max(len(model), 1)
        st.metric(f"Annoy recall@{k}", f"{recall:.0%}", help="Share of the exact list that Annoy also returned")
    else:
        try:
            with st.spinner(f"Fitting {BESIDE[beside]} on the training ratings (the first time for this split "
                            "takes about half a minute)…"):
                other = rec.baseline(beside, user, k)
        except UserError as exc:
            ui.warn(exc)
            return
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**The model** (every movie scored)")
        _compact(model, other.movie_id)
    with right:
        st.markdown(f"**{BESIDE[beside]}**")
        if beside == "annoy":
            _compact(other, model.movie_id)
        else:
            st.dataframe(views.baseline_table(other, model.movie_id), hide_index=True,
                         column_config=BASELINE_COLUMNS)
    if beside != "annoy" and not hide_rated:
        st.caption("The baseline always leaves out the movies the user rated.")


# --------------------------------------------------------------------------- someone new
def _load_rated() -> list[tuple[str, float]]:
    return ui.new_ratings(titles)


def _save(rated: list[tuple[str, float]]) -> None:
    st.session_state["new_rated"] = rated
    st.session_state.pop("rated_error", None)


def _add() -> None:
    movie, stars = st.session_state.get("new_movie"), st.session_state.get("new_stars")
    if movie is None or stars is None:
        st.session_state["rated_error"] = "choose a movie and its stars first"
        return
    try:
        _save(views.rate(_load_rated(), movie, stars, newuser.MAX_RATED))
    except UserError as exc:
        st.session_state["rated_error"] = str(exc)
        return
    st.session_state["new_movie"] = st.session_state["new_stars"] = None  # ready for the next one


def _remove(movie: str) -> None:
    _save(views.unrate(_load_rated(), movie))


def _clear() -> None:
    _save([])


def new_user() -> None:
    """Someone the model never saw: rate a few movies, get a list at once, explained by those ratings."""
    rated = _load_rated()
    if "rated_error" in st.session_state:
        ui.warn(st.session_state["rated_error"])
    st.caption("Rate a few movies you know. Your ratings stay in this browser session (and in the link, to share "
               "it); they never enter the training data.")
    counts = rec.prep.ml.ratings.movie_id.astype(str).value_counts()
    by_count = sorted(titles, key=lambda m: (-counts.get(m, 0), titles[m]))  # well-known movies first
    movie_col, stars_col, add_col = st.columns([3, 2.2, 1], vertical_alignment="bottom")
    movie_col.selectbox("Find a movie", by_count, index=None, key="new_movie", placeholder="Type part of a title",
                        format_func=lambda m: f"{titles[m]} · {counts.get(m, 0):,} ratings")
    stars_col.segmented_control("Your stars", STARS, format_func=lambda s: f"{s}★", key="new_stars")
    add_col.button("Rate it", on_click=_add, icon=":material/star:", width="stretch", type="primary")
    if rated or "rated_error" not in st.session_state:  # a bad link stays until the next rating
        ui.remember("rated", views.rated_text(rated) if rated else None)
    if not rated:
        st.info("Your list appears after your first rating and changes with each one.", icon=":material/star:")
        return

    st.markdown(f"**Your {len(rated)} rating{'s' if len(rated) > 1 else ''}** (the latest first)")
    for movie, stars in reversed(rated):
        text_col, stars_text, button_col, _ = st.columns([4, 1.2, 1.2, 3], vertical_alignment="center")
        text_col.markdown(ui.escape(titles.get(movie, movie)))
        stars_text.markdown("★" * int(stars))
        button_col.button("Remove", key=f"unrate_{movie}", on_click=_remove, args=(movie,), width="stretch")
    st.button("Clear all", on_click=_clear, icon=":material/delete_sweep:")

    age_col, gender_col, _, size_col = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
    age = age_col.number_input("Age (optional)", 1, 120, value=None, step=1, key="new_age", persist_state="session")
    gender = gender_col.selectbox("Gender (optional)", [None, "F", "M"], key="new_gender", persist_state="session",
                                  format_func=lambda g: {None: "not given", "F": "female", "M": "male"}[g])
    k = _size(size_col)
    try:
        picks = rec.recommend_new(rated, k, method="exact", rank=rank, age=age, gender=gender)
    except UserError as exc:
        ui.warn(exc)
        return
    st.subheader(f"Top {k} movies for you, {ORDERS[rank].lower()}")
    _full(picks, dict(rated))
    st.caption("Watch: likely to watch; Love: your predicted rating; Blend: both, weighted as validated; Because: "
               "the movies you rated (4 or 5 stars when there are any) most like each pick.")


user_ids = list(rec.prep.spec.user_ids)
if who == "new":
    new_user()
else:
    dataset_user()
