#!/bin/sh
# Filesystem workload for the CMA loop, on the guest's ext4 disk.
#   workload.sh start MNT CHURN_WORKERS FILES_PER_ROUND SCAN_WORKERS FILL_MIB IDLE_MS   (returns once warm)
#   workload.sh launch MNT ...   (the same, returns at once)   workload.sh ready   (returns once warm)
#   workload.sh stop
# Metadata churn, one worker per CPU, pinned: create, list and delete many small files. Every inode,
# bitmap and directory block it touches is a block-device page with buffers that passes through that
# CPU's bh LRU (__find_get_block -> bh_lru_install).
# Page-cache fill: write and read back a large file, so free memory outside CMA runs low and movable
# allocations (page cache, block-device pages) spill into the CMA areas.
set -u
pids=/tmp/workload.pids
# Each worker touches its mark here once its first burst is done; `start` returns when all have: the
# page cache then holds the metadata the loop competes with, so the module can start at once.
ready=/tmp/workload.ready

# Activity comes in bursts, as from a phone's adb push/pull: between rounds a worker sleeps, and the
# last 16 buffer heads it looked up stay pinned in its CPU's bh LRU for the whole pause (the report:
# "unless the buffer gets evicted quickly the page can remain non-migratible for long periods").
pause() {
    [ "$1" -gt 0 ] && usleep $(($1 * 1000))
    return 0
}

# $1 = the worker's name: its ready mark, touched once after its first burst.
warm() {
    [ -e "$ready/$1" ] || : > "$ready/$1"
}

churn() {
    d=$1/churn.$3
    while :; do
        mkdir -p "$d"
        i=0
        while [ "$i" -lt "$2" ]; do
            echo "$i" > "$d/f$i"
            i=$((i + 1))
        done
        ls -l "$d" > /dev/null
        rm -rf "$d"
        warm "churn.$3"
        pause "$4"
    done
}

# Metadata scan, one worker per CPU, pinned: stat every file of the tree the host put on the disk, one
# directory at a time, pausing idle_ms after each.
# Dropping the dentry and inode caches first sends each lookup back to the inode-table and directory
# blocks (sb_getblk -> __find_get_block -> bh_lru_install), which stay clean: pins with b_count 1,
# exactly the 2012 report's buffers, not dirty ones that would also need writeback to migrate.
scan() {
    # Writing 4 first silences the kernel's "drop_caches: 3" line (fs/drop_caches.c): at one line per
    # round it would flood the serial console, which stalls the guest CPU that writes it.
    echo 4 > /proc/sys/vm/drop_caches
    # Warm-up: one pass over the whole tree without pauses, so its inode-table and directory blocks are
    # in the page cache (and in the CMA area) when the loop starts, as in the middle of a run.
    ls -lR "$1"/tree > /dev/null 2>&1
    warm "scan.$3"
    while :; do
        echo 3 > /proc/sys/vm/drop_caches
        for d in "$1"/tree/*; do
            ls -l "$d" > /dev/null 2>&1
            pause "$2"
        done
    done
}

fill() {
    while :; do
        dd if=/dev/zero of="$1/fill" bs=1M count="$2" 2>/dev/null
        cat "$1/fill" > /dev/null
        warm fill
        rm -f "$1/fill"
        sync
    done
}

# Centiseconds since boot (/proc/uptime has two decimals): the warm-up is timed from the launch.
now_cs() {
    read -r up _ < /proc/uptime
    echo $((${up%.*} * 100 + 1${up#*.} - 100))     # 1NN - 100: "08" would read as octal
}

launch() {
    mnt=$1 workers=$2 files=$3 scanners=$4 fill_mib=$5 idle_ms=$6
    cpus=$(grep -c ^processor /proc/cpuinfo)
    : > $pids
    rm -rf $ready; mkdir -p $ready
    expect=0
    w=0
    while [ "$w" -lt "$workers" ]; do
        taskset -c $((w % cpus)) sh "$0" churn "$mnt" "$files" "$w" "$idle_ms" > /dev/null 2>&1 &
        echo $! >> $pids
        w=$((w + 1)); expect=$((expect + 1))
    done
    w=0
    while [ "$w" -lt "$scanners" ]; do
        taskset -c $((w % cpus)) sh "$0" scan "$mnt" "$idle_ms" "$w" > /dev/null 2>&1 &
        echo $! >> $pids
        w=$((w + 1)); expect=$((expect + 1))
    done
    if [ "$fill_mib" -gt 0 ]; then
        sh "$0" fill "$mnt" "$fill_mib" > /dev/null 2>&1 &
        echo $! >> $pids
        expect=$((expect + 1))
    fi
    echo "$expect $(now_cs) $workers $scanners $fill_mib" > /tmp/workload.launched
}

# Return once every worker is warm (polled every 50 ms, at most 120 s after the launch: a fill of a large
# file takes a while); the caller starts the loop on this line instead of sleeping a fixed time. Between
# launch and ready the caller does its own set-up (the trace), while the workers warm up.
wait_ready() {
    read -r expect t0 workers scanners fill_mib < /tmp/workload.launched
    while [ "$(ls $ready | wc -l)" -lt "$expect" ] && [ $(($(now_cs) - t0)) -lt 12000 ]; do usleep 50000; done
    echo "workload started: $workers churn workers, $scanners scan workers, fill ${fill_mib} MiB"
    echo "workload running: $(ls $ready | wc -l) of $expect workers warm after $((($(now_cs) - t0) * 10)) ms"
}

case $1 in
start)
    launch "$2" "$3" "$4" "$5" "$6" "$7"
    wait_ready
    ;;
launch) launch "$2" "$3" "$4" "$5" "$6" "$7" ;;
ready) wait_ready ;;
stop)
    [ -f $pids ] && kill $(cat $pids) 2>/dev/null
    # Wait for the workers to be gone (polled every 50 ms, at most 1 s) instead of a fixed second: the
    # counters were read before, so a child still finishing (dd, cat, rm) changes no measurement.
    t=0
    while [ "$t" -lt 20 ]; do
        alive=0
        for p in $(cat $pids 2>/dev/null); do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        usleep 50000; t=$((t + 1))
    done
    echo "workload stopped"
    ;;
churn) churn "$2" "$3" "$4" "$5" ;;
scan) scan "$2" "$3" "${4:-0}" ;;
fill) fill "$2" "$3" ;;
*) echo "usage: $0 start|launch MNT CHURN_WORKERS FILES SCAN_WORKERS FILL_MIB IDLE_MS | ready | stop" >&2; exit 2 ;;
esac
