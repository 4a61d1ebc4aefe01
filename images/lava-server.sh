#!/usr/bin/env bash
# A local LAVA server and worker for `cma-harness ab --executor lava` (run as root, from anywhere):
#   images/lava-server.sh start     postgres, the database, a user and API token, the device type `qemu`,
#                                   the worker and its QEMU device, then gunicorn, the publisher, the
#                                   scheduler and lava-worker: all bound to 127.0.0.1. Prints the URL and
#                                   where the token is. Safe to run again: what runs is left running.
#   images/lava-server.sh stop      stops what `start` started (postgres only if `start` started it)
#   images/lava-server.sh status    what runs; exit 0 when the server answers and the worker is online
#   images/lava-server.sh purge     stop, then drop the database and this script's state (the next start
#                                   is a fresh one)
# Debian's lava-server and lava-dispatcher (2023.01 on Debian 12), started as plain processes, not as their
# systemd units (this runs where systemd is not PID 1 too: containers, CI). Their packaged units stay off
# (images/setup-host.sh disables them); the settings this server needs come from LAVA_SETTINGS_* variables,
# so /etc/lava-server is not edited beyond the device dictionary and what the package's postinst writes.
# Environment: CMA_LAVA_STATE (default /var/lib/cma-harness/lava-server: token, logs, pids), CMA_LAVA_PORT
# (default 8040: the API; the publisher's web socket is PORT+1, its event socket PORT+2).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE="${CMA_LAVA_STATE:-/var/lib/cma-harness/lava-server}"
PORT="${CMA_LAVA_PORT:-8040}"
URL="http://127.0.0.1:$PORT/"
export CMA_LAVA_USER=cma-harness CMA_LAVA_WORKER=cma-harness-worker CMA_LAVA_DEVICE=cma-qemu-01
export CMA_LAVA_TOKEN_FILE="$STATE/token" CMA_LAVA_WORKER_TOKEN_FILE="$STATE/worker-token"
DEVICE_DICT="/etc/lava-server/dispatcher-config/devices/$CMA_LAVA_DEVICE.jinja2"
JOB_OUTPUT=/var/lib/lava-server/default/media/job-output
PIDS="$STATE/pids" LOGS="$STATE/logs" RUN="$STATE/run"
PY=/usr/bin/python3                     # LAVA's own Python, whatever python3 is first on PATH
PACKAGES=(lava-server lava-dispatcher lavacli postgresql)
# The event stream (a job submitted wakes the scheduler, a job scheduled wakes the worker: no 20 s polls),
# bound to 127.0.0.1; everything reads its settings from these (lava_server/settings/prod.py).
export LAVA_YAML_SETTINGS_EVENT_NOTIFICATION=true
export LAVA_SETTINGS_EVENT_SOCKET="tcp://127.0.0.1:$((PORT + 2))"
export LAVA_SETTINGS_INTERNAL_EVENT_SOCKET="ipc://$RUN/events.ipc"

say() { echo "lava-server: $*"; }
die() { echo "lava-server: error: $*" >&2; exit 1; }
alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }
api() {     # api PATH: the JSON at PATH (with the token when there is one), or nothing when it does not answer
    "$PY" - "$URL" "$1" "$CMA_LAVA_TOKEN_FILE" <<'EOF' 2>/dev/null || true
import json, sys, urllib.request
from pathlib import Path
url, path, token = sys.argv[1], sys.argv[2], Path(sys.argv[3])
req = urllib.request.Request(url + path.lstrip("/"))
if token.is_file():
    req.add_header("Authorization", "Token " + token.read_text().strip())
print(json.dumps(json.load(urllib.request.urlopen(req, timeout=5))))
EOF
}
field() { "$PY" -c "import json,sys; d=json.loads(sys.stdin.read() or '{}'); print(d.get('$1', ''))"; }

children_of() {    # the pids whose parent is $1 (from /proc: no procps in a bare container)
    local d
    for d in /proc/[0-9]*; do
        [ "$(awk '/^PPid:/ {print $2}' "$d/status" 2>/dev/null)" = "$1" ] && echo "${d#/proc/}"
    done
    return 0
}

