"""Stage 0, used by every stage: exception types and exit codes, deadlines, the one place that runs subprocesses."""
