"""Stage 4, the measurements on disk: every file name of a run and a campaign folder, typed readers, run naming,
and the loop-record arithmetic. Every other module reads and writes folders through this package."""
