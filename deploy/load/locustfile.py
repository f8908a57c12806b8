"""The load test's users (``make load``, deploy/load/run.sh): locust drives a cloud
through its public API, as a user would.

Each simulated user gets a token (identity v3, password method), takes the compute
endpoint from the token's catalog, and then runs ``LOAD_ITERATIONS`` times:

    boot (POST /servers) -> wait ACTIVE (poll GET /servers/{id}) -> list (GET
    /servers/detail) -> show (GET /servers/{id}) -> action (reboot, or os-stop then
    os-start) -> wait ACTIVE -> delete -> wait until gone (GET answers 404)

then stops; when every user has stopped, the run ends. Polls are counted under
their own request names (``... (poll)``) so that they do not blur the latency of
the requests a user makes on purpose. Three timings that are not one request
are reported as requests of type ``TIMING``: ``boot to ACTIVE`` (from sending the
create to seeing ACTIVE), ``<action> to ACTIVE`` and ``delete to gone``.

A refused request (a 413 or 429 over a rate limit or quota, a 409, a 5xx) is a
failure whose message is the fault body's (``413 overLimit: ... Retry-After 7``);
the iteration then ends (deleting what it made) and the next one starts.

Nothing is left behind: each iteration deletes its server and waits until it is
gone; a user stopped mid-iteration deletes what it still holds (``on_stop``); and
when the run stops, every server whose name carries this run's prefix is deleted
and waited for (``_sweep``), which also catches a create whose answer was lost.

Every request and timing is also kept in ``$LOAD_OUT/requests.csv`` (time, type,
name, milliseconds, error), written when the run stops: locust's own CSV rounds
its percentiles and mixes the timings into its "Aggregated" row, so the chart and
the summary (deploy/load/report.py) are computed from this log instead.

Configuration (environment; see run.sh for the run's size):
    OS_AUTH_URL (http://127.0.0.1:5000/v3), OS_USERNAME, OS_PASSWORD,
    OS_PROJECT_NAME (demo, demo, demo), OS_USER_DOMAIN_ID / OS_PROJECT_DOMAIN_ID
    (default), OS_INTERFACE (public), OS_REGION_NAME (any)
    LOAD_ITERATIONS (10 per user), LOAD_FLAVOR (100, standard.xsmall),
    LOAD_IMAGE (the first ACTIVE image listed), LOAD_ACTION (reboot | stop-start),
    LOAD_THINK_S (1.0: pause between iterations, 0.5x to 1.5x at random),
    LOAD_POLL_S (0.5), LOAD_WAIT_TIMEOUT_S (120), LOAD_PROGRESS_S (5),
    LOAD_OUT (where requests.csv goes, default .)
"""

from __future__ import annotations

import csv
import itertools
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import gevent
import requests
from locust import HttpUser, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.stats import CSV_STATS_INTERVAL_SEC

AUTH_URL = os.environ.get("OS_AUTH_URL", "http://127.0.0.1:5000/v3").rstrip("/")
if not AUTH_URL.endswith("/v3"):
    AUTH_URL += "/v3"
CREDENTIALS = {
    "user": os.environ.get("OS_USERNAME", "demo"),
    "password": os.environ.get("OS_PASSWORD", "demo"),
    "project": os.environ.get("OS_PROJECT_NAME", "demo"),
    "user_domain": os.environ.get("OS_USER_DOMAIN_ID", "default"),
    "project_domain": os.environ.get("OS_PROJECT_DOMAIN_ID", "default"),
}
INTERFACE = os.environ.get("OS_INTERFACE", "public")
REGION = os.environ.get("OS_REGION_NAME", "")
ITERATIONS = int(os.environ.get("LOAD_ITERATIONS", "10"))
FLAVOR = os.environ.get("LOAD_FLAVOR", "100")
IMAGE = os.environ.get("LOAD_IMAGE", "")
ACTION = os.environ.get("LOAD_ACTION", "reboot")
THINK_S = float(os.environ.get("LOAD_THINK_S", "1.0"))
POLL_S = float(os.environ.get("LOAD_POLL_S", "0.5"))
WAIT_TIMEOUT_S = float(os.environ.get("LOAD_WAIT_TIMEOUT_S", "120"))
PROGRESS_S = float(os.environ.get("LOAD_PROGRESS_S", "5"))
OUT = Path(os.environ.get("LOAD_OUT", "."))

if ACTION not in ("reboot", "stop-start"):
    sys.exit(f"LOAD_ACTION must be reboot or stop-start, not {ACTION!r}")

RUN = f"load-{uuid.uuid4().hex[:8]}"
"""This run's server name prefix: what the final sweep deletes."""

_USER_NUMBERS = itertools.count(1)
TIMING = "TIMING"
LOG: list[tuple[float, str, str, float, str]] = []
"""Every request and timing of the current run: (end time, type, name, ms, error)."""
STARTED = [0.0]


