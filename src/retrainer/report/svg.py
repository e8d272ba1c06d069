"""A few SVG primitives, written by hand: scales, axes, lines, markers. No JavaScript, no
network: the report opens anywhere.

>>> s = Scale(0, 10, 100, 200)
>>> s(5)
150.0
>>> "<path" in polyline([(0, 0), (1, 1)], "#000")
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

PALETTE = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
]
INK = "#2b2d42"
GRID = "#e6e8ee"
MUTED = "#8d99ae"
FONT = "system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"


class Scale:
    """A linear map from [lo, hi] to [a, b]."""

    def __init__(self, lo: float, hi: float, a: float, b: float) -> None:
        self.lo, self.hi, self.a, self.b = lo, hi if hi != lo else lo + 1, a, b

    def __call__(self, x: float) -> float:
        return self.a + (x - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def ts(d: datetime) -> float:
    return d.timestamp() if d.tzinfo else (d - datetime(1970, 1, 1)).total_seconds()


def short(s: str, limit: int = 90) -> str:
    """``s`` cut to at most ``limit`` characters at a word boundary, an ellipsis added when
    cut (a single word longer than ``limit`` is cut inside it, the only way to fit).

    >>> short("gate rejected: accuracy 0.912 vs 0.915", 20)
    'gate rejected…'
    >>> short("fits", 20)
    'fits'
    """
    s = " ".join(s.split())
    if len(s) <= limit:
        return s
    cut = s[:limit].rstrip()
    space = cut.rfind(" ")
    if space > limit // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:-(") + "…"


def text(
    x: float,
    y: float,
    s: str,
    *,
    size: int = 11,
    anchor: str = "start",
    fill: str = INK,
    weight: str = "normal",
    rotate: float | None = None,
) -> str:
    rot = f' transform="rotate({rotate:.0f} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}" font-weight="{weight}"{rot}>{escape(s)}</text>'
    )


def line(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    stroke: str = GRID,
    width: float = 1,
    dash: str | None = None,
) -> str:
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
        f'stroke-width="{width}"{d}/>'
    )


def rect(
    x: float,
    y: float,
    w: float,
    h: float,
    fill: str,
    *,
    opacity: float = 1.0,
    title: str | None = None,
    stroke: str | None = None,
) -> str:
    s = f' stroke="{stroke}" stroke-width="1"' if stroke else ""
    t = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
        f'fill="{fill}" fill-opacity="{opacity:.3g}"{s}>{t}</rect>'
    )


def circle(x: float, y: float, r: float, fill: str, title: str | None = None) -> str:
    t = f"<title>{escape(title)}</title>" if title else ""
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}">{t}</circle>'


def polyline(
    points: Iterable[tuple[float, float] | None],
    stroke: str,
    *,
    width: float = 1.5,
    dash: str | None = None,
    opacity: float = 1.0,
) -> str:
    """A path through the points; ``None`` breaks the line (a gap in the data)."""
    parts: list[str] = []
    pen_up = True
    for p in points:
        if p is None:
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{p[0]:.1f},{p[1]:.1f}")
        pen_up = False
    if not parts:
        return ""
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<path d="{" ".join(parts)}" fill="none" stroke="{stroke}" stroke-width="{width}" '
        f'stroke-linejoin="round" stroke-opacity="{opacity:.3g}"{d}/>'
    )


def svg(width: int, height: int, body: Sequence[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(label)}" '
        f'font-family="{FONT}">' + "".join(body) + "</svg>"
    )


def legend(x: float, y: float, items: Sequence[tuple[str, str, str]]) -> list[str]:
    """Legend entries (label, colour, kind: line | dash | bar | dot) laid out in a row."""
    out: list[str] = []
    for label, colour, kind in items:
        if kind == "bar":
            out.append(rect(x, y - 8, 12, 10, colour, opacity=0.6))
        elif kind == "dot":
            out.append(circle(x + 6, y - 3, 4, colour))
        else:
            out.append(
                line(x, y - 3, x + 14, y - 3, colour, 2.5, "4 3" if kind == "dash" else None)
            )
        out.append(text(x + 18, y, label, size=11))
        x += 26 + 6.4 * len(label)
    return out
