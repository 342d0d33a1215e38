"""The stats as a picture: daily volume and success rate per agent, and the calibration curve, in one PNG.

Needs the ``charts`` extra (matplotlib). It is drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas
directly, never through ``pyplot``: no global state, no GUI backend, safe from the writer's or Bolt's threads.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

from slack_tasklog.reports.stats import Stats

__all__ = ["ChartsUnavailableError", "render_png"]

# Colour-blind-safe (Okabe-Ito); more agents than colours cycle.
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_NO_AGENT = "#BBBBBB"
_MAX_AGENTS = 8  # the rest are drawn together as "others"


class ChartsUnavailableError(ImportError):
    """matplotlib is not installed; ``str(error)`` says how to install it."""


def _matplotlib() -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ChartsUnavailableError("charts need matplotlib: pip install 'slack-tasklog[charts]'") from error
    return Figure, FigureCanvasAgg


def render_png(stats: Stats, title: str) -> bytes:
    """A PNG of ``stats``: tasks per day per agent (bars) with each agent's daily success rate (lines), and for
    each agent its success rate per confidence band against the diagonal a perfectly calibrated agent would follow
    (its legend adds the people's approval rate, once someone voted)."""
    out = io.BytesIO()
    _figure(stats, title).savefig(out, format="png")
    return out.getvalue()


def _figure(stats: Stats, title: str) -> Any:
    figure_class, canvas_class = _matplotlib()
    figure = figure_class(figsize=(11, 11), dpi=110, layout="constrained")
    canvas_class(figure)
    figure.suptitle(_plain(title), fontsize=14)
    volume, success, calibration = figure.subplots(3, 1, height_ratios=(3, 2, 2.4))
    names = [agent.agent for agent in stats.agents][:_MAX_AGENTS]
    colours = {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(names)}
    _draw_days(volume, success, stats, names, colours)
    _draw_calibration(calibration, stats, names, colours)
    return figure


def _draw_days(axes: Any, rates: Any, stats: Stats, names: list[str], colours: dict[str, str]) -> None:
    if not stats.days:
        axes.text(0.5, 0.5, "No tasks in this window", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        rates.set_axis_off()
        return
    first, last = stats.days[0].day, stats.days[-1].day
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    index = {day: i for i, day in enumerate(days)}
    series = [*names, "others", ""]  # "" = no agent (unrouted or unassigned)
    counts = {name: [0] * len(days) for name in series}
    finished = {name: [0] * len(days) for name in series}
    succeeded = {name: [0] * len(days) for name in series}
    for entry in stats.days:
        name = entry.agent if entry.agent in colours else ("" if entry.agent is None else "others")
        i = index[entry.day]
        counts[name][i] += entry.tasks
        finished[name][i] += entry.finished
        succeeded[name][i] += entry.succeeded
    x = list(range(len(days)))
    bottom = [0] * len(days)
    # Each panel's legend entries, handed to legend(): the ones it collects itself leave out labels starting with "_".
    legends: dict[Any, list[Any]] = {axes: [], rates: []}
    for name in series:
        if not any(counts[name]):
            continue
        label = {"": "no agent", "others": "other agents"}.get(name, name)
        colour = colours.get(name, _NO_AGENT)
        legends[axes].append(axes.bar(x, counts[name], bottom=bottom, color=colour, width=0.8, label=_plain(label)))
        bottom = [b + c for b, c in zip(bottom, counts[name], strict=True)]
    axes.set_ylabel("tasks per day")
    axes.set_title("Tasks per day, by the agent each was assigned to", fontsize=11, loc="left")
    rates.set_title("Success rate per day (finished tasks)", fontsize=11, loc="left")
    for name in names:
        points = [(i, succeeded[name][i] / finished[name][i]) for i in x if finished[name][i]]
        if points:
            legends[rates] += rates.plot(*zip(*points, strict=True), color=colours[name], marker="o", markersize=3,
                                         linewidth=1.5, label=_plain(name))  # fmt: skip
    rates.set_ylim(0, 1.05)
    rates.set_ylabel("success rate")
    rates.yaxis.set_major_formatter(_percent_formatter())
    step = max(1, len(days) // 12)  # at most about a dozen date labels: they must not overlap
    for panel in (axes, rates):
        panel.set_xticks(x[::step], [_short(day) for day in days[::step]])
        panel.set_xlim(-0.6, len(days) - 0.4)
        panel.grid(axis="y", color="#DDDDDD", linewidth=0.6)
        panel.set_axisbelow(True)
        panel.legend(handles=legends[panel], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)


def _draw_calibration(axes: Any, stats: Stats, names: list[str], colours: dict[str, str]) -> None:
    axes.set_title(
        "Calibration: success rate by confidence at assignment (dot size: finished tasks)", fontsize=11, loc="left"
    )
    legend = axes.plot([0, 100], [0, 1], color="#888888", linestyle="--", linewidth=1, label="perfectly calibrated")
    # What people thought beside how the agent's confidence held up: the two signals a team routes by.
    approval = {
        a.agent: f"{a.agent} ({a.approval_rate:.0%} approved by people, {a.voted:,} voted)"
        for a in stats.agents
        if a.approval_rate is not None
    }
    drawn = False
    for name in names:
        points = [
            ((band.low + band.high) / 2, band.success_rate, band.finished)
            for band in stats.calibration.get(name, ())
            if band.success_rate is not None
        ]
        if not points:
            continue
        drawn = True
        middles, rates, sizes = zip(*points, strict=True)
        legend += axes.plot(middles, rates, color=colours[name], linewidth=1.5, label=_plain(approval.get(name, name)))
        largest = max(sizes)
        axes.scatter(middles, rates, s=[20 + 180 * size / largest for size in sizes], color=colours[name], zorder=3)
    bands = next(iter(stats.calibration.values()), ())
    axes.set_xticks([(b.low + b.high) / 2 for b in bands], [f"{b.low}-{b.high}" for b in bands])
    axes.set_xlim(0, 100)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("confidence band (%)")
    axes.set_ylabel("success rate")
    axes.yaxis.set_major_formatter(_percent_formatter())
    if not drawn:
        axes.text(50, 0.5, "No finished tasks with a confidence", ha="center", va="center")
    axes.grid(axis="y", color="#DDDDDD", linewidth=0.6)
    axes.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)


def _plain(text: str) -> str:
    """``text`` as matplotlib shows it literally: an agent named ``$\\frac{$`` is not mathtext (which would fail to
    parse and take the whole chart down). A text with no unescaped ``$`` is never parsed, and ``\\$`` shows as ``$``.
    A leading ``_`` gets a zero-width space before it: matplotlib before 3.9 leaves such labels out of any legend."""
    text = text.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


def _short(day: date) -> str:
    return day.strftime("%b %d")
