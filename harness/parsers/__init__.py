"""Stage 2, pure parsers: console/dmesg lines, ftrace text and dump_page() blocks in, typed events out; the busy-trace join and the run's console watcher."""
