"""The bench's report: each Nimbus figure beside its ceiling and its target.

Two ratios per row, both against the ceiling named in the row:

* **× CPU**: Nimbus's CPU-ms per operation (services + PostgreSQL + RabbitMQ)
  over the ceiling's (its processes + PostgreSQL + RabbitMQ). 1.0 is as cheap
  as the least program of the same parts; 3.0 costs three times that. This is
  the figure that holds on a noisy machine.
* **× rate**: Nimbus's operations per second over the ceiling's, both driven
  the same way on the same machine in the same run.

The targets are issue 14's point 3; "met" is said of this run only, and
nothing here fails a test.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.procs import Measured

KINDS = ("services", "postgresql", "rabbitmq")


@dataclass(frozen=True)
class Row:
    key: str
    ceiling: str | None
    figure: Callable[[Measured], str]
    target: str = ""
    met: Callable[[Measured, dict[str, Measured]], bool] | None = None
    label: str = ""
    """Shown when the row was not measured (a measured row shows its own label)."""
    rate_ratio: bool = True
    """Whether ops/s compare with the ceiling's (not for a scheduling decision)."""


def _rate(unit: str) -> Callable[[Measured], str]:
    return lambda m: f"{m.ops_per_s:,.0f} {unit}/s"


def _latency(m: Measured) -> str:
    return f"{m.ops_per_s:,.0f} req/s; p50 {m.extra['latency_p50_ms']:.1f} ms"


def _churn(m: Measured) -> str:
    e = m.extra
    return (f"{m.ops_per_s:.0f} cycles/s; boot p50 {e['boot_p50_s']:.2f} s p99 "
            f"{e['boot_p99_s']:.2f} s; cycle p50 {e['cycle_p50_s']:.2f} s "
            f"p99 {e['cycle_p99_s']:.2f} s")


def _sched(m: Measured) -> str:
    e = m.extra
    return (f"choosing the host {e['choice_cpu_ms']:.2f} CPU-ms; the whole build in the "
            f"scheduler {e['scheduler_cpu_ms_per_decision']:.2f} CPU-ms, handled in "
            f"{e['handled_ms_mean']:.1f} ms mean ({e['decisions']:.0f} builds)")


def _xml_vs_json(json_key: str) -> Callable[[Measured, dict[str, Measured]], bool]:
    return lambda m, all_: json_key in all_ and m.cpu_ms() <= 1.5 * all_[json_key].cpu_ms()


ROWS = [
    Row("ceiling_http", None, _rate("req")),
    Row("ceiling_select", None, _rate("req")),
    Row("ceiling_rpc", None, _rate("call")),
    Row("ceiling_pipeline", None, _rate("op")),
    Row("get_server", "ceiling_select", _latency, "≥ 0.8× (b) per core (CPU ratio ≤ 1.25)",
        lambda m, a: m.cpu_ms() <= 1.25 * a["ceiling_select"].cpu_ms()),
    Row("servers_100", "ceiling_select", _latency),
    Row("servers_100_xml", "ceiling_select", _latency),
    Row("detail_100", "ceiling_select", _latency),
    Row("detail_100_xml", "ceiling_select", _latency, "CPU ≤ 1.5× JSON detail",
        _xml_vs_json("detail_100")),
    Row("detail_1000_at_10k", "ceiling_select", _latency,
        label="detail limit=1000, 10,000 servers present"),
    Row("detail_1000_at_big", "ceiling_select", _latency, "< 60 ms (at 100,000)",
        lambda m, a: m.extra["latency_p50_ms"] < 60,
        label="detail limit=1000, BENCH_SERVERS present"),
    Row("boots_at_1k", "ceiling_pipeline", _rate("boot"), "≥ 250 boots/s at ≤ 7 CPU-ms",
        lambda m, a: m.ops_per_s >= 250 and m.cpu_ms() <= 7),
    Row("boots_at_big", "ceiling_pipeline", _rate("boot"), "rate within 10 % of at 1,000",
        lambda m, a: "boots_at_1k" in a and m.ops_per_s >= 0.9 * a["boots_at_1k"].ops_per_s,
        label="create→ACTIVE, BENCH_SERVERS present"),
    Row("churn", "ceiling_pipeline", _churn, "≥ 120 cycles/s, boot p50 < 0.25 s",
        lambda m, a: m.ops_per_s >= 120 and m.extra["boot_p50_s"] < 0.25),
    # The decision is the choice of a host (its CPU measured by the scheduler itself);
    # the whole build in the scheduler is shown beside it and compared with (c).
    Row("boots_at_1k_scheduler", "ceiling_rpc", _sched, "≤ 2 CPU-ms per decision at 1,000 hosts",
        lambda m, a: m.extra["choice_cpu_ms"] <= 2, rate_ratio=False),
]


def _split(m: Measured) -> str:
    per = m.usage.as_dict()["cpu_ms_per_op"]
    own = [f"{per.get('ceiling', 0):.2f}"] if "ceiling" in per else []
    parts = own + [f"{per.get(k, 0):.2f}" for k in KINDS if k in per]
    return " + ".join(parts) + f" = **{m.cpu_ms():.2f}**"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "–"


