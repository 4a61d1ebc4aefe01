"""Stage 8, judging measurements: the cross-checks against the model, the model's predictions against runs, the statistics and the verdict."""
