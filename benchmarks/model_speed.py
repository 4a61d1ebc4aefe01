"""How fast the reference model simulates the seed's loop (56 x 1 MiB chunks in a 56 MiB area)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.model.simulation import simulate  # noqa: E402
from harness.spec.variants import REINTRODUCED_2012, STOCK  # noqa: E402

LONG_RUN_LOOPS = 10_000


def timed_simulation(defences, loops: int):
    start = time.perf_counter()
    result = simulate(defences, loops, seed=0)
    return result, time.perf_counter() - start


def main() -> int:
    for name, defences in (("reintroduce-2012", REINTRODUCED_2012), ("stock", STOCK)):
        result, seconds = timed_simulation(defences, LONG_RUN_LOOPS)
        print(f"{name:17} {LONG_RUN_LOOPS} loops in {seconds:6.2f} s "
              f"({LONG_RUN_LOOPS / seconds:7.0f} loops/s), "
              f"{result.failed_loops} failed loops ({result.loop_failure_rate:.1%}), "
              f"{result.lru_caused_chunks} LRU-caused chunks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
