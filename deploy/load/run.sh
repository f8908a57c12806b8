#!/usr/bin/env bash
# make load: a load test through the gateway (see locustfile.py for what each user
# does, report.py for the chart and summary). Headless by default; LOAD_UI=1 opens
# locust's web UI on http://127.0.0.1:${LOAD_UI_PORT:-8089} instead.
#
# The cloud: OS_AUTH_URL (default http://127.0.0.1:5000/v3), OS_USERNAME,
# OS_PASSWORD, OS_PROJECT_NAME (default demo/demo/demo); endpoints come from the
# token's catalog. The size: LOAD_USERS (10) users, started LOAD_SPAWN_RATE (2) a
# second, each doing LOAD_ITERATIONS (10) boot-to-delete iterations, the run cut at
# LOAD_RUN_TIME (10m) whatever happens. Output: LOAD_OUT (build/load/<UTC time>/).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${LOAD_VENV:-.venv-load}
REQS=deploy/load/requirements.txt
# One installer at a time (make load and the e2e test may share the venv).
exec 9>"${VENV}.lock"
flock 9
if [[ ! -x $VENV/bin/locust || $REQS -nt $VENV/.installed ]]; then
  echo "load: installing locust and matplotlib into $VENV (about 20 s, once)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # (grep: this machine's pip configuration warns about every missing index folder)
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  touch "$VENV/.installed"
fi
flock -u 9

OUT=${LOAD_OUT:-build/load/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
args=(-f deploy/load/locustfile.py
      -u "${LOAD_USERS:-10}" -r "${LOAD_SPAWN_RATE:-2}"
      --csv "$OUT/stats" --csv-full-history --html "$OUT/report.html"
      --stop-timeout 60)
if [[ ${LOAD_UI:-0} == 1 ]]; then
  args+=(--web-host 127.0.0.1 --web-port "${LOAD_UI_PORT:-8089}")
  echo "load: web UI on http://127.0.0.1:${LOAD_UI_PORT:-8089} (Ctrl-C to finish and report)"
else
  args+=(--headless --only-summary -t "${LOAD_RUN_TIME:-10m}")
fi

rc=0
LOAD_OUT="$OUT" "$VENV/bin/locust" "${args[@]}" || rc=$?
echo
"$VENV/bin/python" deploy/load/report.py "$OUT"
exit $rc