def token_and_compute(session: Any, name: str | None = None) -> tuple[str, str]:
    """A project-scoped v3 token and the compute endpoint its catalog names.
    ``session``: the user's locust client (counted, under ``name``) or requests."""
    c = CREDENTIALS
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": c["user"], "domain": {"id": c["user_domain"]}, "password": c["password"]}}},
        "scope": {"project": {"name": c["project"], "domain": {"id": c["project_domain"]}}}}}
    kw = {"name": name, "catch_response": True} if name else {}
    with session.post(f"{AUTH_URL}/auth/tokens", json=body, **kw) as r:
        if r.status_code != 201:
            reason = fault(r)
            if name:
                r.failure(reason)
            raise RuntimeError(f"cannot get a token from {AUTH_URL}: {reason}")
        for entry in r.json()["token"].get("catalog", []):
            if entry["type"] != "compute":
                continue
            for ep in entry["endpoints"]:
                if ep["interface"] == INTERFACE and (not REGION or ep.get("region") == REGION):
                    return r.headers["X-Subject-Token"], ep["url"].rstrip("/")
        reason = f"no {INTERFACE} compute endpoint{' in ' + REGION if REGION else ''} in the catalog"
        if name:
            r.failure(reason)
        raise RuntimeError(reason)


def fault(r: Any) -> str:
    """Why a request was refused, from a Nova fault body (``{"overLimit": {"code",
    "message"}}``) and ``Retry-After``; a connection error's text when nothing came."""
    if r.status_code == 0:
        return f"no answer: {getattr(r, 'error', None)!r}"
    try:
        kind, detail = next(iter(r.json().items()))
        text = f"{r.status_code} {kind}: {detail.get('message', detail)}"
    except Exception:  # not a fault body (a proxy's page, an empty answer)
        text = f"{r.status_code} {r.reason}: {r.text[:200]}"
    if r.headers.get("Retry-After"):
        text += f" (Retry-After {r.headers['Retry-After']} s)"
    return text


class Refused(Exception):
    """A request failed (already counted); the iteration stops here."""


class CloudUser(HttpUser):
    host = AUTH_URL  # every request below uses an absolute URL

    def wait_time(self) -> float:
        return THINK_S * random.uniform(0.5, 1.5)

    def on_start(self) -> None:
        self.number = next(_USER_NUMBERS)
        self.done = 0
        self.mine: set[str] = set()  # servers made and not yet seen gone
        self.ready = False  # (locust logs a traceback for anything on_start raises)
        try:
            self.token, self.compute = token_and_compute(self.client, "POST /v3/auth/tokens")
            self.image = IMAGE or self._first_active_image()
            self.ready = True
        except (RuntimeError, Refused) as exc:  # counted already: say why, then stop
            print(f"load: user {self.number} stops: {exc}", file=sys.stderr, flush=True)

    def on_stop(self) -> None:
        self._delete_mine()

    @task
    def server_life(self) -> None:
        if self.done >= ITERATIONS or not self.ready:
            raise StopUser()
        self.done += 1
        try:
            sid = self._boot()
            self._call("GET", "/servers/detail", "GET /servers/detail")
            self._call("GET", f"/servers/{sid}", "GET /servers/[id]")
            self._action(sid)
        except Refused:
            pass
        finally:
            self._delete_mine()  # this iteration's server, however far it got

    # -- steps ---------------------------------------------------------------------

    def _boot(self) -> str:
        start = time.monotonic()
        body = {"server": {"name": f"{RUN}-u{self.number}-{self.done}",
                           "imageRef": self.image, "flavorRef": FLAVOR}}
        sid = self._call("POST", "/servers", "POST /servers", json=body, ok=(202,))["server"]["id"]
        self.mine.add(sid)
        self._wait(sid, "ACTIVE", "boot to ACTIVE", start)
        return sid

    def _action(self, sid: str) -> None:
        steps = ([("reboot", {"reboot": {"type": "SOFT"}}, "ACTIVE")] if ACTION == "reboot" else
                 [("os-stop", {"os-stop": None}, "SHUTOFF"), ("os-start", {"os-start": None}, "ACTIVE")])
        for name, body, target in steps:
            start = time.monotonic()
            self._call("POST", f"/servers/{sid}/action", f"POST /servers/[id]/action ({name})",
                       json=body, ok=(202,))
            self._wait(sid, target, f"{name} to {target}", start)

    def _delete(self, sid: str) -> None:
        start = time.monotonic()
        self._call("DELETE", f"/servers/{sid}", "DELETE /servers/[id]", ok=(204, 404))
        self._wait(sid, None, "delete to gone", start)
        self.mine.discard(sid)

    def _delete_mine(self) -> None:
        for sid in list(self.mine):
            try:
                self._delete(sid)
            except Refused:
                pass  # counted; it stays in self.mine for on_stop, then the final sweep

    def _first_active_image(self) -> str:
        images = self._call("GET", "/images/detail", "GET /images/detail")["images"]
        active = [i["id"] for i in images if i.get("status") == "ACTIVE"]
        if not active:
            raise RuntimeError("the cloud lists no ACTIVE image: set LOAD_IMAGE")
        return active[0]

    # -- plumbing ------------------------------------------------------------------

    def _call(self, method: str, path: str, name: str, *, json: Any = None,
              ok: tuple[int, ...] = (200,)) -> Any:
        """One counted request to the compute endpoint; its JSON body (None for none).
        Any other status is a failure with the fault's message, and raises Refused."""
        with self.client.request(method, self.compute + path, name=name, json=json,
                                 headers={"X-Auth-Token": self.token},
                                 catch_response=True) as r:
            if r.status_code not in ok:
                r.failure(fault(r))
                raise Refused(name)
            r.success()
            return r.json() if r.content and r.status_code != 404 else None

    def _wait(self, sid: str, target: str | None, timing: str, start: float) -> None:
        """Poll the server until its status is ``target`` (None: until it is gone),
        then report ``timing`` from ``start``. ERROR, or no change within
        LOAD_WAIT_TIMEOUT_S, is that timing's failure."""
        while True:
            server = self._call("GET", f"/servers/{sid}", "GET /servers/[id] (poll)", ok=(200, 404))
            status = server["server"]["status"] if server else None
            if status == target or status == "ERROR" or time.monotonic() - start > WAIT_TIMEOUT_S:
                break
            gevent.sleep(POLL_S)
        error = None
        if status != target:
            error = RuntimeError(f"{status or 'gone'} after {time.monotonic() - start:.1f} s, "
                                 f"waiting for {target or 'gone'}")
        events.request.fire(request_type=TIMING, name=timing, response_length=0,
                            response_time=(time.monotonic() - start) * 1000, exception=error,
                            context={}, response=None)
        if error:
            raise Refused(timing)




