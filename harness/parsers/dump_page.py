"""Pure parser for the kernel's dump_page() blocks on a console or in a dmesg: one PageDump per block.

Format from mm/debug.c __dump_page and fs/inode.c dump_mapping (6.1), one printk line each:
  page:<p> refcount:<n> mapcount:<n> mapping:<p> index:<hex> pfn:<hex>
  head:<p> order:<n> compound_mapcount:<n> compound_pincount:<n>       (compound pages only)
  memcg:<hex>                                                          (CONFIG_MEMCG only)
  aops:<sym> ino:<hex> [dentry name(?):"<name>"]    or   aops:<sym>   (file pages; <sym> is a raw
                                                    address without CONFIG_KALLSYMS)
  [anon |ksm ]flags: <hex>(<name>|<name>|zone=<n>)[ CMA]
  raw: <hex words>      head: <hex words>
  page dumped because: <reason>
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from harness.parsers.frozen import made
from harness.parsers.kmsg import TIMESTAMP

# %#lx prints 0 as "0", anything else with 0x.
_HEX = r"(?:0x[0-9a-f]+|0)"
PAGE = re.compile(rf"page:(?P<page>\S+) refcount:(?P<refcount>-?\d+) mapcount:(?P<mapcount>-?\d+) "
                  rf"mapping:(?P<mapping>\S+) index:(?P<index>{_HEX}) pfn:(?P<pfn>{_HEX})\s*$")
HEAD = re.compile(r"head:\S+ order:(?P<order>\d+) ")
# Symbols and flag names are plain identifiers: a line with anything else in them is garbled, and skipped.
AOPS = re.compile(r"^aops:(?P<aops>[\w.$]+)(?: ino:(?P<ino>[0-9a-f]+))?(?:\s|$)")
FLAGS = re.compile(rf"^(?:(?P<type>anon|ksm) )?flags: (?P<value>{_HEX})\((?P<names>[\w=|]*)\)(?P<cma> CMA)?\s*$")
REASON = re.compile(r"^page dumped because: (?P<reason>.*?)\s*$")


@dataclass(frozen=True)
class PageDump:
    kind: str = field(init=False, default="page_dump")
    line: int = 0                   # the `page:` line
    time: float | None = None
    pfn: int = 0
    refcount: int = 0
    mapcount: int = 0
    mapping: str = ""               # as printed (a hashed pointer on most kernels)
    index: int = 0
    order: int = 0                  # > 0 for a compound page
    aops: str | None = None         # the address_space_operations symbol: def_blk_aops = block device
    ino: int | None = None          # for a block device, its dev_t
    anon: bool = False
    flags: int | None = None
    flag_names: tuple[str, ...] = ()   # `private` = the page has buffer heads
    cma: bool = False               # the page sits in a MIGRATE_CMA pageblock
    reason: str | None = None
    complete: bool = False          # False: the block was cut short before `page dumped because`

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# A PageDump's __init__ fields in order, at their defaults: a block's fields gather in a copy of this, and
# the PageDump is made once, when the block is yielded (dataclasses.replace a line cost 8 us).
_BLANK = {f.name: f.default for f in dataclasses.fields(PageDump) if f.init}


def parse_page_dumps(lines: Iterable[str]) -> Iterator[PageDump]:
    """Every dump_page() block, whole or cut short. Another CPU's printk may land inside a block: lines
    that are no part of one are skipped without closing it; a new `page:` line or the end closes it."""
    dump: dict | None = None
    for n, raw in enumerate(lines, 1):
        if dump is None and "refcount:" not in raw:     # outside a block only PAGE matters, and needs it
            continue
        text = raw.rstrip("\r\n")
        ts = None
        if m := TIMESTAMP.match(text):
            ts, text = float(m.group(1)), text[m.end():]
        text = text.strip()
        if "refcount:" in text and (m := PAGE.search(text)):
            if dump is not None:
                yield made(PageDump, dump)
            dump = {**_BLANK, "line": n, "time": ts, "pfn": int(m.group("pfn"), 16),
                    "refcount": int(m.group("refcount")), "mapcount": int(m.group("mapcount")),
                    "mapping": m.group("mapping"), "index": int(m.group("index"), 16)}
            continue
        if dump is None:
            continue
        if m := HEAD.match(text):
            dump["order"] = int(m.group("order"))
        elif m := AOPS.match(text):
            dump["aops"], dump["ino"] = m.group("aops"), int(m.group("ino"), 16) if m.group("ino") else None
        elif m := FLAGS.match(text):
            dump["anon"], dump["flags"] = m.group("type") == "anon", int(m.group("value"), 16)
            dump["flag_names"] = tuple(x for x in m.group("names").split("|") if x)
            dump["cma"] = bool(m.group("cma"))
        elif m := REASON.match(text):
            dump["reason"], dump["complete"] = m.group("reason"), True
            yield made(PageDump, dump)
            dump = None
    if dump is not None:
        yield made(PageDump, dump)
