"""Open an HTML file in a real headless browser (Debian's ``chromium``) and read back what it shows.

No WebDriver: a wrapper page loads the file in an ``<iframe>``; the browser fires the wrapper's
``load`` event only once the frame and all its images have loaded or failed, and a small script
then writes what it sees (each image's ``naturalWidth``, each table's rows, each in-page link's
target) into the DOM that ``--dump-dom`` prints.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

_CHECK = """
window.addEventListener("load", () => {
  let out;
  try {
    const d = document.getElementById("page").contentDocument;
    out = {
      title: d.title,
      images: [...d.images].map(i => ({src: i.getAttribute("src").slice(0, 80), complete: i.complete,
                                        width: i.naturalWidth, height: i.naturalHeight})),
      tables: [...d.querySelectorAll("table")].map(t => ({rows: t.rows.length,
                                                       header: [...t.rows[0].cells].map(c => c.textContent)})),
      links: [...d.querySelectorAll('a[href^="#"]')].map(a => ({href: a.getAttribute("href"),
                                                             found: !!d.getElementById(a.getAttribute("href").slice(1))})),
      text: d.body.innerText,
    };
  } catch (error) {
    out = {error: String(error)};
  }
  const pre = document.createElement("pre");
  pre.id = "tfforensics-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary on PATH, or None."""
    return next((found for found in map(shutil.which, CANDIDATES) if found), None)


def inspect_page(page: Path, work: Path, *, binary: str | None = None, timeout: int = 90) -> dict:
    """What a headless Chromium shows of ``page``: ``{title, images, tables, links, text}``."""
    binary = binary or find_chromium()
    work.mkdir(parents=True, exist_ok=True)
    wrapper = work / "wrapper.html"
    wrapper.write_text(f'<!doctype html><html><body><iframe id="page" src="{html.escape(Path(page).resolve().as_uri())}">'
                       f"</iframe><script>{_CHECK}</script></body></html>")
    done = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--allow-file-access-from-files", f"--user-data-dir={work / 'profile'}", "--dump-dom", wrapper.as_uri()],
        capture_output=True, text=True, timeout=timeout)
    found = re.search(r'<pre id="tfforensics-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"{binary} printed no result (exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    assert "error" not in result, result["error"]
    return result
