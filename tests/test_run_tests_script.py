"""tools/run_tests.sh, the README's test command and what CI runs: it spreads
the suite over PYTEST_WORKERS pytest-xdist workers and fails on an empty
selection (pytest's exit code 5), so a broken collection cannot pass CI."""
import subprocess
import sys

from conftest import ROOT, tool_env


def run_script(*pytest_args, workers):
    env = dict(tool_env(), PYTHON=sys.executable, PYTEST_WORKERS=workers)
    return subprocess.run(['bash', 'tools/run_tests.sh', *pytest_args],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


def test_two_workers_and_an_empty_selection_fails():
    proc = run_script('-k', 'no_test_is_named_like_this', workers='2')
    log = proc.stdout + proc.stderr
    assert 'created: 2/2 workers' in log, log[-3000:]
    assert proc.returncode == 1, log[-3000:]
    assert 'pytest collected no tests (exit code 5)' in log


def test_zero_workers_runs_in_one_process():
    proc = run_script('-k', 'test_image_l2_norm', workers='0')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'workers' not in proc.stdout
    assert ' passed' in proc.stdout


def test_longest_files_are_collected_first():
    from pathlib import Path
    from types import SimpleNamespace

    from conftest import pytest_collection_modifyitems

    def item(name, test):
        return SimpleNamespace(path=Path('tests') / name, test=test)

    items = [item('test_a.py', 1), item('test_teacher_robustness.py', 2),
             item('test_a.py', 3), item('test_real_data.py', 4),
             item('test_real_data.py', 5), item('test_z.py', 6)]
    pytest_collection_modifyitems(items)
    assert [i.test for i in items] == [4, 5, 2, 1, 3, 6]
