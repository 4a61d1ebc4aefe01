"""cma-harness: reproduce the 2012 CMA bh_lru migration failure in an ARM guest and judge kernel patches.

Data flow, one stage per module:
  config -> kernel (cached build) -> module (rendered, built) -> image (initramfs, disk, DTB)
  -> boards.qemu (console + command channel) -> parse -> campaign (JSONL) -> stats -> report
with model cross-checking what was measured.
"""

__version__ = "0.1.0"
