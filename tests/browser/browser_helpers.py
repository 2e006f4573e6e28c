"""Shared by the browser tests: where their screenshots go (docs/images, shown in docs/dashboard.md,
when ``TETHER_SCREENSHOTS=1``; else a temporary directory, so a test run leaves the tree clean)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

DOCS_IMAGES = Path(__file__).parents[2] / "docs" / "images"
SCREENSHOTS = DOCS_IMAGES if os.environ.get("TETHER_SCREENSHOTS") == "1" else Path(tempfile.gettempdir()) / "tether-ui"


def as_admin(env: Any, fn: Any) -> Any:
    """``fn(kube)`` with an admin connection to the environment's sandbox, from a test's thread."""
    from dashboard_env import run_async

    async def run() -> Any:
        kube = await env.admin()
        try:
            return await fn(kube)
        finally:
            await kube.close()

    return run_async(run)


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0


# colour parsing, compositing and the WCAG 2 contrast ratio, shared by the checks below
_COLOUR_JS = """
  const parse = s => { const m = s.match(/rgba?\\(([^)]+)\\)/); if (!m) { return null; }
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const channel = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  const luminance = c => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const ratio = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return Math.round((x + 0.05) / (y + 0.05) * 100) / 100; };
  const behind = el => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) { break; } } }
    return layers.reverse().reduce((bg, layer) => over(layer, bg), [255, 255, 255, 1]); };
"""

#: For every visible element with text of its own: the WCAG contrast ratio of its text colour with
#: the background behind it (its own and its ancestors' backgrounds composited) and the ratio AA
#: asks for (3 for large text, else 4.5).
CONTRAST_JS = (
    "() => {"
    + _COLOUR_JS
    + """
  const found = [];
  for (const el of document.querySelectorAll("body *")) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) { continue; }
    const box = el.getBoundingClientRect(), style = getComputedStyle(el);
    if (!box.width || !box.height || style.visibility === "hidden" || el.closest(".visually-hidden, [hidden]")) {
      continue; }
    const bg = behind(el), fg = over(parse(style.color), bg), size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
    found.push({ text: el.textContent.trim().slice(0, 40), ratio: ratio(fg, bg), needed: large ? 3 : 4.5,
                 element: el.tagName.toLowerCase() + (el.className ? "." + el.className : "") });
  }
  return found;
}"""
)

#: The focused element, and its focus outline: style, width and contrast with the background around it
#: (WCAG 1.4.11 asks 3:1 of a focus indicator).
FOCUSED_JS = (
    "() => {"
    + _COLOUR_JS
    + """
  const el = document.activeElement, style = getComputedStyle(el);
  const outline = over(parse(style.outlineColor) || [0, 0, 0, 0], [255, 255, 255, 1]);
  return { tag: el.tagName.toLowerCase(), id: el.id, text: (el.textContent || "").trim().slice(0, 40),
           href: el.getAttribute("href") || "", outline: style.outlineStyle, width: parseFloat(style.outlineWidth),
           ratio: ratio(outline, behind(el.parentElement || el)) };
}"""
)

#: Form controls (visible, not hidden inputs) without an accessible name from a label, ARIA or their text.
UNLABELLED_JS = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter(el => el.type !== "hidden" && !el.closest("[hidden]"))
  .filter(el => el.tagName === "BUTTON" ? !(el.textContent.trim() || el.getAttribute("aria-label"))
               : !(el.labels.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")))
  .map(el => el.outerHTML.slice(0, 120))"""
