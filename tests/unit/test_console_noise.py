"""The console tee over a byte stream with random bytes interleaved: the raw log stays exact, no read
breaks, a record the noise missed is parsed exactly, a record it hit is dropped (never misread)."""

import io
import random

import pytest

from harness.parsers import kmsg
from harness.boards.console_tee import ConsoleTee

from .records import record_line
from tests.conftest import FIXTURES

FIXTURE = FIXTURES / "console-stock-idle-3loops.log"


def _stream(rng: random.Random, loops: int) -> tuple[bytes, bytes, set[int]]:
    """(clean bytes, noisy bytes, loops whose line the noise touched)."""
    boot = FIXTURE.read_bytes().split(b"cma_harness: start")[0]
    lines = [record_line(i, rng.choice(["." * 8, ".L......", "...T..P."]), stamp=10 + i).encode() + b"\r\n"
             for i in range(loops)]
    noisy, touched = bytearray(boot), set()
    for i, line in enumerate(lines):
        if rng.random() < 0.3:
            pos = rng.randrange(len(line))
            noise = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
            line = line[:pos] + noise + line[pos:]
            touched.add(i)
        noisy += line
    return boot + b"".join(lines), bytes(noisy), touched


def _reader(data: bytes, rng: random.Random):
    """read(timeout) over data in random-sized pieces, with empty reads between; None at the end."""
    pos = 0

    def read(timeout):
        nonlocal pos
        if pos >= len(data):
            return None
        if rng.random() < 0.2:
            return b""
        n = rng.randint(1, 700)
        piece, pos = data[pos:pos + n], pos + n
        return piece

    return read


@pytest.mark.parametrize("seed", range(8))
def test_noise_never_breaks_the_tee_or_misreads_a_record(seed):
    rng = random.Random(seed)
    clean, noisy, touched = _stream(rng, 60)
    log = io.BytesIO()
    tee = ConsoleTee(_reader(noisy, rng), log)
    lines = [l for l in tee.lines(tick=0.05) if l is not None]
    tee.join(5)
    assert log.getvalue() == noisy, "the raw log is exactly what came in"
    got = {ev.loop: ev for ev in kmsg.parse_lines(lines) if isinstance(ev, kmsg.LoopRecord)}
    want = {ev.loop: ev for ev in kmsg.parse_lines(clean.decode().splitlines()) if isinstance(ev, kmsg.LoopRecord)}
    assert set(want) - touched <= set(got), "every record the noise missed is parsed"
    for loop, ev in got.items():
        assert (ev.outcome, ev.pa, ev.failed, ev.dur_us) == (want[loop].outcome, want[loop].pa, want[loop].failed,
                                                            want[loop].dur_us), f"loop {loop} misread"
