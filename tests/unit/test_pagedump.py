"""dump_page() blocks: the kernel's format (mm/debug.c, fs/inode.c dump_mapping), and recorded real dumps."""


from harness.parsers import dump_page
from tests.conftest import FIXTURES



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
    whole, cut = dump_page.parse_page_dumps(lines)
    assert (whole.pfn, whole.refcount, whole.aops, whole.ino, whole.index) == (0x4a123, 3, "def_blk_aops", 0xfe00001, 0x1a)
    assert whole.flag_names == ("referenced", "private", "zone=0") and whole.cma and not whole.anon
    assert (whole.reason, whole.complete, whole.time, whole.line) == ("migration failure", True, 40.1, 1)
    assert (cut.pfn, cut.anon, cut.aops, cut.index, cut.complete) == (0x4a200, True, None, 0, False)


def _dumps(name):
    return list(dump_page.parse_page_dumps((FIXTURES / name).read_text(errors="replace").splitlines()))


def test_real_dump_of_a_block_device_page_with_busy_buffers():
    """Recorded from `cma-harness run` on reintroduce-2012 with page dumps on (dynamic debug
    alloc_contig_dump_pages), cut to loop 6. Without CONFIG_KALLSYMS_ALL, def_blk_aops (data) prints
    as a raw address; ino fe00000 is the dev_t of /dev/vda (254:0); pointers are hashed: (ptrval)."""
    d, = _dumps("console-reintroduce-2012-loop6.log")
    assert (d.pfn, d.refcount, d.mapcount, d.index, d.mapping) == (0x4bfee, 3, 0, 0x86, "(ptrval)")
    assert (d.aops, d.ino, d.flags, d.cma, d.anon) == ("0xc0332704", 0xfe00000, 0x2022, False, False)
    assert d.flag_names == ("referenced", "active", "private", "zone=0")
    assert (d.reason, d.complete, d.time) == ("migration failure", True, 25.987815)


def test_real_dumps_of_loop11_before_and_after_the_buffers_came_back():
    """Same run, loop 11: the same page dumped twice, first without buffers, then with."""
    first, second = _dumps("console-reintroduce-2012-loop11.log")
    assert first.pfn == second.pfn == 0x4bfe7
    assert "private" not in first.flag_names and "private" in second.flag_names


def test_garbled_dump_drops_the_garbled_lines():
    """console-reintroduce-2012-loop6.log garbled by the recipe of test_trace's garbled fixture, seed 5:
    noise landed in the aops and flags lines; they are dropped, not read as a symbol or flag names."""
    d, = _dumps("console-reintroduce-2012-loop6-garbled.log")
    assert (d.pfn, d.refcount, d.reason) == (0x4bfee, 3, "migration failure")
    assert d.aops is None and d.flag_names == ()


def test_truncated_dump_is_returned_incomplete():
    """console-reintroduce-2012-loop6.log cut inside the flags line of its dump."""
    d, = _dumps("console-reintroduce-2012-loop6-truncated.log")
    assert (d.pfn, d.aops, d.flags, d.complete, d.reason) == (0x4bfee, "0xc0332704", None, False, None)
