"""End to end in headless Chromium: the real server on the real data, from no run to search.

Starts `streamlit run app.py` on a free local port with an empty run store, trains a short
run from the Train page, and visits every page, saving a full-page screenshot of each
under artifacts/screenshots/.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from recsys import fsutil, paths

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium stalls on a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REAL_DATA = paths.ROOT / "artifacts" / "data"
SHOTS = paths.ROOT / "artifacts" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
PAGES = ["Home", "Train", "Compare", "Recommend", "Search"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not become healthy in {seconds} s:\n{log.read_text()}")


def _stop_server(proc: subprocess.Popen) -> None:
    """End the server's process group: politely, then for sure (and reap it)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue


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
    port, store = _free_port(), tmp_path / "artifacts"
    env = {**os.environ, "RECSYS_ARTIFACTS": str(store), "RECSYS_DATA_DIR": str(REAL_DATA),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("RECSYS_DATA", None)
    log = tmp_path / "streamlit.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true"],
            cwd=paths.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]  # the server logged no error
    finally:
        _stop_server(proc)
        _stop_trainer(store)


def _settled(page: Page) -> None:
    """Wait until the script run is over and no element is still a loading placeholder."""
    page.wait_for_selector("[data-testid=stApp]")
    page.wait_for_function("!document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)
    page.wait_for_function("!document.querySelector('[data-testid=stSkeleton]')", timeout=60_000)


def _screenshot(page: Page, name: str) -> None:
    """A full-page PNG: the app scrolls inside its main pane, so grow the viewport to fit it."""
    _settled(page)
    page.mouse.move(VIEWPORT["width"] - 5, 5)  # no hover highlight in the picture
    page.wait_for_timeout(1500)  # charts and tables draw after the elements arrive
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height)})
    page.wait_for_timeout(500)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(VIEWPORT)


def _nav(page: Page, label: str) -> None:
    """Follow a sidebar link."""
    page.locator("[data-testid=stSidebar] [data-testid=stPageLink-NavLink]", has_text=label).click()


def _sidebar_labels(page: Page):
    """The labels of the sidebar's page links (without their icons' ligature text)."""
    return page.locator("[data-testid=stSidebar] [data-testid=stPageLink-NavLink] [data-testid=stMarkdownContainer]")


def test_train_compare_recommend_and_search_in_a_real_browser(server):
    started = time.time()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Console errors too: a failed resource (the favicon's 500) shows only there.
        page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        try:
            _journey(page, server)
        finally:
            browser.close()
    assert not errors, errors
    assert time.time() - started < 170


def _journey(page: Page, url: str) -> None:
    # Home, before any run: the five pages by name, and a pointer to Train.
    page.goto(url)
    expect(page.get_by_text("No trained run yet")).to_be_visible(timeout=30_000)
    expect(_sidebar_labels(page)).to_have_text(PAGES)  # exactly these, in this order
    expect(page.locator("[data-testid=stSidebarNav]")).to_have_count(0)  # no file-named fallback list

    # Train: move a weight slider with the keyboard, train two epochs, watch it.
    _nav(page, "Train")
    expect(page).to_have_url(re.compile(re.escape(f"{url}/Train")))
    expect(page.get_by_role("slider", name="Rating weight")).to_be_visible(timeout=30_000)
    expect(_sidebar_labels(page)).to_have_text(PAGES)  # still named after a page switch
    rating = page.get_by_role("slider", name="Rating weight")
    expect(rating).to_be_visible(timeout=30_000)
    rating.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(rating).to_have_value("0.8")
    page.get_by_role("spinbutton", name="Epochs").fill("2")
    page.get_by_role("button", name="Train").click()
    expect(page.get_by_text("Training in progress")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Epoch 1 of 2")).to_be_visible(timeout=90_000)
    expect(page.locator("[data-testid=stMetric]", has_text="Rating loss")).to_be_visible()
    expect(page.locator("[data-testid=stVegaLiteChart]")).to_have_count(3)  # total, rating and retrieval loss so far
    expect(page.get_by_text("Last training job")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("Test RMSE")).to_be_visible()
    rmse = page.locator("[data-testid=stMetric]", has_text="Test RMSE").locator("[data-testid=stMetricValue]")
    assert 0.5 < float(rmse.inner_text()) < 1.5
    expect(page).to_have_url(re.compile(r"[?&]run=\w+"))  # the new run is the current one
    assert "0.8 / 1" in page.locator("[data-testid=stSidebar]").inner_text()
    _screenshot(page, "train")

    # Home: the data in numbers and the new run.
    _nav(page, "Home")
    expect(page.get_by_text("100,000")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("The current run")).to_be_visible()
    expect(page.locator("[data-testid=stMetric]", has_text="Top-100 accuracy")).to_be_visible()
    _screenshot(page, "home")

    # Compare: the metric, trade-off and curve charts are drawn.
    _nav(page, "Compare")
    charts = page.locator("[data-testid=stVegaLiteChart]")
    expect(charts).to_have_count(6, timeout=60_000)
    for i in range(6):
        expect(charts.nth(i).locator("canvas, svg").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Trade-off: rating error against retrieval accuracy")).to_be_attached()
    _screenshot(page, "compare")

    # Recommend: a user's profile, latest ratings, exact and Annoy lists side by side.
    _nav(page, "Recommend")
    expect(page.get_by_text("Annoy recall@10")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("the session the recommendations start from")).to_be_attached()
    expect(page.locator("[data-testid=stDataFrame]")).to_have_count(4)
    page.get_by_role("button", name="Random user").click()
    _settled(page)
    expect(page).to_have_url(re.compile(r"[?&]user=\d+"), timeout=15_000)  # the user is kept in the URL
    _screenshot(page, "recommend")

    # Search: a word from a title, its matches and a match's neighbours.
    _nav(page, "Search")
    box = page.get_by_label("A word from a movie title")
    expect(box).to_be_visible(timeout=30_000)
    box.fill("batman")
    box.press("Enter")
    expect(page.get_by_text("Similar movies")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Batman Returns (1992)").first).to_be_attached()
    neighbours = page.locator("[data-testid=stDataFrame]").nth(1)
    expect(neighbours.locator("[role=row]")).to_have_count(11)  # a header and 10 neighbours (the grid's a11y table)
    expect(page.get_by_text("rated it highest")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]word=batman"))
    _screenshot(page, "search")
