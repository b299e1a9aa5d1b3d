#!/usr/bin/env bash
# Runs Neraca's whole test suite against real PostgreSQL, Redis and RabbitMQ processes that the tests start
# themselves on loopback (throwaway data folders under /tmp/neraca-test-*), and stops them afterwards.
# On Debian/Ubuntu as root it installs whatever server packages are missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
have_pg() { ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; }
have_pg || packages+=(postgresql)
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
[ -x /usr/sbin/rabbitmq-server ] || packages+=(rabbitmq-server)
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
[ -x /usr/bin/chromium ] || packages+=(chromium)   # the web app's browser tests (headless)
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || packages+=(faketime)   # the fault tests jump a process's clock
# The topology and container image tests (tests/Neraca.Tests/Topology).
for tool in haproxy pgbouncer $([ "${NERACA_TEST_IMAGE:-}" = 1 ] && echo mmdebstrap buildah podman runc); do command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || packages+=("$tool"); done

if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing missing packages: ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The packages' own services must not start: the tests run their own throwaway instances, and a daemon started by
    # an install script could hold this script's output open after it ends.
    no_services=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_services=1
    fi
    apt_log=$(mktemp)
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${packages[@]}"; } </dev/null >"$apt_log" 2>&1 \
      || { cat "$apt_log" >&2; exit 1; }
    rm -f "$apt_log"
    [ -n "$no_services" ] && rm -f /usr/sbin/policy-rc.d
  else
    echo "Missing: ${packages[*]}. Install them (Debian/Ubuntu: sudo apt-get install ${packages[*]}) and run again." >&2
    exit 1
  fi
fi

cleanup() {
  # Whatever a crashed test run left behind: servers whose data folders are ours.
  pkill -f 'neraca-test-' >/dev/null 2>&1 || true
  pkill -f 'Neraca.Tests/bin/.*/Neraca.Server.dll' >/dev/null 2>&1 || true
  for node in $(ls -d /tmp/neraca-test-rabbit-* 2>/dev/null); do
    [ -f "$node/nodename" ] && rabbitmqctl -n "$(cat "$node/nodename")" stop >/dev/null 2>&1 || true
  done
  pkill -x epmd >/dev/null 2>&1 || true
  # The fault tests' database file system (a tmpfs mount), if the test process died before unmounting it.
  for mount in $(awk '$2 ~ /^\/tmp\/neraca-test-/ { print $2 }' /proc/mounts 2>/dev/null); do umount -l "$mount" 2>/dev/null || true; done
  rm -rf /tmp/neraca-test-* 2>/dev/null || true
}
trap cleanup EXIT
cleanup

# No build servers: nothing of the build may outlive this script.
dotnet build Neraca.slnx -c Release -warnaserror --nologo -v quiet --disable-build-servers
log=$(mktemp)
# A stuck test makes the test process fail fast after 10 minutes without progress and name what was running
# (tests/Neraca.Tests/Infrastructure/HangWatchdog.cs); the whole run normally takes about a minute.
export NERACA_TEST_HANG_REPORT=$(mktemp)
status=0
timeout --kill-after=30s "${NERACA_TEST_TIMEOUT:-40m}" dotnet test --solution Neraca.slnx -c Release --no-build "$@" 2>&1 | tee "$log" || status=$?
if [ -s "$NERACA_TEST_HANG_REPORT" ]; then cat "$NERACA_TEST_HANG_REPORT"; echo; fi
[ "$status" = 124 ] && { echo "The test run did not finish in ${NERACA_TEST_TIMEOUT:-40m}." >&2; pkill -f 'net10.0/Neraca.Tests' || true; }
rm -f "$NERACA_TEST_HANG_REPORT"
# One plain closing line for CI systems that read it.
passed=$(awk '/^  succeeded:/ {s+=$2} END {print s+0}' "$log")
failed=$(awk '/^  failed:/ {s+=$2} END {print s+0}' "$log")
skipped=$(awk '/^  skipped:/ {s+=$2} END {print s+0}' "$log")
# The failures again, last, where a CI log's tail shows them (not buried under the servers' shutdown logs).
if grep -q '^failed ' "$log"; then
  echo "failed tests:"
  awk '/^failed / { print; getline; getline; print }' "$log" | cut -c1-300
fi
rm -f "$log"
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
