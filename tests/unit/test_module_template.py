"""The test module template: parameters validated before rendering, StrictUndefined, fault code only on request."""

import dataclasses

import jinja2
import pytest

from harness.build import module
from harness.spec.config import ModuleSpec
from harness.core.errors import InputError


def test_renders_the_seed_loop_constants():
    src = module.render(ModuleSpec())
    c = src["cma_harness.c"]
    assert "#define CHUNKS 56\n" in c
    assert "#define CHUNK_SIZE 1048576UL\n" in c
    assert "static bool attribution = true;" in c
    assert src["Kbuild"].strip().endswith("obj-m := cma_harness.o")


def test_no_fault_injection_code_unless_asked():
    assert "injecting fault" not in module.render(ModuleSpec())["cma_harness.c"]
    c = module.render(ModuleSpec(fault="panic", fault_loop=3))["cma_harness.c"]
    assert "static unsigned int fault_loop = 3;" in c and 'panic("cma_harness: injected panic' in c
    assert "*(volatile int *)NULL" not in c


@pytest.mark.parametrize("bad", [dict(chunks=0), dict(chunks=65), dict(chunk_kib=2),
                                 dict(fault="rm -rf"), dict(cpu=-1), dict(gap_ms="1; evil()")])
def test_parameters_are_validated_before_rendering(bad):
    with pytest.raises(InputError):
        module.render(dataclasses.replace(ModuleSpec(), **bad))


def test_undefined_template_variable_is_an_error(monkeypatch):
    monkeypatch.setattr(module, "template_params", lambda spec: {"module_name": "x"})
    with pytest.raises(jinja2.UndefinedError):
        module.render(ModuleSpec())


def test_parameter_errors_name_the_key_and_board_rules_stay_with_the_scenario():
    with pytest.raises(InputError, match=r"`module.chunks` = 65 is out of range; allowed: 1 to 64"):
        module.render(dataclasses.replace(ModuleSpec(), chunks=65))
    # module.cpu against board.cpus is the scenario's rule (config.check): a module alone renders any CPU.
    assert "static int cpu = 5;" in module.render(ModuleSpec(cpu=5))["cma_harness.c"]