# -- the run's events -----------------------------------------------------------------

@events.request.add_listener
def _log(request_type: str, name: str, response_time: float, exception: Any = None,
         **_: Any) -> None:
    LOG.append((time.time(), request_type, name, response_time,
                str(exception or "").replace("\n", " ")))


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    LOG.clear()
    STARTED[0] = time.time()
    print(f"load: {RUN} against {AUTH_URL} as {CREDENTIALS['user']}/{CREDENTIALS['project']}, "
          f"{ITERATIONS} iterations a user, flavor {FLAVOR}, action {ACTION}", flush=True)
    gevent.spawn(_progress, environment)


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: Any) -> None:
    """Once every user is running, end the run when the last of them has stopped."""
    runner = _ENV[0].runner
    headless = getattr(_ENV[0].parsed_options, "headless", True)

    def watch() -> None:
        runner.user_greenlets.join()
        # Locust's CSV writer snapshots the stats every CSV_STATS_INTERVAL_SEC and
        # not at the end: one more period lets it record the last requests. (Its
        # timer, set earlier, fires before this one, and it writes without yielding.)
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.1)
        runner.quit() if headless else runner.stop()
    gevent.spawn(watch)


_ENV: list[Environment] = []


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    _ENV[:] = [environment]


@events.test_stop.add_listener
def _stop(environment: Environment, **_: Any) -> None:
    _sweep()
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "requests.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "type", "name", "ms", "error"])
        w.writerow([f"{STARTED[0]:.3f}", "START", "", "", ""])
        w.writerows([f"{t:.3f}", typ, name, f"{ms:.1f}", err] for t, typ, name, ms, err in LOG)


def _progress(environment: Environment) -> None:
    """One line every LOAD_PROGRESS_S: users, requests, failures, boots so far."""
    runner, last = environment.runner, 0
    while runner.state not in ("stopped", "cleanup"):
        gevent.sleep(PROGRESS_S)
        rows = list(LOG)
        http = [r for r in rows if r[1] != TIMING]
        boots = sorted(r[3] / 1000 for r in rows if r[2] == "boot to ACTIVE" and not r[4])
        fails = sum(1 for r in rows if r[4])
        pct = (f", boot to ACTIVE p50 {boots[len(boots) // 2]:.2f} s "
               f"p95 {boots[int(len(boots) * 0.95)]:.2f} s" if boots else "")
        print(f"[{time.time() - STARTED[0]:5.0f} s] users {runner.user_count}, requests "
              f"{len(http)} ({(len(http) - last) / PROGRESS_S:.1f}/s), failures {fails}, "
              f"boots {len(boots)}{pct}", flush=True)
        last = len(http)


def _sweep() -> None:
    """Delete every server of this run still there (on its own token, uncounted)
    and wait until they are gone: nothing is left behind, however the run stopped."""
    try:
        s = requests.Session()
        token, compute = token_and_compute(s)
        s.headers["X-Auth-Token"] = token
        left = [v["id"] for v in s.get(f"{compute}/servers").json()["servers"]
                if v["name"].startswith(RUN + "-")]
        for sid in left:
            s.delete(f"{compute}/servers/{sid}")
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        while left and time.monotonic() < deadline:
            left = [sid for sid in left if s.get(f"{compute}/servers/{sid}").status_code != 404]
            if left:
                time.sleep(POLL_S)
        if left:
            print(f"load: {len(left)} server(s) of {RUN} still there: {left}", file=sys.stderr)
    except Exception as exc:  # the cloud is gone or refuses: say so, the run still reports
        print(f"load: could not check for servers left by {RUN}: {exc!r}", file=sys.stderr)
