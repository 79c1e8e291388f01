"""Pictures for the site, drawn at build time as inline SVG: no charting library, no script at view time.

Colours are given as presentation attributes so that a picture reads well on its own (saved, or in a feed
reader); the site's stylesheet overrides them through the ``cmap-*`` classes for the dark scheme.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from ..model import Period, Policy

# Colour-blind-safe pair (Okabe-Ito) for the two live modalities, a neutral grey for "not permitted".
COLOURS = {"audio-video": "#0072B2", "audio-only": "#E69F00", "not-permitted": "#8a8a8a"}
SERIES_LABELS = {"audio-video": "audio-video", "audio-only": "audio-only", "not-permitted": "listed as not permitted"}


@dataclass(frozen=True, slots=True)
class Span:
    """The calendar range a picture covers: whole years, so that every picture on the site lines up."""

    start: dt.date
    end: dt.date

    def x(self, day: dt.date, left: float, width: float) -> float:
        total = (self.end - self.start).days
        return left + width * (day - self.start).days / total


def policy_span(policy: Policy, today: dt.date) -> Span:
    days = [today]
    for code in policy.codes.values():
        for p in code.periods:
            days.append(p.effective)
            if p.end is not None:
                days.append(p.end)
    return Span(dt.date(min(days).year, 1, 1), dt.date(max(days).year + 1, 1, 1))


def _year_ticks(span: Span) -> list[dt.date]:
    return [dt.date(y, 1, 1) for y in range(span.start.year, span.end.year + 1)]


def _text(x: float, y: float, body: str, *, anchor: str = "start", cls: str = "cmap-svg-text", size: int = 12,
          weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'class="{cls}" fill="#333">{escape(body)}</text>')


def timeline_svg(periods: Sequence[Period], span: Span, today: dt.date, *, title: str) -> str:
    """One lane per period (a Gantt chart): the bar spans the period's dates, the label says what it allows."""
    left, right, lane, top = 16.0, 16.0, 46.0, 8.0
    width = 760.0
    plot = width - left - right
    height = top + lane * max(len(periods), 1) + 44
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'class="cmap-timeline" role="img" aria-labelledby="tl-title">',
             f'<title id="tl-title">{escape(title)}</title>']
    axis_y = top + lane * max(len(periods), 1) + 6
    for tick in _year_ticks(span):
        x = span.x(tick, left, plot)
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{axis_y:.1f}" stroke="#ddd" '
                     f'class="cmap-svg-grid"/>')
        if tick < span.end:
            parts.append(_text(x + 3, axis_y + 16, str(tick.year), cls="cmap-svg-muted", size=11))
    for i, p in enumerate(periods):
        y = top + lane * i
        x0 = span.x(max(p.effective, span.start), left, plot)
        last = p.end if p.end is not None else span.end
        x1 = span.x(min(last + dt.timedelta(days=1), span.end), left, plot)
        # One stripe per modality the row allows (grey when it permits none), so colour says how.
        kinds = [m for m in COLOURS if m in p.modalities] if p.permitted else ["not-permitted"]
        kinds = kinds or ["not-permitted"]
        what = ("not permitted via telehealth" if not p.permitted
                else " or ".join(SERIES_LABELS[k] for k in kinds if k in p.modalities))
        dates = f"{p.effective} to {p.end}" if p.end is not None else f"from {p.effective}, no end date"
        label = f"{dates}: {what}"
        anchor, lx = ("start", x0) if x0 < left + plot * 0.55 else ("end", x1)
        parts.append(_text(lx, y + 15, label, anchor=anchor))
        stripe = 16.0 / len(kinds)
        for k, kind in enumerate(kinds):
            parts.append(f'<rect x="{x0:.1f}" y="{y + 21 + k * stripe:.1f}" width="{max(x1 - x0, 2):.1f}" '
                         f'height="{stripe:.1f}" fill="{COLOURS[kind]}" class="cmap-svg-{kind}">'
                         f'<title>{escape(label)}</title></rect>')
        if p.end is None:  # an arrow says the row runs on past the edge of the picture
            parts.append(f'<path d="M{x1:.1f} {y + 19:.1f} l8 10 l-8 10 z" fill="{COLOURS[kinds[0]]}" '
                         f'class="cmap-svg-{kinds[0]}"/>')
    tx = span.x(today, left, plot)
    parts.append(f'<line x1="{tx:.1f}" y1="{top - 4:.1f}" x2="{tx:.1f}" y2="{axis_y + 20:.1f}" stroke="#c2185b" '
                 f'stroke-width="2" stroke-dasharray="4 3" class="cmap-svg-today"/>')
    parts.append(_text(tx, axis_y + 32, f"today {today}", anchor="end" if tx > left + plot / 2 else "start",
                       cls="cmap-svg-today-text", size=11, weight="bold"))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Step:
    day: dt.date
    counts: dict[str, int]


