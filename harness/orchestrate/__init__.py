"""Stage 10, the two orchestrators: one run (build, boot, load, collect, classify) and an A/B campaign of runs."""