def markdown(results: dict[str, Measured], meta: dict[str, Any]) -> str:
    intro = (f"{meta['machine']}; {meta['hosts']:,} compute hosts; {meta['api_workers']} API "
             f"processes; {meta['scale']} scale; big population {meta['big']:,} servers.")
    legend = ("CPU-ms per op, read from /proc: the ceiling's own processes or Nimbus's services "
              "+ PostgreSQL + RabbitMQ = total; the load generator (the bench's own process) "
              "apart. × CPU: Nimbus total ÷ the named ceiling's total (1 = as cheap as the "
              "ceiling, lower is better). × rate: Nimbus ops/s ÷ the ceiling's (higher is "
              "better).")
    header = ("| measure | figure | CPU-ms per op (own + PG + MQ = total) | load gen ms/op "
              "| vs ceiling | × CPU | × rate | target (issue 14) | met |")
    stopped = ([f"**The run stopped early** ({meta['error']}): rows after that point "
                "were not measured.", ""] if meta.get("error") else [])
    lines = [f"# make bench, {meta['when']}", "", intro, "", *stopped, legend, "", header,
             "|---|---|---|---|---|---|---|---|---|"]
    for row in ROWS:
        m = results.get(row.key)
        label = m.label if m else (row.label or row.key)
        if m is None:
            lines.append(f"| {label} | not measured | | | | | | {row.target} | – |")
            continue
        ceiling = results.get(row.ceiling) if row.ceiling else None
        cpu = _split(m) if row.key != "boots_at_1k_scheduler" else \
            f"{m.extra['scheduler_cpu_ms_per_decision']:.2f} (scheduler)"
        client = f"{m.usage.per_op_ms(['client']):.2f}"
        vs = ratio_cpu = ratio_rate = ""
        if ceiling is not None:
            vs = ceiling.label.split(" ")[0]
            ours = (m.extra["scheduler_cpu_ms_per_decision"] if row.key.endswith("_scheduler")
                    else m.cpu_ms())
            ratio_cpu = _ratio(ours, ceiling.cpu_ms())
            ratio_rate = _ratio(m.ops_per_s, ceiling.ops_per_s) if row.rate_ratio else "–"
        met = "–" if row.met is None else ("met" if row.met(m, results) else "**not met**")
        lines.append(f"| {label} | {row.figure(m)} | {cpu} | {client} | {vs} | {ratio_cpu} "
                     f"| {ratio_rate} | {row.target} | {met} |")
    memory = meta.get("memory") or {}
    title = (f"Memory of each process group at {meta.get('memory_at', 0):,} servers "
             "(target: no service at 100,000 "
             "above 150 MB RSS). PSS counts shared pages once (PostgreSQL's RSS counts its "
             "shared buffers in every backend):")
    lines += ["", title, "", "| process | processes | RSS MB | PSS MB | met |",
              "|---|---|---|---|---|"]
    if not memory:
        lines.append("| not measured | | | | |")
    for name, mem in sorted(memory.items()):
        met = "–" if mem["kind"] != "services" else (
            "met" if mem["rss_mb"] <= 150 else "**not met**")
        lines.append(f"| {name} | {mem['processes']} | {mem['rss_mb']:.0f} | "
                     f"{mem['pss_mb']:.0f} | {met} |")
    if meta.get("populations"):
        lines += ["", "Populations: " + "; ".join(
            f"{p['servers']:,} servers ({p['booted']:,} booted in {p['seconds'] / 60:.1f} min)"
            for p in meta["populations"])]
    lines += ["", f"Whole run: {meta.get('elapsed_min', 0):.1f} min.", ""]
    return "\n".join(lines)


def chart(results: dict[str, Measured], path: Path) -> None:
    """Bars of × CPU and × rate of every Nimbus row against its ceiling."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in ROWS if r.ceiling and r.key in results and r.ceiling in results]
    labels = [f"{results[r.key].label} vs {results[r.ceiling].label.split(' ')[0]}"
              for r in rows]
    cpu = [(results[r.key].extra["scheduler_cpu_ms_per_decision"] if r.key.endswith("_scheduler")
            else results[r.key].cpu_ms()) / results[r.ceiling].cpu_ms() for r in rows]
    rate = [results[r.key].ops_per_s / results[r.ceiling].ops_per_s if r.rate_ratio
            else float("nan") for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.45 * len(rows) + 1.8), sharey=True)
    y = range(len(rows))
    left.barh(y, cpu, color="tab:red")
    left.set_xscale("log")
    left.axvline(1, color="black", lw=0.8)
    left.set_xlabel("CPU per op ÷ ceiling's (log; 1 = as cheap as the ceiling)")
    left.set_yticks(list(y), labels)
    left.invert_yaxis()
    right.barh(y, rate, color="tab:blue")
    right.set_xscale("log")
    right.axvline(1, color="black", lw=0.8)
    right.set_xlabel("ops/s ÷ ceiling's (log; 1 = as fast as the ceiling)")
    fig.suptitle("Nimbus against this machine's ceilings (make bench)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict[str, Measured], meta: dict[str, Any], root: Path) -> Path:
    """bench.md, bench.json and bench.png under ``root/<UTC time>/``; ``root/latest``
    points at it. Returns that directory."""
    out = root / meta["stamp"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.md").write_text(markdown(results, meta))
    (out / "bench.json").write_text(json.dumps(
        {"meta": meta, "results": {k: m.as_dict() for k, m in results.items()}}, indent=2))
    chart(results, out / "bench.png")
    latest = root / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(out.name)
    return out


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def stamp() -> tuple[str, str]:
    now = datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y-%m-%d %H:%M UTC")
