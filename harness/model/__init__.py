"""Stage 3, the reference model (pure): the 6.1 CMA allocator, the bh LRUs and each variant's migration rule, the simulation, and replays of measured loops."""
