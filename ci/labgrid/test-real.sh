#!/usr/bin/env bash
# reserve.sh and the network serial link against a *real* labgrid: a coordinator and two
# exporters on loopback (two "hosts"), each exporting two simulated boards (`dfu-hil sim serve`
# PTYs as `RawSerialPort`, which the exporter shares through ser2net with RFC 2217 once a place is
# acquired and publishes as a `NetworkSerialPort`: labgrid docs, "RawSerialPort"), four places
# tagged board=sim. Checks:
#   1. reserve.sh locks a place, the command inside reads the place's NetworkSerialPort from
#      `labgrid-client show` and talks SMP to it as `--port rfc2217://host:port`; released after.
#   2. four reservations at once get four different places and all pass.
#   3. a place held by another user is not taken: reserve.sh waits, gives up after its timeout
#      with 98 (infrastructure).
#   4. SIGTERM to reserve.sh releases the place.
#   5. afterwards no place is acquired.
#
# Usage: ci/labgrid/test-real.sh DFU_HIL_BINARY LABGRID_VENV_BIN
# Skips (exit 0, with the reason) when labgrid or ser2net is missing, unless
# DFU_HIL_REQUIRE_LABGRID=1. Ports are picked free at run time.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dfu_hil="${1:?usage: $0 DFU_HIL_BINARY LABGRID_VENV_BIN}"
lgbin="${2:?usage: $0 DFU_HIL_BINARY LABGRID_VENV_BIN}"

skip() {
    if [ "${DFU_HIL_REQUIRE_LABGRID:-0}" = 1 ]; then
        echo "test-real.sh: FAIL: $1 (DFU_HIL_REQUIRE_LABGRID=1)" >&2
        exit 1
    fi
    echo "test-real.sh: SKIPPED: $1" >&2
    exit 0
}
[ -x "$lgbin/labgrid-coordinator" ] || skip "labgrid not installed in $lgbin"
export PATH="$lgbin:/usr/sbin:/sbin:$PATH"
command -v ser2net >/dev/null || skip "ser2net not found (apt-get install -y ser2net)"

