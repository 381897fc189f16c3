"""Open a page of the built docs site in headless Chromium and report what a reader sees.

The site is served from a local HTTP server; Chromium is driven through its DevTools protocol
(websocket-client). :func:`inspect_page` returns the rendered math, the images with their decoded
sizes, any raw TeX left in the text, every URL the page requested, and optionally a screenshot.

``python tests/docs_browser.py docs/img/search-default.png`` builds the site and writes the
screenshot of the default search's page that the README shows.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-port=0", "--remote-allow-origins=*")
VIEWPORT = (1000, 760)
PAGE_FACTS = """(async () => {
  await Promise.all([...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  await document.fonts.ready;
  const text = document.querySelector("article").innerText;
  return JSON.stringify({
    title: document.title,
    math: [...document.querySelectorAll(".arithmatex")].map(e => ({
      katex: !!e.querySelector(".katex math"), height: e.getBoundingClientRect().height})),
    images: [...document.images].map(i => ({src: i.getAttribute("src"), width: i.naturalWidth})),
    raw_tex: ["\\\\(", "\\\\)", "\\\\[", "$$"].filter(s => text.includes(s)),
    text: text,
  });
})()"""


def find_chromium() -> str | None:
    """The Chromium executable (``CHROMIUM`` overrides), or None."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def build_site(destination: Path) -> Path:
    """``mkdocs build --strict`` of the repository's docs into ``destination``."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(REPO / "mkdocs.yml"),
                          "-d", str(destination)], capture_output=True, text=True, timeout=300, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"mkdocs build failed:\n{run.stdout}{run.stderr}")
    return destination


@dataclass
class PageView:
    """What headless Chromium showed of one page."""

    title: str
    math: list[dict]
    images: list[dict]
    raw_tex: list[str]
    text: str = field(repr=False)
    requests: list[str] = field(default_factory=list)


class DevTools:
    """A minimal DevTools-protocol client over one browser websocket (flat sessions)."""

    def __init__(self, url: str):
        import websocket

        self.socket = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def call(self, method: str, session: str | None = None, **params) -> dict:
        message = {"id": next(self.ids), "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            self.events.append(json.loads(self.socket.recv()))
        raise TimeoutError(f"no {method} within {timeout} s")


def _serve(directory: Path) -> ThreadingHTTPServer:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _launch(chromium: str, profile: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.is_file() and len(lines := port_file.read_text().split()) == 2:
            return process, f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        if process.poll() is not None:
            raise RuntimeError(f"{chromium} exited with status {process.returncode} before opening DevTools")
        time.sleep(0.1)
    process.kill()
    raise TimeoutError(f"{chromium} did not open DevTools within 30 s")


def inspect_page(site: Path, page: str, chromium: str, screenshot: Path | None = None) -> PageView:
    """Load ``page`` (a path under the built ``site``) in headless Chromium; optionally save a PNG."""
    server = _serve(site)
    with tempfile.TemporaryDirectory(prefix="dsr-chromium-") as profile:
        process, endpoint = _launch(chromium, Path(profile))
        try:
            tools = DevTools(endpoint)
            target = tools.call("Target.createTarget", url="about:blank")["targetId"]
            session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page.enable", "Network.enable"):
                tools.call(domain, session)
            width, height = VIEWPORT
            tools.call("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                       deviceScaleFactor=1, mobile=False)
            tools.call("Page.navigate", session, url=f"http://127.0.0.1:{server.server_port}/{page}")
            tools.wait_for("Page.loadEventFired")
            facts = tools.call("Runtime.evaluate", session, expression=PAGE_FACTS, awaitPromise=True,
                               returnByValue=True)["result"]["value"]
            if screenshot is not None:
                png = tools.call("Page.captureScreenshot", session, format="png")["data"]
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(png))
            requests = [e["params"]["request"]["url"] for e in tools.events
                        if e.get("method") == "Network.requestWillBeSent"]
            tools.socket.send(json.dumps({"id": next(tools.ids), "method": "Browser.close"}))
            tools.socket.close()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            server.shutdown()
    return PageView(**json.loads(facts), requests=requests)


def main(argv: list[str]) -> int:
    """Build the site and save the screenshot of the default search's page to ``argv[0]``."""
    chromium = find_chromium()
    if chromium is None or len(argv) != 1:
        print("usage: python tests/docs_browser.py OUT.png  (needs chromium: apt-get install chromium)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        view = inspect_page(build_site(Path(tmp) / "site"), "searches/default/", chromium, Path(argv[0]))
    print(f"{argv[0]}: {len(view.math)} formulas, {len(view.images)} images, {len(view.requests)} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
