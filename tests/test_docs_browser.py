"""The built site, opened in headless Chromium, shows rendered math and loaded plots, offline."""

import os
from urllib.parse import urlsplit

import pytest

from docs_browser import build_site, find_chromium, inspect_page


@pytest.fixture(scope="module")
def chromium():
    found = find_chromium()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium for the docs test: .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def test_default_search_page_renders_math_and_plots_offline(chromium, tmp_path):
    site = build_site(tmp_path / "site")
    view = inspect_page(site, "searches/default/", chromium, screenshot=tmp_path / "page.png")
    assert view.text.lstrip().startswith("Search default"), view.text[:80]
    assert len(view.math) >= 2 and all(m["katex"] and m["height"] > 10 for m in view.math), view.math
    assert view.raw_tex == [], f"raw TeX left in the page: {view.raw_tex}"
    plots = [i for i in view.images if i["src"].endswith(".png")]
    assert len(plots) >= 3, view.images
    assert all(i["width"] > 100 for i in plots), plots
    assert "closest to" in view.text or "equal to" in view.text
    hosts = {urlsplit(url).hostname for url in view.requests if not url.startswith("data:")}
    assert hosts == {"127.0.0.1"}, f"the page reached outside the local server: {sorted(hosts)}"
    assert (tmp_path / "page.png").stat().st_size > 10_000
