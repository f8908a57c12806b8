"""The load test's chart and summary: ``python deploy/load/report.py OUT_DIR``.

Reads ``OUT_DIR/requests.csv`` (every request and timing of the run, written by
locustfile.py), draws ``OUT_DIR/chart.png`` and prints (and writes to
``OUT_DIR/summary.txt``) the summary. Runs in the load test's own virtualenv
(matplotlib; see requirements.txt).

The chart has time since the start on x, in bins of about a fortieth of the run
(at least 1 s), and three panels:
  1. throughput: HTTP requests/s and failures/s, and boots reaching ACTIVE per second;
  2. HTTP request latency p50/p95/p99 (ms, log scale) of the requests ending in the bin;
  3. boot to ACTIVE p50/p95/p99 (s) of the boots ending in the bin.
Percentiles are exact (numpy's linear interpolation over the raw times), not
locust's rounded buckets.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: write the file only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

TIMING = "TIMING"
BOOT = "boot to ACTIVE"
PCTS = (50, 95, 99)


@dataclass
class Row:
    t: float  # seconds since the start, at the end of the request
    type: str
    name: str
    ms: float
    error: str


def read(out: Path) -> tuple[float, list[Row]]:
    """The run's start (epoch seconds) and its rows."""
    with open(out / "requests.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    start = float(next(r["time"] for r in rows if r["type"] == "START"))
    return start, [Row(float(r["time"]) - start, r["type"], r["name"], float(r["ms"]), r["error"])
                   for r in rows if r["type"] != "START"]


def summary(rows: list[Row]) -> str:
    http = [r for r in rows if r.type != TIMING]
    boots = [r for r in rows if r.name == BOOT and not r.error]
    failed = [r for r in rows if r.error]
    span = max((r.t for r in rows), default=0.0)
    lines = [f"duration {span:.1f} s",
             f"requests {len(http)} ({len(http) / span if span else 0:.1f}/s), "
             f"failures {len(failed)}"]
    if http:
        p = np.percentile([r.ms for r in http], PCTS)
        lines.append("request latency " + ", ".join(f"p{q} {v:.0f} ms" for q, v in zip(PCTS, p)))
    lines.append(f"boots {len(boots)} ({len(boots) / span if span else 0:.2f}/s)")
    if boots:
        p = np.percentile([r.ms / 1000 for r in boots], PCTS)
        lines[-1] += ", boot to ACTIVE " + ", ".join(f"p{q} {v:.2f} s" for q, v in zip(PCTS, p))
    for name in sorted({r.name for r in rows if r.type == TIMING and r.name != BOOT}):
        ok = [r.ms / 1000 for r in rows if r.name == name and not r.error]
        if ok:
            lines.append(f"{name}: {len(ok)}, p50 {np.percentile(ok, 50):.2f} s, "
                         f"p95 {np.percentile(ok, 95):.2f} s")
    for (name, error), n in Counter((r.name, r.error) for r in failed).most_common(10):
        lines.append(f"  failed {n}x {name}: {error}")
    return "\n".join(lines)


def chart(rows: list[Row], path: Path, title: str) -> None:
    span = max((r.t for r in rows), default=1.0)
    width = max(1.0, round(span / 40))
    edges = np.arange(0.0, span + width, width)
    mids = edges[:-1] + width / 2

    def per_bin(selected: list[Row]) -> list[list[float]]:
        bins: list[list[float]] = [[] for _ in mids]
        for r in selected:
            bins[min(int(r.t // width), len(mids) - 1)].append(r.ms)
        return bins

    def pct_lines(ax, bins: list[list[float]], scale: float, unit: str, loc: str) -> None:
        for q, style in zip(PCTS, ("-", "--", ":")):
            ys = [np.percentile(b, q) / scale if b else np.nan for b in bins]
            ax.plot(mids, ys, style, marker=".", label=f"p{q}")
        ax.set_ylabel(unit)
        ax.legend(loc=loc, fontsize="small")
        ax.grid(True, alpha=0.3)

    http = [r for r in rows if r.type != TIMING]
    boots = [r for r in rows if r.name == BOOT and not r.error]
    fig, (a1, a2, a3) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    fig.suptitle(title)

    a1.plot(mids, [len(b) / width for b in per_bin(http)], label="requests/s")
    a1.plot(mids, [len(b) / width for b in per_bin([r for r in rows if r.error])],
            color="red", label="failures/s")
    a1.set_ylabel("per second")
    a1.set_ylim(bottom=0)
    a1.set_title("Throughput", fontsize="medium")
    a1b = a1.twinx()
    a1b.bar(mids, [len(b) / width for b in per_bin(boots)], width=width * 0.8, alpha=0.25,
            color="green", label="boots ACTIVE/s")
    a1b.set_ylabel("boots/s")
    h1, l1 = a1.get_legend_handles_labels()
    h2, l2 = a1b.get_legend_handles_labels()
    a1.legend(h1 + h2, l1 + l2, loc="upper left", fontsize="small")
    a1.grid(True, alpha=0.3)

    a2.set_yscale("log")
    pct_lines(a2, per_bin(http), 1.0, "ms (log)", "upper right")
    a2.set_title("HTTP request latency (all requests, polls included)", fontsize="medium")
    pct_lines(a3, per_bin(boots), 1000.0, "seconds", "lower right")
    a3.set_title("Boot to ACTIVE (POST /servers until GET shows ACTIVE)", fontsize="medium")
    a3.set_ylim(bottom=0)
    a3.set_xlabel(f"time since start (s), {width:g} s bins")
    a3.set_xlim(0, span)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    out = Path(sys.argv[1])
    _, rows = read(out)
    text = summary(rows)
    chart(rows, out / "chart.png", f"Nimbus load test ({out.name})")
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    print(f"report: {out / 'report.html'}\nchart:  {out / 'chart.png'}\n"
          f"csv:    {out / 'stats_stats.csv'}, {out / 'stats_stats_history.csv'}, "
          f"{out / 'requests.csv'}")


if __name__ == "__main__":
    main()
