"""Exact boot-level permutation test of an A/B campaign: whole boots swap arms, p-values counted exactly."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

Boot = tuple[int, int]          # (failed loops, loops) of one boot
Boots = Sequence[Boot]


@dataclass(frozen=True)
class BootTest:
    """The two one-sided p-values of one look, exact fractions of the arrangements counted."""
    p_fixed: Fraction           # share of arrangements where the baseline boots fail at least as much as observed
    p_regression: Fraction      # share where they fail at most as much (the patched boots at least as much)
    arrangements: int           # relabellings counted (the product over strata of C(boots, baseline boots))
    baseline_boots: int         # boots with at least one loop, per arm
    patched_boots: int


def clean(boots: Iterable[Boot]) -> tuple[Boot, ...]:
    """Boots as (failed, loops) integer pairs, zero-loop boots dropped; a count out of range is an error."""
    out = []
    for e, n in boots:
        e, n = int(e), int(n)
        if n < 0 or not 0 <= e <= max(n, 0):
            raise ValueError(f"a boot must have 0 <= failed <= loops, got ({e}, {n})")
        if n > 0:
            out.append((e, n))
    return tuple(out)


def boot_test(baseline: Boots, patched: Boots) -> BootTest:
    """Exact one-sided p-values with the boot as the unit (fixed: patched fails less; regression: more).

    Statistic: the baseline arm's failed loops. Boots are grouped into strata by their length; within a
    stratum the arm labels are permuted, each arm keeping its number of boots there, so each arm keeps its
    loops and the statistic orders arrangements exactly as the difference of the pooled rates does. The
    p-value is the share of all such arrangements whose statistic is at least (at most) the observed one,
    counted by a dynamic program over subset sums: integers throughout, no sampling, no floor.

    Validity, whatever the correlation of the loops within a boot: under H0 (both arms the same kernel,
    boots independent, a boot's count distributed according to its length only), given the multiset of counts
    in each stratum every arrangement of the labels is equally likely, so P(p <= a) <= a for every a; a boot
    is one draw, however its loops depend on each other. Zero-loop boots carry nothing and are ignored; one
    boot per arm gives p >= 1/2.
    """
    return _boot_test(_key(clean(baseline), clean(patched)))


def _key(baseline: tuple[Boot, ...], patched: tuple[Boot, ...]):
    """A canonical, hashable form: per length, the sorted counts of each arm."""
    strata: dict[int, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for e, n in baseline:
        strata[n][0].append(e)
    for e, n in patched:
        strata[n][1].append(e)
    return tuple((n, tuple(sorted(a)), tuple(sorted(b))) for n, (a, b) in sorted(strata.items()))


# Counting modulo primes below 2^50 keeps every numpy sum of at most 2^12 residues inside int64; the counts
# themselves, each below the product of the primes used, come back exactly by the Chinese remainder theorem.
_PRIMES = (1125899906842597, 1125899906842589, 1125899906842573, 1125899906842553, 1125899906842511,
           1125899906842507, 1125899906842493, 1125899906842463)       # the eight largest below 2^50


@lru_cache(maxsize=20_000)
def _boot_test(key) -> BootTest:
    if not key:
        return BootTest(Fraction(1), Fraction(1), 1, 0, 0)
    nb = sum(len(a) for _, a, _ in key)
    np_ = sum(len(b) for _, _, b in key)
    observed = sum(sum(a) for _, a, _ in key)
    cap = observed + 1                      # sums of cap or more share one bucket: only the tails are needed
    total = math.prod(math.comb(len(a) + len(b), len(a)) for _, a, b in key)
    rows = [_subset_sums(tuple(a) + tuple(b), len(a), cap) for _, a, b in key]
    if len(rows) == 1:                      # one stratum: only two counts need rebuilding
        at_least, beyond = _crt(rows[0][:, observed]) + _crt(rows[0][:, cap]), _crt(rows[0][:, cap])
    else:
        dist = [_crt(r) for r in rows[0].T]
        for row in rows[1:]:
            dist = _saturated_product(dist, [_crt(r) for r in row.T], cap)
        at_least, beyond = dist[observed] + dist[cap], dist[cap]
    return BootTest(Fraction(at_least, total), Fraction(total - beyond, total), total, nb, np_)


def _saturated_product(x: list[int], y: list[int], cap: int) -> list[int]:
    """The distribution of the sum of two independent choices, sums of cap or more in the last bucket."""
    out = [0] * (cap + 1)
    for i, u in enumerate(x):
        if u:
            for j, v in enumerate(y):
                out[min(i + j, cap)] += u * v
    return out


def _subset_sums(counts: tuple[int, ...], m: int, cap: int) -> np.ndarray:
    """ways[s] for s < cap: the m-subsets of counts (as positions) summing to s; ways[cap]: those summing to
    cap or more. A dynamic program over the boots, in int64: plain when every count it holds (at most
    C(len(counts), m') for m' <= m) fits, else modulo a few primes, the counts rebuilt by the Chinese
    remainder theorem (_crt). Returned as residues: one row per prime used, one column per sum."""
    n = len(counts)
    largest = math.comb(n, min(m, n // 2))
    plain = largest < 2 ** 62
    need = 1 if plain else largest.bit_length() // 49 + 1       # the primes' product exceeds every count
    if need > len(_PRIMES):
        raise ValueError(f"too many boots for the exact test: {n} boots of one length")
    primes = np.array(_PRIMES[:need], dtype=np.int64)[:, None, None]
    ways = np.zeros((need, m + 1, cap + 1), dtype=np.int64)
    ways[:, 0, 0] = 1
    bound = 1                                   # every entry is below this (modular: reduce before 2^62)
    for i, e in enumerate(counts):
        lo, hi = max(1, m - (n - 1 - i)), min(i + 1, m)      # rows that can still reach m, and are reachable
        if lo > hi:
            continue
        terms = 1 + min(e, cap) + 1             # an entry gains at most this many entries (the top bucket)
        if not plain and bound * terms >= 2 ** 62:
            np.remainder(ways, primes, out=ways)
            bound = _PRIMES[0]
        old = ways[:, lo - 1:hi, :].copy()
        new = ways[:, lo:hi + 1, :]
        if e == 0:
            new += old
        else:
            if e < cap:
                new[:, :, e:cap] += old[:, :, :cap - e]
            tail = old[:, :, max(0, cap - e):]
            for start in range(0, tail.shape[2], 4096):         # at most 2^12 residues per int64 sum
                new[:, :, cap] += tail[:, :, start:start + 4096].sum(axis=2)
                if not plain:
                    np.remainder(new[:, :, cap], primes[:, :, 0], out=new[:, :, cap])
        bound *= terms
    if not plain:
        np.remainder(ways, primes, out=ways)
    return ways[:, m, :]


def _crt(residues: np.ndarray) -> int:
    """The integer below the product of the first len(residues) primes with these residues."""
    x = int(residues[0])
    for i in range(1, len(residues)):
        p = _PRIMES[i]
        x += _MODULI[i] * ((int(residues[i]) - x) * _INVERSES[i] % p)
    return x


_MODULI = [math.prod(_PRIMES[:i]) for i in range(len(_PRIMES))]
_INVERSES = [pow(_MODULI[i], -1, _PRIMES[i]) if i else 1 for i in range(len(_PRIMES))]


def smallest_p(boots_per_arm: int) -> Fraction:
    """The smallest p-value any data can give with that many boots of one length in each arm: 1/C(2k, k)."""
    return Fraction(1, math.comb(2 * boots_per_arm, boots_per_arm)) if boots_per_arm > 0 else Fraction(1)


def p_fixed_if_perfect(baseline: Boots, patched: Boots) -> Fraction:
    """p_fixed had every patched boot failed no loop: the strongest `fixed` these baseline boots allow."""
    return boot_test(baseline, [(0, n) for _, n in clean(patched)]).p_fixed
