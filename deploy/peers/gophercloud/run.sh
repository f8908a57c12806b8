#!/usr/bin/env bash
# gophercloud's compute v2 acceptance tests against a running Nimbus (`make up`).
#
# The tests are Debian's: golang-github-gophercloud-gophercloud-dev ships
# gophercloud's source with its acceptance/ tree under /usr/share/gocode, and
# golang-go builds it in GOPATH mode against Debian's other Go packages (no
# module download). Both are installed with apt-get when missing (root only).
# The test binary is built once into .peers/gophercloud/.
#
# Only the tests of tests.txt run (the ones that apply to this API; the file
# says why the others do not), each as the user it needs: "demo" lines as the
# demo user, "admin" lines as admin (gophercloud's RequireAdmin looks at
# OS_USERNAME). OS_AUTH_URL and OS_REGION_NAME may name another stack; the
# image, flavors, network and pool default to what `make up` seeds. Run it on a
# stack started with NIMBUS_API_STATUS_CODES=nova: gophercloud accepts only
# Nova's codes for keypair, security group and volume creates and unrescue.
# Exits non-zero when a listed test fails; the log is .peers/gophercloud/*.log.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
WORK=${PEERS_DIR:-$REPO/.peers}/gophercloud
SRC=/usr/share/gocode/src/github.com/gophercloud/gophercloud
BIN=$WORK/computev2.test
mkdir -p "$WORK"

if ! command -v go >/dev/null || ! [ -d "$SRC/acceptance" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "peer-gophercloud: needs golang-go and golang-github-gophercloud-gophercloud-dev" \
         "(sudo apt-get install ...)" >&2
    exit 1
  fi
  apt-get install -y -q golang-go golang-github-gophercloud-gophercloud-dev >/dev/null
fi
if ! [ -x "$BIN" ] || [ "$SRC/go.mod" -nt "$BIN" ]; then
  echo "peer-gophercloud: building the acceptance tests of $(dpkg-query -W -f '${Version}' \
golang-github-gophercloud-gophercloud-dev 2>/dev/null || echo gophercloud)"
  GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$WORK/gocache" GOFLAGS= \
    go test -c -tags "acceptance compute" -o "$BIN" \
    github.com/gophercloud/gophercloud/acceptance/openstack/compute/v2
fi

export OS_AUTH_URL=${OS_AUTH_URL:-http://127.0.0.1:5000/v3}
export OS_REGION_NAME=${OS_REGION_NAME:-region-a}
export OS_DOMAIN_ID=${OS_DOMAIN_ID:-default}
export OS_IMAGE_ID=${OS_IMAGE_ID:-2f1e4f8e-4f5e-4c53-9a59-3b3c3c6f0c11}   # CirrOS 0.3.1
export OS_FLAVOR_ID=${OS_FLAVOR_ID:-100}                                 # standard.xsmall
export OS_FLAVOR_ID_RESIZE=${OS_FLAVOR_ID_RESIZE:-101}                   # (required, unused)
export OS_NETWORK_NAME=${OS_NETWORK_NAME:-private}                       # each project's
export OS_POOL_NAME=${OS_POOL_NAME:-public}                              # the floating pool
export OS_EXTGW_ID=${OS_EXTGW_ID:-unused}                                # (required, unused)
# gophercloud reads one domain for the user and the project (OS_DOMAIN_ID).
unset OS_USER_DOMAIN_ID OS_PROJECT_DOMAIN_ID OS_USER_DOMAIN_NAME OS_PROJECT_DOMAIN_NAME \
      OS_TENANT_ID OS_TENANT_NAME OS_PROJECT_ID OS_CLOUD

failed=0
for who in demo admin; do
  tests=$(awk -v who="$who" '$1 == who { print $2 }' "$HERE/tests.txt" | paste -sd '|')
  [ -n "$tests" ] || continue
  log=$WORK/$who.log
  echo "peer-gophercloud: as $who: ${tests//|/ }"
  if ! OS_USERNAME=$who OS_PASSWORD=$who OS_PROJECT_NAME=$who \
       "$BIN" -test.v -test.timeout 20m -test.run "^($tests)\$" >"$log" 2>&1; then
    failed=1
  fi
  grep -E '^--- (PASS|FAIL|SKIP)' "$log" || true
done
if [ "$failed" != 0 ]; then
  echo "peer-gophercloud: FAILED (logs in $WORK/demo.log, $WORK/admin.log)" >&2
  exit 1
fi
echo "peer-gophercloud: all listed tests passed"
