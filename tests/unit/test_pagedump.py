"""dump_page() blocks: the kernel's format (mm/debug.c, fs/inode.c dump_mapping), and recorded real dumps."""

from pathlib import Path

from harness import pagedump

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_format_from_mm_debug_c_with_a_line_of_another_cpu_inside():
    lines = [
        "[   40.100000] page:8c5f1a2b refcount:3 mapcount:0 mapping:5d2e9f10 index:0x1a pfn:0x4a123",
        "[   40.100001] aops:def_blk_aops ino:fe00001",
        "[   40.100002] random: crng init done",
        "[   40.100003] flags: 0x204(referenced|private|zone=0) CMA",
        "[   40.100004] raw: 00000204 c1e5b004 c1e5b004 c2a1b3c4 0000001a c3d4e5f6 00000000 00000003",
        "[   40.100005] page dumped because: migration failure",
        "[   40.200000] page:11111111 refcount:1 mapcount:1 mapping:00000000 index:0 pfn:0x4a200",
        "[   40.200001] anon flags: 0x80008(uptodate|swapbacked|zone=0)",
    ]
    whole, cut = pagedump.parse_page_dumps(lines)
    assert (whole.pfn, whole.refcount, whole.aops, whole.ino, whole.index) == (0x4a123, 3, "def_blk_aops", 0xfe00001, 0x1a)
    assert whole.flag_names == ("referenced", "private", "zone=0") and whole.cma and not whole.anon
    assert (whole.reason, whole.complete, whole.time, whole.line) == ("migration failure", True, 40.1, 1)
    assert (cut.pfn, cut.anon, cut.aops, cut.index, cut.complete) == (0x4a200, True, None, 0, False)
