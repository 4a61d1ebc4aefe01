"""Each run folder names its kernel exactly (kernel.json): cache key, source (tarball sha256, commit id or
directory digest), every patch by sha256 and subject; the report's provenance and `ab`'s output show it
per arm, so two arms' kernels can always be told apart."""

import json

import pytest

from harness.build import kernel, kernel_record
from harness.build.kernel import KernelBuild
from harness.present import kernels, report
from harness.spec.config import KernelSpec
from harness.store import names
from tests.conftest import ROOT
from tests.unit import fake_kernel as fk

FIX2 = next((ROOT / "kernel-configs/patches/fixes").glob("0002-*.patch"))


@pytest.fixture
def built(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    tree = tmp_path / "store" / "k" / "tree"
    (tree / "include/config").mkdir(parents=True)
    (tree / "include/config/kernel.release").write_text("6.1.99\n")
    return KernelBuild("k" * 24, tree)


def test_the_record_names_the_source_series_and_each_patch(tmp_path, built):
    tarball = fk.tarball(tmp_path)
    spec = KernelSpec(source=str(tarball), patches="reintroduce-2012", extra_patches=(str(FIX2),))
    r = kernel_record.describe(spec, built)
    assert r["key"] == "k" * 24 and r["release"] == "6.1.99" and r["series"] == "reintroduce-2012"
    assert r["source_identity"] == "tar:" + __import__("hashlib").sha256(tarball.read_bytes()).hexdigest()
    assert [p["from"] for p in r["patches"]] == ["series"] * 3 + ["developer"]
    assert r["patches"][0]["file"] == "patches/defences/0001-buffer-let-bh_lru_install-pin-during-lru_cache_disable.patch"
    dev = r["patches"][-1]
    assert dev["subject"] == "mm/swap: drain the bh LRUs in lru_cache_disable() again" and len(dev["sha256"]) == 64
    assert "tarball" in kernels.source_text(r) and tarball.name in kernels.source_text(r)


@fk.needs_git
def test_a_commit_is_named_by_its_id(tmp_path, built):
    repo = fk.repository(tmp_path)
    head = fk.git(repo, "rev-parse", "HEAD").strip()
    r = kernel_record.describe(KernelSpec(source=f"git:{repo}@{head}"), built)
    assert r["commit"] == head and kernels.source_text(r).startswith(f"commit {head} of {repo} (tree ")


def _campaign(folder, records):
    (folder / names.CAMPAIGN).parent.mkdir(parents=True, exist_ok=True)
    (folder / names.CAMPAIGN).write_text("{}")
    for run, record in records.items():
        (folder / names.RUNS / run).mkdir(parents=True)
        (folder / names.RUNS / run / names.KERNEL_RECORD).write_text(json.dumps(record))


def test_each_arm_of_a_campaign_shows_its_own_kernel(tmp_path):
    rec = lambda key, patches: {"key": key, "release": "6.1.192", "source": "/usr/src/linux-source-6.1.tar.xz",
                                "source_identity": "tar:" + "a" * 64, "series": "reintroduce-2012",
                                "patches": patches}
    fix = {"from": "developer", "subject": "mm/swap: fix", "sha256": "b" * 64}
    _campaign(tmp_path, {"000-reintroduce-2012": rec("k1", []), "001-reintroduce-2012+patches": rec("k2", [fix]),
                         "002-reintroduce-2012": rec("k1", [])})
    arms = kernels.arm_kernels(tmp_path)
    assert {a: r["key"] for a, r in arms.items()} == {"reintroduce-2012": "k1", "reintroduce-2012+patches": "k2"}
    lines = kernels.kernel_lines(arms)
    assert lines[0].startswith("kernel reintroduce-2012: key k1, Linux 6.1.192, tarball /usr/src/linux-source-6.1")
    assert lines[-1] == f"  patch 1: {'b' * 16} mm/swap: fix [developer]"
    prov = report.provenance(tmp_path)
    assert prov["kernels"]["reintroduce-2012+patches"]["key"] == "k2"
    rows = dict(kernels.html_rows(prov["kernels"]))
    assert rows["kernel of reintroduce-2012+patches: cache key"] == "k2"
