"""Scenario loading and validation: every error names the file, the key and what is allowed."""

import pytest

from harness.spec import config
from harness.core.errors import InputError


def test_embedded_default_mirrors_the_seed():
    scn = config.load()
    assert (scn.module.chunks, scn.module.chunk_kib, scn.area.size_mib) == (56, 1024, 56)
    assert scn.board.cpus >= 2, "the bh LRUs are per CPU: the seed's failure needs more than one"
    assert set(scn.variants) >= {"stock", "reintroduce-2012"}


def test_variant_inherits_the_scenario_kernel_and_overrides_fields():
    scn = config.from_dict({"kernel": {"fragments": ["virt-arm", "cma"]},
                            "variants": {"x": {"patches": "reintroduce-2012"}}})
    assert scn.variant("x").fragments == ("virt-arm", "cma")
    assert scn.variant("x").patches == "reintroduce-2012"


def _error(data, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(data)
    with pytest.raises(InputError) as e:
        config.load(path)
    return str(e.value)


@pytest.mark.parametrize("yaml_text, must_contain", [
    ("modul: {}\n", ["bad.yaml", "`modul`", "allowed keys here: name, board, kernel"]),
    ("module: {chunks: 99}\n", ["bad.yaml", "`module.chunks`", "1 to 64"]),
    ("module: {loops: ten}\n", ["`module.loops`", "must be an integer"]),
    ("module: {attribution: 1}\n", ["`module.attribution`", "true or false"]),
    ("workload: {profile: xfs}\n", ["`workload.profile`", "nojournal, journal, none"]),
    ("board: {cpus: 1}\n", ["`board.cpus`", "2 to 8"]),
    ("module: {fault: segv}\n", ["`module.fault`", "none, oops, panic, hang, warn"]),
    ("kernel: {fragments: virt-arm}\n", ["`kernel.fragments`", "must be a list"]),
    ("variants: {x: {patch: y}}\n", ["`variants.x.patch`", "allowed keys here: source, fragments, patches"]),
    ("module: [1, 2]\n", ["`module`", "must be a mapping"]),
    ("module: {chunks: 5\n", ["bad.yaml", "not valid YAML"]),
])
def test_bad_yaml_names_file_key_and_allowed_values(tmp_path, yaml_text, must_contain):
    msg = _error(yaml_text, tmp_path)
    for part in must_contain:
        assert part in msg, msg


def test_missing_file_says_so(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        config.load(tmp_path / "nope.yaml")


def test_unknown_variant_lists_the_known_ones():
    with pytest.raises(InputError, match="known variants: reintroduce-2012, remove-1, .*remove-3, stock"):
        config.load().variant("patched")


def test_the_seed_names_a_variant_for_every_patch_series():
    """Every series in kernel-configs/patches/ can be measured with `--variant`/`--baseline` by name."""
    from harness.build import kernel
    series = {p.parent.name for p in kernel.PATCHES_DIR.glob("*/series")}
    assert {v.patches for v in config.load().variants.values()} - {None} == series


def test_overrides_are_validated_like_yaml():
    scn = config.load()
    assert config.with_overrides(scn, "module", loops=5).module.loops == 5
    with pytest.raises(InputError, match="module.loops"):
        config.with_overrides(scn, "module", loops=0)


def test_an_omitted_key_means_the_seed_value():
    """A scenario that leaves a key out gets what the embedded default says, not some other number:
    the dataclass defaults and seed-2012.yaml must agree (they once differed on churn_workers)."""
    import dataclasses
    seed, bare = config.load(), config.Scenario()
    for section in ("board", "kernel", "area", "module", "workload", "trace"):
        assert dataclasses.asdict(getattr(seed, section)) == dataclasses.asdict(getattr(bare, section)), section
