"""End to end in headless Chromium: the real server on the real data, from no run to search.

Starts `streamlit run app.py` on a free local port with an empty run store, trains a short
run from the Train page, and walks every page through the sidebar: Compare with its chosen
axes, Recommend with its order, explanations and a baseline's list, the new-user flow, the
movie map with a highlighted movie, and Search. No page, console or HTTP error and no server
traceback are allowed. Full-page screenshots go to artifacts/screenshots/ (the README's
come from `python -m bench.screenshots`, on the real default model).
"""
from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from bench.screenshots import (CHROMIUM, CHROMIUM_ARGS, VIEWPORT, ServerError, choose, full_page_screenshot,
                               pick, rate, settled, start_server, stop_server)
from recsys import fsutil, paths

REAL_DATA = paths.ROOT / "artifacts" / "data"
SHOTS = paths.ROOT / "artifacts" / "screenshots"
PAGES = ["Home", "Train", "Compare", "Recommend", "Movie map", "Search"]
NEW_RATINGS = (("Star Wars (1977)", 5), ("Fargo (1996)", 4), ("Toy Story (1995)", 1))


def _stop_trainer(store: Path) -> None:
    """The queue's worker runs in its own session, so it outlives the server: end it too."""
    try:
        queue = json.loads((store / "runs" / ".queue" / "queue.json").read_text())
    except (OSError, ValueError):
        return
    workers = [r.get("worker") for r in queue.get("requests", [])] + [queue.get("spawned")]
    for worker in filter(None, workers):
        if fsutil.ProcessId.from_dict(worker) and fsutil.ProcessId.from_dict(worker).alive():
            try:
                os.killpg(worker["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def server(tmp_path):
    """A live app on a free port: real data, an empty run store in a temp folder."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` to install Debian's chromium")
    if not (REAL_DATA / "MovieLens100k_data.parquet.brotli").exists():
        pytest.fail(f"no MovieLens tables in {REAL_DATA}: run `make setup`")
    store = tmp_path / "artifacts"
    env = {**os.environ, "RECSYS_ARTIFACTS": str(store), "RECSYS_DATA_DIR": str(REAL_DATA),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("RECSYS_DATA", None)
    log = tmp_path / "streamlit.log"
    try:
        proc, url = start_server(env, log)
    except ServerError as exc:
        pytest.fail(str(exc))
    try:
        yield url
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]  # the server logged no error
    finally:
        stop_server(proc)
        _stop_trainer(store)


def _shot(page: Page, name: str) -> None:
    full_page_screenshot(page, SHOTS / f"{name}.png")


def _nav_labels(page: Page) -> Locator:
    """The page titles in Streamlit's own sidebar navigation (without their icons' ligature text)."""
    return page.locator("[data-testid=stSidebarNav] [data-testid=stSidebarNavLink] [data-testid=stMarkdownContainer]")


def _nav(page: Page, label: str) -> None:
    """Follow a link of the sidebar navigation."""
    page.locator("[data-testid=stSidebarNavLink]", has=page.get_by_text(label, exact=True)).click()


def _rows(table: Locator, n: int) -> list[str]:
    """The text of a table's first `n` rows (the grid's accessible rows; row 0 is its header)."""
    rows = table.locator("[role=row]")
    expect(rows.nth(n)).to_be_attached(timeout=30_000)
    return [rows.nth(i).inner_text() for i in range(1, n + 1)]


def test_every_page_in_a_real_browser(server):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Console errors too: a failed resource (the favicon's 500, a font the browser can't fetch)
        # shows only there; and any HTTP error answer.
        page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
        try:
            _journey(page, server)
        finally:
            browser.close()
    assert not errors, errors


def _journey(page: Page, url: str) -> None:
    # Home, before any run: Streamlit's own navigation lists the six pages by title, Home first.
    page.goto(url)
    expect(page.get_by_text("No trained run yet")).to_be_visible(timeout=30_000)
    expect(_nav_labels(page)).to_have_text(PAGES)

    # Train: the split protocol among the advanced settings; move a weight slider with the
    # keyboard, train two epochs, watch it.
    _nav(page, "Train")
    expect(page).to_have_url(re.compile(re.escape(f"{url}/train")))
    rating = page.get_by_role("slider", name="Rating weight")
    expect(rating).to_be_visible(timeout=30_000)
    expect(_nav_labels(page)).to_have_text(PAGES)  # still named after a page switch
    settled(page)
    page.get_by_text("Advanced").click()
    protocol = page.get_by_role("combobox", name="Split protocol")
    expect(protocol).to_be_visible()
    page.wait_for_timeout(500)  # the expander's opening animation
    protocol.click()
    expect(page.get_by_role("option")).to_have_text(["random", "temporal"], timeout=15_000)
    page.get_by_role("option", name="random").click()
    settled(page)
    rating.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(rating).to_have_value("0.8")
    page.get_by_role("spinbutton", name="Epochs").fill("2")
    page.get_by_role("spinbutton", name="Epochs").press("Enter")
    settled(page)
    page.get_by_role("button", name="Train").click()
    expect(page.get_by_text("Training in progress")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Epoch 1 of 2")).to_be_visible(timeout=120_000)
    expect(page.locator("[data-testid=stMetric]", has_text="Rating loss")).to_be_visible()
    expect(page.get_by_text("Last training job")).to_be_visible(timeout=120_000)
    rmse = page.locator("[data-testid=stMetric]", has_text="RMSE").locator("[data-testid=stMetricValue]")
    assert 0.5 < float(rmse.inner_text()) < 1.5
    expect(page).to_have_url(re.compile(r"[?&]run=\w+"))  # the new run is the current one
    sidebar = page.locator("[data-testid=stSidebar]")
    expect(sidebar).to_contain_text("0.8 / 1 · default · random")  # the run names its split protocol
    _shot(page, "train")

    # Home: the data in numbers, the new run, and the baselines beside each number.
    _nav(page, "Home")
    expect(page.get_by_text("100,000")).to_be_visible(timeout=30_000)
    expect(page.locator("[data-testid=stMetric]", has_text="Top-100 accuracy")).to_be_visible(timeout=240_000)
    expect(page.get_by_text("best classic").first).to_be_visible()
    _shot(page, "home")

    # Compare: the metric, trade-off, beyond-accuracy and curve charts, with the baselines;
    # the trade-off redrawn on the axes chosen.
    _nav(page, "Compare")
    charts = page.locator("[data-testid=stVegaLiteChart]")
    expect(charts).to_have_count(7, timeout=120_000)
    for i in range(7):
        expect(charts.nth(i).locator("canvas, svg").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Trade-off: RMSE against Top-100 accuracy")).to_be_attached()
    pick(page, "Across", "Coverage@10 (higher is better)")
    expect(page.get_by_text("Trade-off: Coverage@10 against Top-100 accuracy")).to_be_attached(timeout=30_000)
    expect(page.get_by_text("Baseline: EASE").first).to_be_attached()
    _shot(page, "compare")

    # Recommend: a user's list with both scores and the reasons, reordered by the order
    # chosen, and a baseline's list beside it.
    _nav(page, "Recommend")
    expect(page.get_by_text("Annoy recall@10")).to_be_visible(timeout=120_000)
    expect(page).to_have_url(re.compile(r"[?&]user=\d+"))
    model = page.locator("[data-testid=stDataFrame]").nth(2)
    blend = _rows(model, 3)
    assert all("★" in row for row in blend)  # each pick says which rated movies led to it, with their stars
    choose(page, "Order by", "Likely to watch")
    expect(page.get_by_text("Top 10 movies, likely to watch")).to_be_visible(timeout=30_000)
    settled(page)
    page.wait_for_timeout(500)
    watch = _rows(page.locator("[data-testid=stDataFrame]").nth(2), 3)
    choose(page, "Order by", "Likely to love")
    expect(page.get_by_text("Top 10 movies, likely to love")).to_be_visible(timeout=30_000)
    settled(page)
    page.wait_for_timeout(500)
    love = _rows(page.locator("[data-testid=stDataFrame]").nth(2), 3)
    assert len({tuple(blend), tuple(watch), tuple(love)}) > 1, (blend, watch, love)  # the order changed the list
    pick(page, "Compare the model's list with", "Popularity baseline")
    expect(page.get_by_text("Popularity baseline", exact=True).last).to_be_visible(timeout=180_000)
    expect(page.locator("[data-testid=stDataFrame]")).to_have_count(5)
    _rows(page.locator("[data-testid=stDataFrame]").nth(4), 10)
    page.get_by_role("button", name="Random user").click()
    settled(page)
    _shot(page, "recommend")

    # Someone new: three ratings, and the list after each one.
    choose(page, "For", "Me: I'm new")
    expect(page.get_by_text("Your list appears after your first rating")).to_be_visible(timeout=30_000)
    lists = []
    for i, (title, stars) in enumerate(NEW_RATINGS, 1):
        rate(page, title, stars)
        expect(page.get_by_text(f"Your {i} rating")).to_be_visible(timeout=60_000)
        expect(page.get_by_text(re.compile(r"^Top 10 movies for you"))).to_be_visible(timeout=60_000)
        settled(page)
        page.wait_for_timeout(500)
        lists.append(_rows(page.locator("[data-testid=stDataFrame]").first, 5))
    assert lists[0] != lists[1] != lists[2], lists
    expect(page.get_by_text("Your 3 ratings")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]rated=50%3A5%2C100%3A4%2C1%3A1|[?&]rated=50:5,100:4,1:1"))
    assert "Star Wars (1977) ★5" in " ".join(lists[-1])  # the liked ones explain the picks
    _shot(page, "newuser")

    # The movie map: every movie, and a chosen one with its Annoy neighbours highlighted.
    _nav(page, "Movie map")
    expect(page.get_by_text("of the variance")).to_be_visible(timeout=120_000)
    box = page.get_by_role("combobox", name="Highlight a movie and its neighbours")
    box.click()
    box.fill("Star Wars")
    page.get_by_role("option", name="Star Wars (1977)").click()
    expect(page.get_by_text("Annoy neighbours of Star Wars (1977)")).to_be_visible(timeout=60_000)
    _rows(page.locator("[data-testid=stDataFrame]").first, 10)
    expect(page.locator("[data-testid=stVegaLiteChart]").locator("canvas, svg").first).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]movie=50"))
    _shot(page, "map")

    # Search: a word from a title, its matches, a match's neighbours and its fan's picks.
    _nav(page, "Search")
    box = page.get_by_label("A word from a movie title")
    expect(box).to_be_visible(timeout=30_000)
    box.fill("batman")
    box.press("Enter")
    expect(page.get_by_text("Similar movies")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Batman Returns (1992)").first).to_be_attached()
    _rows(page.locator("[data-testid=stDataFrame]").nth(1), 10)
    expect(page.get_by_text("rated it highest")).to_be_visible()
    assert all("★" in row for row in _rows(page.locator("[data-testid=stDataFrame]").nth(2), 3))
    expect(page).to_have_url(re.compile(r"[?&]word=batman"))
    _shot(page, "search")
