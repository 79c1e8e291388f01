"""Pictures for the site, drawn at build time as inline SVG: no charting library, no script at view time.

Colours are given as presentation attributes so that a picture reads well on its own (saved, or in a feed
reader); the site's stylesheet overrides them through the ``cmap-*`` classes for the dark scheme.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from ..interpreter import Span as Stretch
from ..interpreter import spans
from ..model import Policy

# Colour-blind-safe pair (Okabe-Ito) for the two live modalities, a neutral grey for "not permitted", and
# Okabe-Ito's reddish purple for what no public source covers (undetermined), drawn dashed as well.
COLOURS = {"audio-video": "#0072B2", "audio-only": "#E69F00", "not-permitted": "#8a8a8a", "unknown": "#CC79A7"}
SERIES_LABELS = {"audio-video": "audio-video", "audio-only": "audio-only", "not-permitted": "listed as not permitted",
                 "unknown": "no public source"}


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


def _stretch_dates(s: Stretch) -> str:
    p = s.period
    if p is not None and not p.start_known:
        start = f"in force by {p.effective} (real start not known)"
    else:
        start = f"from {s.start}" if s.start is not None else ""
    if s.end is None:
        return start + (", no end date" if p is not None else " onwards")
    return f"{start} to {s.end}" if start else f"to {s.end}"


def timeline_svg(policy: Policy, code: str, span: Span, today: dt.date, *, title: str) -> str:
    """One lane per stretch of the code's timeline (a Gantt chart): each row, and each gap between rows.

    A row's bar spans its dates, with a stripe per modality it allows (grey when it permits none) and a dashed
    stripe for a modality its sources are silent on. A gap no public source covers is drawn as such, dashed,
    never as "not listed"; a gap the data knows to be off the table is an empty dashed outline.
    """
    stretches = [s for s in spans(policy, code)
                 if (s.end is None or s.end >= span.start) and (s.start is None or s.start < span.end)]
    left, right, lane, top = 16.0, 16.0, 46.0, 8.0
    width = 760.0
    plot = width - left - right
    height = top + lane * max(len(stretches), 1) + 44
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'class="cmap-timeline" role="img" aria-labelledby="tl-title">',
             f'<title id="tl-title">{escape(title)}</title>']
    axis_y = top + lane * max(len(stretches), 1) + 6
    for tick in _year_ticks(span):
        x = span.x(tick, left, plot)
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{axis_y:.1f}" stroke="#ddd" '
                     f'class="cmap-svg-grid"/>')
        if tick < span.end:
            parts.append(_text(x + 3, axis_y + 16, str(tick.year), cls="cmap-svg-muted", size=11))
    for i, st in enumerate(stretches):
        y = top + lane * i
        first = st.start if st.start is not None and st.start > span.start else span.start
        x0 = span.x(first, left, plot)
        last = st.end if st.end is not None else span.end
        x1 = span.x(min(last + dt.timedelta(days=1), span.end), left, plot)
        p = st.period
        if p is None:
            kinds = ["unknown"] if not st.known else ["not-listed"]
            what = "no public source for these dates" if not st.known else "not on the table"
        elif not p.permitted:
            kinds, what = ["not-permitted"], "not permitted via telehealth"
        else:
            kinds = [m for m in ("audio-video", "audio-only") if m in p.modalities]
            silent = [m for m in p.undetermined_modalities if m in ("audio-video", "audio-only")]
            what = " or ".join(SERIES_LABELS[k] for k in kinds) or "no modality"
            if silent:
                what += "; " + " and ".join(silent) + " undetermined"
            kinds = (kinds or ["not-permitted"]) + ["unknown"] * len(silent)
        label = f"{_stretch_dates(st)}: {what}"
        anchor, lx = ("start", x0) if x0 < left + plot * 0.55 else ("end", x1)
        parts.append(_text(lx, y + 15, label, anchor=anchor, cls="cmap-svg-text"
                           + (" cmap-svg-gap" if p is None else "")))
        stripe = 16.0 / len(kinds)
        w = max(x1 - x0, 2)
        for k, kind in enumerate(kinds):
            ys = y + 21 + k * stripe
            if kind == "not-listed":
                parts.append(f'<rect x="{x0:.1f}" y="{ys:.1f}" width="{w:.1f}" height="{stripe:.1f}" fill="none" '
                             f'stroke="#8a8a8a" stroke-dasharray="4 3" class="cmap-svg-not-listed">'
                             f'<title>{escape(label)}</title></rect>')
            elif kind == "unknown":
                parts.append(f'<rect x="{x0:.1f}" y="{ys:.1f}" width="{w:.1f}" height="{stripe:.1f}" '
                             f'fill="{COLOURS[kind]}" fill-opacity="0.3" stroke="{COLOURS[kind]}" '
                             f'stroke-dasharray="4 3" class="cmap-svg-unknown"><title>{escape(label)}</title></rect>')
            else:
                parts.append(f'<rect x="{x0:.1f}" y="{ys:.1f}" width="{w:.1f}" height="{stripe:.1f}" '
                             f'fill="{COLOURS[kind]}" class="cmap-svg-{kind}"><title>{escape(label)}</title></rect>')
        if st.end is None:  # an arrow says the stretch runs on past the edge of the picture
            kind = kinds[0] if kinds[0] in COLOURS else "not-permitted"
            parts.append(f'<path d="M{x1:.1f} {y + 19:.1f} l8 10 l-8 10 z" fill="{COLOURS[kind]}" '
                         f'class="cmap-svg-{kind}"/>')
    tx = span.x(today, left, plot)
    parts.append(f'<line x1="{tx:.1f}" y1="{top - 4:.1f}" x2="{tx:.1f}" y2="{axis_y + 20:.1f}" stroke="#c2185b" '
                 f'stroke-width="2" stroke-dasharray="4 3" class="cmap-svg-today"/>')
    parts.append(_text(tx, axis_y + 32, f"built {today}", anchor="end" if tx > left + plot / 2 else "start",
                       cls="cmap-svg-today-text", size=11, weight="bold"))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Step:
    day: dt.date | None  # None: before the first change
    counts: dict[str, int]


def in_force_steps(policy: Policy, release: str | None = None) -> list[Step]:
    """How many codes the table lists on each date at which the count changes, by modality, and how many codes
    of the data no public source covers that day (their decisions are undetermined).

    A code counts once per modality its row lists; a not-permitted row counts under "not-permitted".
    """
    rel = policy.release(release).id
    timelines = {code: spans(policy, code, rel) for code in policy.views[rel]}
    days = sorted({s.start for tl in timelines.values() for s in tl if s.start is not None})
    steps: list[Step] = []
    for day in [None, *days]:
        counts = dict.fromkeys(COLOURS, 0)
        for tl in timelines.values():
            st = next(s for s in tl if (s.start is None or (day is not None and s.start <= day))
                      and (s.end is None or day is None or day <= s.end))
            p = st.period
            if p is None:
                counts["unknown"] += 0 if st.known else 1
            elif not p.permitted:
                counts["not-permitted"] += 1
            else:
                for m in p.modalities:
                    if m in counts:
                        counts[m] += 1
        if not steps or counts != steps[-1].counts:
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
             '<title id="chart-title">Codes on the telehealth table over time, by modality, and codes no public '
             'source covers</title>']
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
        # the first step holds the counts before any change: the line starts at that level on the left edge
        d = f"M{left:.1f} {y(steps[0].counts[kind] if steps and steps[0].day is None else 0):.1f}"
        last = 0
        for s in steps:
            if s.day is None:
                last = s.counts[kind]
                continue
            x = span.x(min(max(s.day, span.start), span.end), left, plot_w)
            d += f" H{x:.1f} V{y(s.counts[kind]):.1f}"
            last = s.counts[kind]
        d += f" H{width - right:.1f}"
        if kind == "audio-video":  # shade the main series so the thinner lines drawn over it stay readable
            parts.append(f'<path d="{d} V{y(0):.1f} Z" fill="{colour}" fill-opacity="0.12" stroke="none" '
                         f'class="cmap-svg-{kind}"/>')
        # audio-only often equals audio-video: a thinner dashed line on top keeps both visible.
        style = {"audio-video": 'stroke-width="4"', "audio-only": 'stroke-width="2.5" stroke-dasharray="7 4"',
                 "not-permitted": 'stroke-width="2"', "unknown": 'stroke-width="2" stroke-dasharray="2 3"'}[kind]
        parts.append(f'<path d="{d}" fill="none" stroke="{colour}" {style} '
                     f'class="cmap-svg-line-{kind}"><title>{escape(SERIES_LABELS[kind])}: {last} now</title>'
                     f'</path>')
    lx = left
    for kind, colour in COLOURS.items():
        dash = {"audio-only": ' stroke-dasharray="7 4"', "unknown": ' stroke-dasharray="2 3"'}.get(kind, "")
        parts.append(f'<line x1="{lx:.1f}" y1="10" x2="{lx + 16:.1f}" y2="10" stroke="{colour}" stroke-width="3"{dash} '
                     f'class="cmap-svg-line-{kind}"/>')
        label = SERIES_LABELS[kind]
        parts.append(_text(lx + 20, 14, label, size=12))
        lx += 30 + 7 * len(label)
    tx = span.x(today, left, plot_w)
    parts.append(f'<line x1="{tx:.1f}" y1="{top:.1f}" x2="{tx:.1f}" y2="{top + plot_h:.1f}" stroke="#c2185b" '
                 f'stroke-width="2" stroke-dasharray="4 3" class="cmap-svg-today"/>')
    parts.append(_text(tx - 4, top + 12, f"built {today}", anchor="end", cls="cmap-svg-today-text", size=11,
                       weight="bold"))
    parts.append("</svg>")
    return "".join(parts)
