#!/bin/sh
# Filesystem workload for the CMA loop, on the guest's ext4 disk.
#   workload.sh start MNT CHURN_WORKERS FILES_PER_ROUND SCAN_WORKERS FILL_MIB   (returns at once)
#   workload.sh stop
# Metadata churn, one worker per CPU, pinned: create, list and delete many small files. Every inode,
# bitmap and directory block it touches is a block-device page with buffers that passes through that
# CPU's bh LRU (__find_get_block -> bh_lru_install).
# Page-cache fill: write and read back a large file, so free memory outside CMA runs low and movable
# allocations (page cache, block-device pages) spill into the CMA areas.
set -u
pids=/tmp/workload.pids

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
    done
}

# Metadata scan, one worker per CPU, pinned: stat every file of the tree the host put on the disk.
# Dropping the dentry and inode caches first sends each lookup back to the inode-table and directory
# blocks (sb_getblk -> __find_get_block -> bh_lru_install), which stay clean: pins with b_count 1,
# exactly the 2012 report's buffers, not dirty ones that would also need writeback to migrate.
scan() {
    while :; do
        echo 3 > /proc/sys/vm/drop_caches
        ls -lR "$1/tree" > /dev/null 2>&1
    done
}

fill() {
    while :; do
        dd if=/dev/zero of="$1/fill" bs=1M count="$2" 2>/dev/null
        cat "$1/fill" > /dev/null
        rm -f "$1/fill"
        sync
    done
}

case $1 in
start)
    mnt=$2 workers=$3 files=$4 scanners=$5 fill_mib=$6
    cpus=$(grep -c ^processor /proc/cpuinfo)
    : > $pids
    w=0
    while [ "$w" -lt "$workers" ]; do
        taskset -c $((w % cpus)) sh "$0" churn "$mnt" "$files" "$w" > /dev/null 2>&1 &
        echo $! >> $pids
        w=$((w + 1))
    done
    w=0
    while [ "$w" -lt "$scanners" ]; do
        taskset -c $((w % cpus)) sh "$0" scan "$mnt" > /dev/null 2>&1 &
        echo $! >> $pids
        w=$((w + 1))
    done
    if [ "$fill_mib" -gt 0 ]; then
        sh "$0" fill "$mnt" "$fill_mib" > /dev/null 2>&1 &
        echo $! >> $pids
    fi
    echo "workload started: $workers churn workers, $scanners scan workers, fill ${fill_mib} MiB"
    ;;
stop)
    [ -f $pids ] && kill $(cat $pids) 2>/dev/null
    # The workers' children (dd, cat, rm) finish on their own; wait for them.
    sleep 1
    echo "workload stopped"
    ;;
churn) churn "$2" "$3" "$4" ;;
scan) scan "$2" ;;
fill) fill "$2" "$3" ;;
*) echo "usage: $0 start MNT CHURN_WORKERS FILES SCAN_WORKERS FILL_MIB | stop" >&2; exit 2 ;;
esac
