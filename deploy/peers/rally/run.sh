#!/usr/bin/env bash
# Rally's NovaServers.boot_and_delete_server against a running Nimbus (`make up`).
#
# Rally lives in a virtualenv of its own (.peers/rally, rally-openstack from PyPI,
# pinned), never in the project's: its dependency tree (oslo.*, the legacy
# clients) is large and pins things the services do not want. Its database is a
# SQLite file beside it. The deployment is existing.json (an existing cloud,
# Rally's existing@openstack platform, in the schema Rally 0.10+ takes; only the
# demo user, no admin) with OS_AUTH_URL and OS_REGION_NAME laid over it when they are set,
# so the same command runs against a stack on other ports. Exits non-zero when
# the task has a failed iteration (`rally task sla-check`, failure_rate max 0).
# The HTML report is written to .peers/rally-report.html.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
WORK=${PEERS_DIR:-$REPO/.peers}
VENV=$WORK/rally
PIN=${RALLY_OPENSTACK_PIN:-rally-openstack==4.1.0}
NAME=nimbus-peer

mkdir -p "$WORK"
if ! [ -x "$VENV/bin/rally" ] || ! "$VENV/bin/pip" show -q rally-openstack >/dev/null 2>&1; then
  echo "peer-rally: installing $PIN into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "$PIN"
fi

conf=$WORK/rally.conf
cat >"$conf" <<CONF
[DEFAULT]
log_file = $WORK/rally.log
[database]
connection = sqlite:///$WORK/rally.sqlite
CONF
rally() { "$VENV/bin/rally" --config-file "$conf" "$@"; }

rally db ensure >/dev/null

deployment=$WORK/existing.json
"$VENV/bin/python" - "$HERE/existing.json" "$deployment" <<'PY'
import json, os, sys
spec = json.load(open(sys.argv[1]))
creds = spec["openstack"]
creds["auth_url"] = os.environ.get("OS_AUTH_URL", creds["auth_url"])
creds["region_name"] = os.environ.get("OS_REGION_NAME", creds["region_name"])
json.dump(spec, open(sys.argv[2], "w"), indent=2)
PY

# A deployment of this name from an earlier run may point at another stack.
rally deployment destroy "$NAME" >/dev/null 2>&1 || true
rally deployment create --name "$NAME" --filename "$deployment"
rally deployment check --deployment "$NAME"

log=$WORK/rally-task.out
rally task start "$HERE/boot_and_delete_server.yaml" --deployment "$NAME" | tee "$log"
task=$(sed -n 's/^Task \([0-9a-f-]\{36\}\): finished.*/\1/p' "$log" | tail -1)
if [ -z "$task" ]; then
  task=$(sed -n 's/.*Task  *\([0-9a-f-]\{36\}\).*/\1/p' "$log" | tail -1)
fi
[ -n "$task" ] || { echo "peer-rally: no task id in the output" >&2; exit 1; }
rally task report "$task" --out "$WORK/rally-report.html" >/dev/null || true
rally task sla-check "$task"
