"""``make load`` (deploy/load/run.sh) run briefly against the session's cloud: locust
in its own virtualenv (made on first use, about 20 s, then reused), a project of
the test's own, two users and a few iterations.

A clean run must produce the report, the chart and locust's CSV, count every boot
with no failure and leave no server behind; a run that meets a rate limit must
count the refusal as a failure with the fault's reason and still report.
"""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
from pathlib import Path

from tests.e2e.client import Cloud
from tests.e2e.projects import manage, new_project

REPO = Path(__file__).resolve().parents[2]
CREATES = r"^/servers(?:\.json|\.xml)?(?:\?.*)?$"  # the default rule's regex (creates only)


async def run_load(cloud: Cloud, project: str, out: Path, users: int, iterations: int
                   ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "LOAD_"))}
    env.update(OS_AUTH_URL=f"{cloud.identity_url}/v3", OS_USERNAME=project, OS_PASSWORD="pw",
               OS_PROJECT_NAME=project, LOAD_USERS=str(users), LOAD_SPAWN_RATE=str(users),
               LOAD_ITERATIONS=str(iterations), LOAD_THINK_S="0.2", LOAD_POLL_S="0.2",
               LOAD_RUN_TIME="120s", LOAD_OUT=str(out))
    return await asyncio.to_thread(subprocess.run, ["deploy/load/run.sh"], cwd=REPO, env=env,
                                   capture_output=True, text=True, timeout=600)


def stats_rows(out: Path, name: str) -> dict[str, dict[str, str]]:
    with open(out / f"stats_{name}.csv", newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


async def test_load_run_reports_every_boot_and_leaves_nothing(cloud: Cloud, tmp_path: Path):
    api, project = await new_project(cloud)
    out = tmp_path / "load"
    result = await run_load(cloud, project, out, users=2, iterations=3)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "boot to ACTIVE" in (out / "report.html").read_text()
    assert (out / "stats_stats_history.csv").stat().st_size > 0
    stats = stats_rows(out, "stats")
    assert (stats["boot to ACTIVE"]["Request Count"], stats["boot to ACTIVE"]["Failure Count"]) \
        == ("6", "0")
    assert stats["POST /servers"]["Request Count"] == "6"
    assert stats["DELETE /servers/[id]"]["Request Count"] == "6"
    assert stats["POST /servers/[id]/action (reboot)"]["Request Count"] == "6"
    assert stats["Aggregated"]["Failure Count"] == "0"
    assert "boots 6 (" in result.stdout and "failures 0" in result.stdout
    assert (await api.get("/servers")).json["servers"] == []


async def test_a_refused_boot_is_a_failure_with_its_reason(cloud: Cloud, tmp_path: Path):
    api, project = await new_project(cloud)
    await manage(cloud, "set-rate-limit", project, "POST", "*/servers", CREATES, "1", "DAY")
    out = tmp_path / "load"
    result = await run_load(cloud, project, out, users=1, iterations=2)
    # locust's exit code for a run with failures; the report is made all the same.
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]

    assert (out / "chart.png").exists() and (out / "report.html").exists()
    failures = stats_rows(out, "failures")
    assert failures["POST /servers"]["Occurrences"] == "1"
    # (locust shows the failure as the repr of its CatchResponseError)
    assert "'413 overLimit: This request was rate-limited. (Retry-After " \
        in failures["POST /servers"]["Error"]
    stats = stats_rows(out, "stats")
    assert (stats["boot to ACTIVE"]["Request Count"], stats["boot to ACTIVE"]["Failure Count"]) \
        == ("1", "0")
    assert "failed 1x POST /servers: 413 overLimit" in result.stdout
    assert (await api.get("/servers")).json["servers"] == []
