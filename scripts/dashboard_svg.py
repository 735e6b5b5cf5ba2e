"""Draws a CloudWatch dashboard body (the JSON PutDashboard takes) as an SVG
picture, from synthetic data: `make docs` (scripts/docs.py) draws the
dashboard of examples/production into docs/images/dashboard.svg.

Every widget of the body is drawn where the dashboard grid puts it (24
units wide): a text widget as its heading, a metric widget as a graph with
one line per metric of its `metrics` (labelled with the line's label) and
each `annotations.horizontal` entry as a dashed red line with its label.
The numbers are made up: six hours of a plausible series per line, seeded
from the line's label, below an "above" threshold and over a "below" one,
so the picture shows what the dashboard looks like, not what an
environment did. Nothing else is invented: titles, lines, thresholds and
layout come from the body.

The SVG is byte-stable (fixed seeds, `svg.hashsalt`, no date, text kept
as text), so `make docs-check` can compare it. Needs matplotlib (pinned in
tests/requirements.txt, installed into .venv by `make venv`).
"""

from __future__ import annotations

import io
import zlib

import matplotlib

matplotlib.use("svg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

GRID = 24
UNIT_W = 0.62  # inches per grid unit, across
UNIT_H = 0.42  # inches per grid unit, down
HOURS = 6
COLORS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22"]
BYTES = ("FreeStorageSpace", "FreeableMemory")


def series(label: str, period: int, threshold: float | None, fill: str) -> tuple[np.ndarray, np.ndarray]:
    """Six hours of made-up data for one line, the same for the same label."""
    rng = np.random.default_rng(zlib.crc32(label.encode()))
    n = HOURS * 3600 // period
    hours = np.linspace(-HOURS, 0, n)
    wave = np.sin(hours * rng.uniform(0.6, 1.6) + rng.uniform(0, 6.28))
    noise = rng.normal(0, 1, n)
    if threshold is None or threshold <= 0:
        # A count whose alarm fires on anything: nearly always zero.
        values = (rng.random(n) > 0.985).astype(float)
    elif fill == "below":
        values = threshold * (rng.uniform(2.2, 3.5) + 0.15 * wave + 0.05 * noise)
    else:
        values = threshold * (rng.uniform(0.3, 0.6) + 0.08 * wave + 0.05 * noise)
    return hours, np.clip(values, 0, None)


def byte_unit(threshold: float | None) -> tuple[str, float]:
    """The binary unit a byte metric is drawn in (the threshold's)."""
    return ("GiB", 1024 ** 3) if (threshold or 0) >= 1024 ** 3 else ("MiB", 1024 ** 2)


def render(body: dict, strip_prefix: str = "") -> str:
    """The SVG text of the dashboard `body`."""
    plt.rcdefaults()
    plt.rcParams.update({
        "svg.hashsalt": "idis-dashboard",
        "svg.fonttype": "none",
        "font.family": "DejaVu Sans",
        "font.size": 7,
        "axes.titlesize": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })
    widgets = body["widgets"]
    rows = max(w["y"] + w["height"] for w in widgets)
    width_in, height_in = GRID * UNIT_W, rows * UNIT_H
    fig = plt.figure(figsize=(width_in, height_in))
    pad_x, pad_y = 0.35 / width_in, 0.45 / height_in

    def box(w):
        """The widget's place in figure coordinates (left, bottom, width, height)."""
        left = w["x"] / GRID
        top = 1 - w["y"] / rows
        return left, top - w["height"] / rows, w["width"] / GRID, w["height"] / rows

    for w in widgets:
        left, bottom, wid, hei = box(w)
        props = w["properties"]
        if w["type"] == "text":
            fig.text(left + 0.004, bottom + hei / 2, props["markdown"].lstrip("# "), fontsize=11,
                     fontweight="bold", va="center")
            continue
        ax = fig.add_axes((left + pad_x * 1.6, bottom + pad_y * 1.25, wid - pad_x * 2.2, hei - pad_y * 2.4))
        ax.set_title(props["title"], loc="left")
        annotations = props.get("annotations", {}).get("horizontal", [])
        threshold = annotations[0]["value"] if annotations else None
        fill = annotations[0].get("fill", "above") if annotations else "above"
        # Byte metrics are drawn in the threshold's binary unit.
        unit, scale = byte_unit(threshold) if props["metrics"][0][1] in BYTES else ("", 1.0)
        if unit:
            ax.set_ylabel(unit)
        for i, line in enumerate(props["metrics"]):
            options = line[-1] if isinstance(line[-1], dict) else {}
            label = options.get("label", line[1])
            hours, values = series(label, options.get("period", props.get("period", 300)), threshold, fill)
            ax.plot(hours, values / scale, color=COLORS[i % len(COLORS)], linewidth=0.9,
                    label=label.removeprefix(strip_prefix))
        for a in annotations:
            ax.axhline(a["value"] / scale, color=a.get("color", "#d62728"), linestyle="--", linewidth=0.9)
            ax.text(-HOURS, a["value"] / scale, " " + a["label"], color=a.get("color", "#d62728"),
                    fontsize=6, va="bottom", ha="left")
        low, high = ax.get_ylim()
        ax.set_ylim(0, max(high, (threshold or 0) / scale * 1.25, 1))
        ax.set_xlim(-HOURS, 0)
        ax.set_xticks(range(-HOURS, 1, 2), [f"{h} h" if h else "now" for h in range(-HOURS, 1, 2)])
        ax.grid(axis="y", color="#dddddd", linewidth=0.5)
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.14), ncol=2, fontsize=5.5, frameon=False,
                  handlelength=1.2, columnspacing=0.8)
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return out.getvalue()
