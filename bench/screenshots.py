"""README pictures from the real default model: `python -m bench.screenshots [--out DIR]`.

Starts `streamlit run app.py` on a free loopback port against the artifacts in use
(`RECSYS_ARTIFACTS`, else artifacts/), drives headless Chromium (Debian's, at
/usr/bin/chromium) through every page and saves a full-page PNG of each in
docs/screenshots/ (or --out). The default run must exist: when it is missing it is
trained first (`python -m recsys train --rating-weight 1 --retrieval-weight 1`), and
so are the notebook's two other experiments, so Compare has runs to compare
(`--no-extra-runs` skips them). The data stays where `make setup` put it unless
RECSYS_DATA_DIR or RECSYS_DATA say otherwise.

The server helpers here (port, start, health, stop, "settled", full-page shot) are
also what tests/test_browser.py drives its server with.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RECSYS_DATA_DIR", str(ROOT / "artifacts" / "data"))

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium stalls on a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}
OUT = ROOT / "docs" / "screenshots"
USER = "42"  # a MovieLens user with a long history: explanations have much to draw from
NEW_RATINGS = (("Star Wars (1977)", 5), ("Fargo (1996)", 4), ("Toy Story (1995)", 5))
MAP_MOVIE = "50"  # Star Wars (1977)
WORD = "batman"
BESIDE = "EASE baseline"  # the list shown beside the model's on Recommend


class ServerError(RuntimeError):
    """The app's server did not start or stopped."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], log: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` in its own process group, output to `log`; returns it and its URL once healthy."""
    port = port or free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
    except ServerError:
        stop_server(proc)
        raise
    return proc, url


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    """Wait for the server's health check; ServerError with its log if it exits or never answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise ServerError(f"streamlit did not become healthy in {seconds:.0f} s:\n{log.read_text()}")


def stop_server(proc: subprocess.Popen) -> None:
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


def settled(page, timeout_ms: int = 120_000) -> None:
    """Wait until the script run is over and no element is still a loading placeholder."""
    page.wait_for_selector("[data-testid=stApp]")
    page.wait_for_function("!document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout_ms)
    page.wait_for_function("!document.querySelector('[data-testid=stSkeleton]')", timeout=timeout_ms)


def full_page_screenshot(page, path: Path) -> None:
    """A full-page PNG: the app scrolls inside its main pane, so grow the viewport to fit it first."""
    settled(page)
    page.mouse.move(VIEWPORT["width"] - 5, 5)  # no hover highlight in the picture
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # nor a focus ring
    page.wait_for_timeout(1500)  # charts and tables draw after the elements arrive
    height = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height)})
    page.wait_for_timeout(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(VIEWPORT)


def choose(page, group: str, option: str) -> None:
    """Click an option of a segmented control (its buttons are radios) by the control's label."""
    page.get_by_role("radiogroup", name=group).get_by_role("radio", name=option, exact=True).click()


def pick(page, label: str, option: str) -> None:
    """Choose an option of a selectbox by its label (typed first: a long list shows only some options)."""
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    settled(page)


def rate(page, title: str, stars: int) -> None:
    """On Recommend's "I'm new": find a movie by its title, give it stars, rate it.

    Each step waits for the rerun it starts: a click on an element being redrawn is lost.
    """
    box = page.get_by_role("combobox", name="Find a movie")
    box.click()
    box.fill(title)
    page.get_by_role("option", name=re.compile(re.escape(title))).first.click()
    settled(page)
    choose(page, "Your stars", f"{stars}★")
    settled(page)
    page.get_by_role("button", name="Rate it").click()
    settled(page)
    page.get_by_role("combobox", name="Find a movie").and_(page.get_by_placeholder("Type part of a title")).wait_for()


# ---------------------------------------------------------------- the pictures
def _train(args: list[str], env: dict[str, str]) -> None:
    print("training:", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "recsys", "train", *args], cwd=ROOT, env=env, check=True)


def ensure_runs(env: dict[str, str], extra: bool) -> None:
    """The default run (and, with `extra`, the notebook's other two experiments), trained when missing."""
    from recsys import catalog, experiments, runs

    if not runs.is_finished(catalog.default_run_id()):
        _train(["--rating-weight", "1", "--retrieval-weight", "1"], env)
    if extra:
        for config in experiments.notebook_configs(catalog.DEFAULT_CONFIG).values():
            if catalog.cached_run(config) is None:
                _train(["--rating-weight", f"{config.rating_weight:g}",
                        "--retrieval-weight", f"{config.retrieval_weight:g}"], env)


def take(url: str, out: Path) -> list[Path]:
    """Visit every page in headless Chromium and save its picture; returns the files written."""
    from playwright.sync_api import expect, sync_playwright

    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)

        def shot(name: str) -> None:
            full_page_screenshot(page, out / f"{name}.png")
            shots.append(out / f"{name}.png")
            print("saved", out / f"{name}.png", flush=True)

        def visit(path: str, ready, seconds: int = 180) -> None:
            page.goto(f"{url}{path}")
            expect(ready).to_be_attached(timeout=seconds * 1000)  # charts below the fold count too

        try:
            visit("", page.locator("[data-testid=stMetric]", has_text="Coverage@10"))
            shot("home")
            visit("/train", page.get_by_role("slider", name="Rating weight"))
            shot("train")
            visit("/compare", page.get_by_text("Recall@10 by user activity"))
            shot("compare")
            visit(f"/recommend?user={USER}", page.get_by_text("Annoy recall@10"))
            pick(page, "Compare the model's list with", BESIDE)
            expect(page.get_by_text(BESIDE, exact=True)).to_be_visible(timeout=180_000)
            shot("recommend")
            choose(page, "For", "Me: I'm new")
            expect(page.get_by_role("combobox", name="Find a movie")).to_be_visible(timeout=30_000)
            for i, (title, stars) in enumerate(NEW_RATINGS, 1):
                rate(page, title, stars)
                expect(page.get_by_text(f"Your {i} rating")).to_be_visible(timeout=60_000)
            shot("newuser")
            visit(f"/map?movie={MAP_MOVIE}", page.get_by_text("Annoy neighbours of"))
            shot("map")
            visit(f"/search?word={WORD}", page.get_by_text("Similar movies"))
            shot("search")
        finally:
            browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the PNGs go (default {OUT})")
    parser.add_argument("--no-extra-runs", action="store_true",
                        help="only the default run: don't train the notebook's other experiments for Compare")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"error: {CHROMIUM} is missing: run `make browser`", file=sys.stderr)
        return 2
    env = dict(os.environ)
    ensure_runs(env, extra=not args.no_extra_runs)
    log = Path(tempfile.gettempdir()) / f"recsys-screenshots-{os.getpid()}.log"
    proc, url = start_server(env, log)
    try:
        take(url, args.out)
    finally:
        stop_server(proc)
    if "Traceback" in log.read_text():
        print(f"error: the server logged a traceback; see {log}", file=sys.stderr)
        return 1
    log.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