def in_force_steps(policy: Policy, release: str | None = None) -> list[Step]:
    """How many codes the table lists on each date at which the count changes, by modality.

    A code counts once per modality its row lists; a not-permitted row counts under "not-permitted".
    """
    view = policy.views[policy.release(release).id]
    periods = [p for cv in view.values() for p in cv.periods]
    days = sorted({p.effective for p in periods} | {p.end + dt.timedelta(days=1) for p in periods
                                                      if p.end is not None})
    steps = []
    for day in days:
        counts = dict.fromkeys(COLOURS, 0)
        for p in periods:
            if p.covers(day):
                if not p.permitted:
                    counts["not-permitted"] += 1
                for m in p.modalities:
                    if m in counts:
                        counts[m] += 1
        steps.append(Step(day, counts))
    return steps


def in_force_chart_svg(steps: Sequence[Step], span: Span, today: dt.date) -> str:
    """A step chart: for each modality, how many codes were in force on each date."""
    left, right, top, bottom = 40.0, 16.0, 30.0, 30.0
    width, height = 760.0, 280.0
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([max(s.counts.values()) for s in steps] + [1])
    scale = plot_h / (peak + 1)

    def y(n: int) -> float:
        return top + plot_h - n * scale

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'class="cmap-chart" role="img" aria-labelledby="chart-title">',
             '<title id="chart-title">Codes on the telehealth table over time, by modality</title>']
    for n in range(0, peak + 2, max(1, (peak + 1) // 5)):
        parts.append(f'<line x1="{left:.1f}" y1="{y(n):.1f}" x2="{width - right:.1f}" y2="{y(n):.1f}" '
                     f'stroke="#e5e5e5" class="cmap-svg-grid"/>')
        parts.append(_text(left - 6, y(n) + 4, str(n), anchor="end", cls="cmap-svg-muted", size=11))
    for tick in _year_ticks(span):
        x = span.x(tick, left, plot_w)
        parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h:.1f}" x2="{x:.1f}" y2="{top + plot_h + 4:.1f}" '
                     f'stroke="#999" class="cmap-svg-grid"/>')
        if tick < span.end:
            parts.append(_text(x + 3, top + plot_h + 18, str(tick.year), cls="cmap-svg-muted", size=11))
    for kind, colour in COLOURS.items():
        d = f"M{left:.1f} {y(0):.1f}"
        last = 0
        for s in steps:
            x = span.x(s.day, left, plot_w)
            d += f" H{x:.1f} V{y(s.counts[kind]):.1f}"
            last = s.counts[kind]
        d += f" H{width - right:.1f}"
        if kind == "audio-video":  # shade the main series so the thinner lines drawn over it stay readable
            parts.append(f'<path d="{d} V{y(0):.1f} Z" fill="{colour}" fill-opacity="0.12" stroke="none" '
                         f'class="cmap-svg-{kind}"/>')
        # audio-only often equals audio-video: a thinner dashed line on top keeps both visible.
        style = {"audio-video": 'stroke-width="4"', "audio-only": 'stroke-width="2.5" stroke-dasharray="7 4"',
                 "not-permitted": 'stroke-width="2"'}[kind]
        parts.append(f'<path d="{d}" fill="none" stroke="{colour}" {style} '
                     f'class="cmap-svg-line-{kind}"><title>{escape(SERIES_LABELS[kind])}: {last} today</title>'
                     f'</path>')
    lx = left
    for kind, colour in COLOURS.items():
        dash = ' stroke-dasharray="7 4"' if kind == "audio-only" else ""
        parts.append(f'<line x1="{lx:.1f}" y1="10" x2="{lx + 16:.1f}" y2="10" stroke="{colour}" stroke-width="3"{dash} '
                     f'class="cmap-svg-line-{kind}"/>')
        label = SERIES_LABELS[kind]
        parts.append(_text(lx + 20, 14, label, size=12))
        lx += 30 + 7 * len(label)
    tx = span.x(today, left, plot_w)
    parts.append(f'<line x1="{tx:.1f}" y1="{top:.1f}" x2="{tx:.1f}" y2="{top + plot_h:.1f}" stroke="#c2185b" '
                 f'stroke-width="2" stroke-dasharray="4 3" class="cmap-svg-today"/>')
    parts.append(_text(tx - 4, top + 12, f"today {today}", anchor="end", cls="cmap-svg-today-text", size=11,
                       weight="bold"))
    parts.append("</svg>")
    return "".join(parts)