work="$(mktemp -d)"
pids=()
ok=0
cleanup() {
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null; done
    wait 2>/dev/null
    if [ "$ok" = 1 ]; then rm -rf "$work"; else echo "test-real.sh: logs kept in $work" >&2; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
fail() { echo "test-real.sh: FAIL: $*" >&2; exit 1; }
started=$(date +%s)

coord_port=$(free_port)
export LG_COORDINATOR="127.0.0.1:$coord_port"
(cd "$work" && exec labgrid-coordinator -l "$LG_COORDINATOR" >"$work/coordinator.log" 2>&1) &
pids+=($!)

# An exporter gives up at once when the coordinator is not listening yet (slow start under load).
for _ in $(seq 300); do
    python3 -c "import socket;socket.create_connection(('127.0.0.1',$coord_port),1)" 2>/dev/null && break
    sleep 0.2
done

# Four simulated boards, two per exporter.
for i in 1 2 3 4; do
    (cd "$root" && exec "$dfu_hil" sim serve --flash "$work/flash$i.bin" >"$work/sim$i.log" 2>&1) &
    pids+=($!)
done
for i in 1 2 3 4; do
    for _ in $(seq 100); do grep -q "pseudotty" "$work/sim$i.log" 2>/dev/null && break; sleep 0.1; done
    pty[$i]=$(sed -n 's/^uart connected to pseudotty: //p' "$work/sim$i.log")
    [ -n "${pty[$i]}" ] || fail "sim $i gave no PTY: $(cat "$work/sim$i.log")"
done
for e in 1 2; do
    a=$((2 * e - 1)) b=$((2 * e))
    cat >"$work/exp$e.yaml" <<EOF
board-$a:
  RawSerialPort:
    port: ${pty[$a]}
    speed: 115200
board-$b:
  RawSerialPort:
    port: ${pty[$b]}
    speed: 115200
EOF
    (cd "$work" && exec labgrid-exporter -n "exp$e" --hostname 127.0.0.1 "$work/exp$e.yaml" \
        >"$work/exp$e.log" 2>&1) &
    pids+=($!)
done
for _ in $(seq 300); do
    [ "$(labgrid-client resources 2>/dev/null | grep -c NetworkSerialPort)" = 4 ] && break
    sleep 0.2
done
[ "$(labgrid-client resources 2>/dev/null | grep -c NetworkSerialPort)" = 4 ] ||
    fail "exporters did not publish 4 serial ports: $(labgrid-client resources 2>&1)"
for i in 1 2 3 4; do
    e=$(((i + 1) / 2))
    labgrid-client -p "sim-$i" create >/dev/null &&
        labgrid-client -p "sim-$i" add-match "exp$e/board-$i/*" >/dev/null &&
        labgrid-client -p "sim-$i" set-tags board=sim layout=nrf52840-internal >/dev/null ||
        fail "could not create place sim-$i"
done
echo "test-real.sh: coordinator $LG_COORDINATOR (labgrid $("$lgbin/pip" show labgrid 2>/dev/null | sed -n 's/^Version: //p')), 2 exporters, 4 places in $(($(date +%s) - started)) s" >&2

# The command run inside a reservation: the locked place's NetworkSerialPort as an RFC 2217 URL.
cat >"$work/inside.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
show=\$(labgrid-client -p "+\$LG_TOKEN" show)
place=\$(printf '%s\n' "\$show" | sed -n "s/^Place '\\(.*\\)':/\\1/p")
host=\$(printf '%s\n' "\$show" | sed -n "s/.*'host': '\\([^']*\\)'.*/\\1/p" | head -1)
port=\$(printf '%s\n' "\$show" | sed -n "s/.*'port': \\([0-9][0-9]*\\).*/\\1/p" | head -1)
[ -n "\$port" ] || { echo "no NetworkSerialPort port on \$place: \$show" >&2; exit 1; }
out=\$("$dfu_hil" smp --port "rfc2217://\$host:\$port" --timeout 5 image list)
echo "\$place rfc2217://\$host:\$port: \$out"
sleep "\${HOLD_S:-0}"
EOF
chmod +x "$work/inside.sh"

# 1 + 2: four reservations at once, four different places.
for n in 1 2 3 4; do
    RESERVE_TIMEOUT_S=60 HOLD_S=1 "$here/reserve.sh" board=sim -- "$work/inside.sh" \
        >"$work/run$n.out" 2>"$work/run$n.err" &
    rpid[$n]=$!
done
for n in 1 2 3 4; do
    wait "${rpid[$n]}" || fail "reservation $n: $(cat "$work/run$n.out" "$work/run$n.err")"
    grep -q "active confirmed" "$work/run$n.out" || fail "reservation $n: $(cat "$work/run$n.out")"
done
used=$(grep -h "rfc2217://" "$work"/run*.out | cut -d' ' -f1 | sort -u | wc -l)
[ "$used" = 4 ] || fail "4 reservations used $used places: $(cat "$work"/run*.out)"
grep -h "rfc2217://" "$work"/run*.out >&2

# 3: another user holds the only matching place.
labgrid-client -p sim-1 set-tags board=sim layout=nrf52840-internal only=one >/dev/null
LG_USERNAME=someone-else labgrid-client -p sim-1 acquire >/dev/null || fail "other user's acquire"
t0=$(date +%s)
RESERVE_TIMEOUT_S=3 "$here/reserve.sh" only=one -- true 2>"$work/held.err"
status=$?
[ "$status" = 98 ] || fail "held place: expected 98, got $status: $(cat "$work/held.err")"
grep -q "no place matching" "$work/held.err" || fail "held place: $(cat "$work/held.err")"
echo "test-real.sh: place held by another user: waited $(($(date +%s) - t0)) s, exit 98: $(tail -1 "$work/held.err")" >&2
LG_USERNAME=someone-else labgrid-client -p sim-1 release >/dev/null || fail "other user's release"

# 4: SIGTERM while the command runs releases the place.
RESERVE_TIMEOUT_S=30 "$here/reserve.sh" only=one -- sleep 60 2>"$work/term.err" &
r=$!
for _ in $(seq 100); do grep -q "locked place" "$work/term.err" && break; sleep 0.1; done
grep -q "locked place" "$work/term.err" || fail "SIGTERM case never locked: $(cat "$work/term.err")"
kill -TERM "$r"
wait "$r"
status=$?
[ "$status" = 143 ] || fail "SIGTERM: expected 143, got $status"

# 5: nothing left acquired.
for i in 1 2 3 4; do
    show=$(labgrid-client -p "sim-$i" show)
    grep -q "^  acquired: None" <<<"$show" || fail "place sim-$i still acquired: $show"
done
ok=1
echo "test-real.sh: OK in $(($(date +%s) - started)) s" >&2
