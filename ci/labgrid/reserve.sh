#!/usr/bin/env bash
# Optional labgrid reservation hook around a farm run, for boards shared through a labgrid
# coordinator (by humans and several CI systems). Not needed with one CI runner per board host:
# `dfu-hil farm` always takes its own host-local lock per board anyway.
#
# Usage: ci/labgrid/reserve.sh [labgrid tag filters…] -- COMMAND [ARGS…]
#   e.g. ci/labgrid/reserve.sh board=nrf52840dk -- \
#          cargo run --release -- farm --inventory "$DFU_HIL_INVENTORY" --board-tag nightly
#
# Environment: LG_COORDINATOR (labgrid-client's own), RESERVE_TIMEOUT_S (default 1800): how
# long to wait for a place; labgrid's `reserve --wait` has no timeout of its own (labgrid#1415).
#
# Exit: the command's status, or 98 (infrastructure, as `dfu-hil`) when no place could be
# reserved or locked in time. The place is released and the reservation cancelled on every exit
# path, including a cancelled CI job (SIGTERM/SIGINT): stale locks are labgrid's known pain
# (labgrid#1739). A SIGKILL still leaves it locked until someone runs `release --kick`.
set -uo pipefail

filters=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    filters+=("$1")
    shift
done
[ "${1:-}" = "--" ] && shift
if [ ${#filters[@]} -eq 0 ] || [ $# -eq 0 ]; then
    echo "usage: $0 TAG=VALUE… -- COMMAND [ARGS…]" >&2
    exit 96
fi
command -v labgrid-client >/dev/null || { echo "reserve.sh: labgrid-client not found" >&2; exit 98; }

timeout_s="${RESERVE_TIMEOUT_S:-1800}"
LG_TOKEN=""
locked=0

cleanup() {
    local status=$?
    if [ -n "$LG_TOKEN" ]; then
        if [ "$locked" = 1 ]; then
            labgrid-client -p "+$LG_TOKEN" release || echo "reserve.sh: release failed" >&2
        fi
        labgrid-client cancel-reservation "$LG_TOKEN" 2>/dev/null || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Reserve without --wait first, so the token is known before any waiting: a `reserve --wait`
# killed by the timeout leaves its reservation queued in the coordinator, which then takes the
# next free place from everyone else (found against labgrid 26's coordinator by test-real.sh).
# `--shell` prints `export LG_TOKEN=…` for eval.
if ! reservation=$(labgrid-client reserve --shell "${filters[@]}"); then
    echo "reserve.sh: labgrid-client reserve ${filters[*]} failed" >&2
    exit 98
fi
eval "$reservation"
if [ -z "$LG_TOKEN" ]; then
    echo "reserve.sh: labgrid-client reserve gave no token: $reservation" >&2
    exit 98
fi
if ! timeout "$timeout_s" labgrid-client wait "$LG_TOKEN" >/dev/null; then
    echo "reserve.sh: no place matching ${filters[*]} within ${timeout_s}s (reservation $LG_TOKEN cancelled)" >&2
    exit 98
fi
if ! labgrid-client -p "+$LG_TOKEN" lock; then
    echo "reserve.sh: could not lock the reserved place (token $LG_TOKEN)" >&2
    exit 98
fi
locked=1
echo "reserve.sh: locked place +$LG_TOKEN (${filters[*]})" >&2

# Run in the background and wait, so a SIGTERM from the CI runs the trap promptly.
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143' TERM
trap 'kill -INT "$child" 2>/dev/null; wait "$child"; exit 130' INT
wait "$child"
exit $?
