"""Stage 7, guest-side set-up over a board's command channel: the workload, the counters, tracing."""
