"""Charts drawn on the server as inline SVG with pygal: readable with no JavaScript, and
nothing fetched from elsewhere (pygal's tooltip script comes from a CDN by default, so it
is turned off with ``js=[]``; its CSS is inlined into the SVG)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from xml.etree import ElementTree

import pygal
from markupsafe import Markup
from pygal.style import Style

_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1f2937",
    foreground_strong="#111827",
    foreground_subtle="#9ca3af",
    opacity=".25",
    opacity_hover=".4",
    colors=("#2563eb", "#16a34a", "#f59e0b", "#db2777"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    value_font_size=12,
    tooltip_font_size=12,
)


_BAR_STYLE = Style(**{**_STYLE.to_dict(), "colors": ("#16a34a",), "opacity": ".75"})


def _config(**extra: object) -> dict[str, object]:
    return {
        "style": _STYLE,
        "js": [],  # no CDN script
        "disable_xml_declaration": True,  # inline in HTML
        "explicit_size": False,  # scales with its container (viewBox)
        "width": 800,
        "height": 320,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 3,
        "show_minor_x_labels": False,
        "x_label_rotation": 0,
        "truncate_label": -1,
        "margin": 12,
        "margin_bottom": 28,
        "include_x_axis": True,  # counts start at zero
        "dots_size": 3,
        "no_data_text": "No data yet",
        **extra,
    }


def _every(n: int, labels: int = 8) -> int:
    return max(1, -(-n // labels))


def _svg(chart: pygal.graph.graph.Graph) -> Markup:
    """The chart as inline SVG markup, without pygal's inline configuration script (its
    tooltips need JavaScript from a CDN; the page's CSP would block it anyway)."""
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    # pygal escapes the labels and values it writes; the result is SVG markup.
    return Markup(ElementTree.tostring(tree, encoding="unicode"))  # noqa: S704


def delivery_chart(
    points: Sequence[tuple[datetime, int, int, int]], per: str, *, narrow: bool = False
) -> Markup:
    """Sent, delivered and clicked per minute or per hour (``per``). ``narrow``: drawn
    for a phone's width (fewer labels, legend in one column), so its text stays legible
    where the wide one would have to shrink."""
    size = {"width": 400, "height": 300, "legend_at_bottom_columns": 3} if narrow else {}
    chart = pygal.Line(
        **_config(
            x_labels_major_every=_every(len(points), 3 if narrow else 8),
            fill=False,
            min_scale=2,
            **size,
        )
    )
    chart.x_labels = [
        at.strftime("%H:%M" if per == "minute" else "%d %b %H:00") for at, *_ in points
    ]
    chart.add("sent", [p[1] for p in points])
    chart.add("delivered", [p[2] for p in points])
    chart.add("clicked", [p[3] for p in points])
    return _svg(chart)


def growth_chart(points: Sequence[tuple[date, int, int]], *, narrow: bool = False) -> Markup:
    """Subscriptions in total, day by day."""
    size = {"width": 400, "height": 240} if narrow else {"height": 280}
    chart = pygal.Line(
        **_config(
            x_labels_major_every=_every(len(points), 3 if narrow else 8),
            fill=True,
            min_scale=2,
            show_legend=False,
            **size,
        )
    )
    chart.x_labels = [day.strftime("%d %b") for day, *_ in points]
    chart.add("subscriptions", [p[2] for p in points])
    return _svg(chart)


def new_per_day_chart(points: Sequence[tuple[date, int, int]], *, narrow: bool = False) -> Markup:
    """New subscriptions each day, as bars (their own scale: a day's few dozen would be
    flat against the total's hundreds)."""
    size = {"width": 400, "height": 200} if narrow else {"height": 200}
    chart = pygal.Bar(
        **_config(
            x_labels_major_every=_every(len(points), 3 if narrow else 8),
            show_legend=False,
            min_scale=2,
            max_scale=6,  # a few grid lines: the bars carry the message
            style=_BAR_STYLE,
            **size,
        )
    )
    chart.x_labels = [day.strftime("%d %b") for day, *_ in points]
    chart.add("new that day", [p[1] for p in points])
    return _svg(chart)