need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (the worker's lava-run boots QEMU as root, gunicorn drops to lavaserver)"; }

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return
    say "installing ${missing[*]} (images/setup-host.sh installs them too)"
    # Their services must not start on their own (postgres would listen before this script sets it to
    # 127.0.0.1): a policy-rc.d that refuses every start, unless one is there already (containers).
    local policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d; printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT             # also when the install fails
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || { apt-get update -q || true; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; }
    [ -z "$policy" ] || { rm -f "$policy"; trap - EXIT; }
}

packaged_services_off() {
    [ -d /run/systemd/system ] || return 0
    local unit
    for unit in lava-server-gunicorn lava-scheduler lava-publisher lava-worker lava-celery-worker; do
        if systemctl is-active --quiet "$unit" 2>/dev/null; then
            die "the packaged $unit.service runs (a second scheduler on the same database): stop it first with \
systemctl disable --now $unit (images/setup-host.sh disables them)"
        fi
    done
}

postgres_start() {
    local version
    version=$(pg_lsclusters -h 2>/dev/null | awk '$2 == "main" {print $1; exit}')
    if [ -z "$version" ]; then
        version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
        say "creating the postgres cluster $version/main"
        pg_createcluster "$version" main >/dev/null
    fi
    if pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
        return                  # someone else's (or an earlier start's): left as it is
    fi
    say "starting postgres $version/main on 127.0.0.1:5432"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start -- -o "-c listen_addresses=127.0.0.1"
    echo "$version" > "$PIDS/postgres.started"
}

database() {
    # The package's own set-up (it skipped the database when postgres was not running at install time):
    # the role and database, the migrations. Once per lava-server version; again if the database is gone.
    local version have
    version=$(dpkg-query -W -f '${Version}' lava-server)
    have=$(runuser -u postgres -- psql -Atqc "select 1 from pg_database where datname = 'lavaserver'" 2>/dev/null || true)
    if [ "$have" = 1 ] && [ "$(cat "$STATE/database" 2>/dev/null)" = "$version" ]; then
        return
    fi
    say "setting up the database (lava-server's postinst: role, database, migrations)"
    "$PY" /usr/share/lava-server/postinst.py --config --db --fixup > "$LOGS/postinst.log" 2>&1 \
        || die "lava-server's database set-up failed: see $LOGS/postinst.log"
    echo "$version" > "$STATE/database"
}

objects() {
    install -o lavaserver -g lavaserver -m 0644 "$HERE/lava/server-device.jinja2" "$DEVICE_DICT"
    lava-server manage shell -c "$(cat "$HERE/lava/server-setup.py")" 2> "$LOGS/setup.log" \
        || die "making the user, token, worker and device failed: see $LOGS/setup.log"
}

spawn() {   # spawn NAME COMMAND...: in its own session, its output in logs/NAME.out, its pid in pids/
    local name=$1; shift
    alive "$name" && return
    setsid "$@" > "$LOGS/$name.out" 2>&1 < /dev/null &
    echo $! > "$PIDS/$name.pid"
}

wait_up() {
    local i state
    for i in $(seq 120); do
        state=$(api "api/v0.2/workers/$CMA_LAVA_WORKER/" | field state)
        [ "$state" = Online ] && return 0
        for name in gunicorn publisher scheduler worker; do
            alive "$name" || die "$name exited: see $LOGS/$name.out and $LOGS/$name.log"
        done
        sleep 0.5
    done
    die "the worker is not online after 60 s: see $LOGS/worker.log and $LOGS/gunicorn.log"
}

