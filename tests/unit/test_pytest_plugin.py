"""The pytest plugin, as a developer's test suite sees it: pytester runs each test file in a pytest of its
own (a subprocess, so the harness modules are imported afresh there)."""

pytest_plugins = ["pytester"]


def test_cma_scenario_loads_the_given_yaml_and_cma_run_is_offered(pytester):
    pytester.makefile(".yaml", mine="module: {loops: 7}\nvariants: {stock: {}}\n")
    pytester.makepyfile(test_mine="""
        def test_it(cma_scenario, cma_run):
            assert cma_scenario.module.loops == 7 and callable(cma_run)
    """)
    pytester.runpytest_subprocess("--cma-scenario", "mine.yaml").assert_outcomes(passed=1)


def test_a_wrong_scenario_is_an_error_that_names_the_key(pytester):
    pytester.makefile(".yaml", bad="module: {loopz: 7}\n")
    pytester.makepyfile(test_bad="""
        def test_it(cma_scenario):
            pass
    """)
    result = pytester.runpytest_subprocess("--cma-scenario", "bad.yaml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*loopz*"])


def test_cma_run_refuses_to_reuse_a_kept_folder(pytester):
    pytester.mkdir("keep")
    pytester.mkdir("keep/first")
    pytester.makepyfile(test_keep="""
        import pytest
        from harness.spec.config import InputError

        def test_it(cma_run):
            with pytest.raises(InputError, match="exists already"):
                cma_run("stock", "first")
    """)
    pytester.runpytest_subprocess("--cma-out", "keep").assert_outcomes(passed=1)


def test_cma_board_loads_the_given_board_file_and_names_a_template_s_gaps(pytester):
    pytester.makepyfile(test_board="""
        def test_it(cma_board):
            assert cma_board.kind == "qemu-ssh" and cma_board.ssh.host == "127.0.0.1"
    """)
    pytester.runpytest_subprocess("--cma-board", "qemu-ssh").assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--cma-board", "beaglebone-black")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*is a template: fill in*ssh.host*"])


def test_the_cma_marker_refuses_an_argument_it_does_not_know(pytester):
    pytester.makepyfile(test_marker="""
        import pytest

        @pytest.mark.cma(loopz=3)
        def test_it(cma):
            pass
    """)
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*unknown argument 'loopz'*allowed: loops, variant*"])
