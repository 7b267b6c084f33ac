"""The app's entry point: Streamlit's navigation over the pages, the URL state, the current run.

Run with `streamlit run app.py`. Each page is a script in app_pages/ (listed in `ui.PAGES`);
this file runs first on every rerun, so what all pages share is set up here once. The folder
is not called `pages/`: with one, Streamlit ignores st.navigation and lists its files itself.
"""
import streamlit as st

import ui

# The favicon is set before the navigation: otherwise the page's :material/ icon becomes the
# favicon, which the browser fetches from fonts.gstatic.com (an error on a closed network).
st.set_page_config(page_icon="🎬", layout="wide")
page = ui.navigation()
st.set_page_config(page_title=f"{page.title} · {ui.APP_NAME}")
ui.keep_url_state()  # before anything reads the URL: a change of page dropped its query string
ui.sidebar()
page.run()