start() {
    need_root
    install_packages
    packaged_services_off
    mkdir -p "$PIDS" "$LOGS" "$RUN"
    chmod 755 "$STATE"                          # the tokens in it are 0600
    chown lavaserver:lavaserver "$RUN" "$LOGS"  # the publisher and the scheduler drop to lavaserver
    local t0=$SECONDS
    postgres_start
    database
    objects
    spawn publisher lava-server manage lava-publisher --level INFO --log-file "$LOGS/publisher.log" \
        --host 127.0.0.1 --port $((PORT + 1))
    spawn gunicorn gunicorn3 lava_server.wsgi --bind "127.0.0.1:$PORT" -u lavaserver -g lavaserver \
        --worker-class eventlet --workers 2 --log-level INFO --log-file "$LOGS/gunicorn.log"
    spawn scheduler lava-server manage lava-scheduler --level INFO --log-file "$LOGS/scheduler.log" \
        --event-url "$LAVA_SETTINGS_EVENT_SOCKET"
    spawn worker lava-worker --name "$CMA_LAVA_WORKER" --url "$URL" --ws-url "http://127.0.0.1:$((PORT + 1))/ws/" \
        --token-file "$CMA_LAVA_WORKER_TOKEN_FILE" --worker-dir "$STATE/worker" --ping-interval 2 \
        --level INFO --log-file "$LOGS/worker.log"
    wait_up
    say "up in $((SECONDS - t0)) s: $URL (user $CMA_LAVA_USER; its API token is in $CMA_LAVA_TOKEN_FILE)"
    say "device $CMA_LAVA_DEVICE (type qemu, dictionary $DEVICE_DICT) on worker $CMA_LAVA_WORKER"
    say "use it: cma-harness ab --executor lava --url $URL --token-file $CMA_LAVA_TOKEN_FILE ..."
}

stop() {
    local name pid i child
    for name in worker scheduler gunicorn publisher; do
        alive "$name" || { rm -f "$PIDS/$name.pid"; continue; }
        pid=$(cat "$PIDS/$name.pid")
        if [ "$name" = worker ]; then       # a job's lava-run (and its QEMU) runs in a process group of its own
            for child in $(children_of "$pid"); do
                kill -TERM -- "-$child" 2>/dev/null || true
                say "stopped the running job's lava-run (pid $child)"
            done
        fi
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true     # its session's group
        for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f "$PIDS/$name.pid"
        say "stopped $name"
    done
    if [ -f "$PIDS/postgres.started" ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(cat "$PIDS/postgres.started")" main stop || true
        rm -f "$PIDS/postgres.started"
        say "stopped postgres"
    fi
}

status() {
    local name ok=0 version state
    for name in publisher gunicorn scheduler worker; do
        if alive "$name"; then say "$name: running (pid $(cat "$PIDS/$name.pid"))"; else say "$name: not running"; ok=1; fi
    done
    version=$(api api/v0.2/system/version/ | field version)
    state=$(api "api/v0.2/workers/$CMA_LAVA_WORKER/" | field state)
    say "API $URL: $([ -n "$version" ] && echo "LAVA $version" || echo "not answering"); worker $CMA_LAVA_WORKER: ${state:-unknown}"
    [ -n "$version" ] && [ "$state" = Online ] || ok=1
    [ -f "$CMA_LAVA_TOKEN_FILE" ] && say "API token: $CMA_LAVA_TOKEN_FILE"
    return $ok
}

purge() {
    need_root
    stop
    local started=""
    if ! pg_lsclusters -h 2>/dev/null | grep -q online; then mkdir -p "$PIDS"; postgres_start; started=1; fi
    runuser -u postgres -- psql -q -c "DROP DATABASE IF EXISTS lavaserver" -c "DROP DATABASE IF EXISTS devel" \
        -c "DROP ROLE IF EXISTS lavaserver" -c "DROP ROLE IF EXISTS devel" || true
    [ -z "$started" ] || stop
    rm -f "$DEVICE_DICT"
    rm -rf "$STATE"
    # The jobs' logs: a new database numbers its jobs from 1 again, and LAVA would serve (and not
    # overwrite) an old job's log under a new job's id.
    find "$JOB_OUTPUT" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || true
    say "purged: the database, the jobs' logs ($JOB_OUTPUT) and $STATE"
}

case "${1:-}" in
    start) start ;;
    stop) need_root; stop ;;
    status) status ;;
    purge) purge ;;
    *) echo "usage: $0 start|stop|status|purge" >&2; exit 2 ;;
esac
