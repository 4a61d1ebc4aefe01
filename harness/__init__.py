"""cma-harness: reproduce the 2012 CMA bh_lru migration failure in an ARM guest and judge kernel patches.

The sub-packages are the stages of the data flow, lowest first; a module imports only from its own
stage or a lower one (tests/unit/test_layout.py holds the order):
  core -> spec -> parsers -> model -> store -> build -> boards -> guest -> judging -> present
  -> orchestrate -> cli, pytest_plugin
"""

__version__ = "0.1.0"
