"""The report page in a real browser: headless Chromium (the system's, driven by playwright) opens
index.html from disk and must render it with no error, no failed or network request, and every
figure decoded. Skipped, with the reason, where playwright or Chromium is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from taylorglo.analysis.evidence import FINAL_FIGURE, ROBUSTNESS_FIGURE
from taylorglo.analysis.report import write_report
from taylorglo.analysis.sweep import robustness_sweep
from taylorglo.experiment.final import run_final
from taylorglo.glo.page import FIGURES
from test_report import finished_experiment

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# No sandbox (containers, root); nothing the browser would fetch or update on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium not installed: apt-get install chromium (or put chromium / google-chrome on PATH)")


def test_report_renders_in_headless_chromium(tmp_path_factory, tmp_path: Path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright not installed: pip install -e '.[test]'")
    executable = _chromium()
    # The whole workflow's page: search, final evaluation and FGSM sweep.
    directory = tmp_path / "run"
    shutil.copytree(finished_experiment(tmp_path_factory), directory)
    run_final(directory, repeats=2, workers=2)
    robustness_sweep(directory, (0.1, 0.2))
    index = write_report(
        directory, tmp_path / "report", extra_sections=[("Extra", "<p>appended by another analysis</p>")]
    )

    console_errors: list[str] = []
    page_errors: list[str] = []
    failed: list[str] = []
    network: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def route(r):  # anything but the files beside the page is a bug: record it, never fetch it
                if r.request.url.startswith("file://"):
                    r.continue_()
                else:
                    network.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
            page.goto(index.resolve().as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete, "
                "width: i.naturalWidth}))"
            )
            title = page.title()
            headings = page.locator("h2").all_inner_texts()
            name = page.locator("h1").inner_text()
        finally:
            browser.close()

    assert console_errors == [] and page_errors == [] and failed == [] and network == []
    assert len(images) >= 3
    assert sorted(i["src"] for i in images) == sorted((*FIGURES, FINAL_FIGURE, ROBUSTNESS_FIGURE))
    for image in images:
        assert image["complete"] and image["width"] > 0, image
    assert "taylorglo report" in title
    assert name == 'digits <b>report</b> & "friends"'  # shown as text, not markup
    assert "Best loss" in headings and headings[-1] == "Extra"
    assert "Final evaluation" in headings and "Robustness (FGSM)" in headings
