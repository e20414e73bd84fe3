"""tools/analysis/benchmark_table.py: the Markdown tables of
docs/benchmark.md, made from tools/benchmark.py's JSON reports."""
import importlib.util
import json
import os.path as osp

import pytest
from conftest import ROOT


def load_table_tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_table', osp.join(ROOT, 'tools', 'analysis',
                                    'benchmark_table.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(config, compare=None):
    r = dict(config=config, batch_size=128, draws_per_iteration=6,
             iterations_per_s=1.25, images_per_s=960.0,
             time_ms_per_iteration=dict(data=1.0, generator_phase=300.0,
                                        student_phase=495.0, other=4.0,
                                        total=800.0),
             peak_memory_mib=960.4,
             evaluation=dict(ms_per_train_iteration=13.6))
    if compare:
        r['compare_plain'] = compare
    return r


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return str(path)


def test_tables_from_reports(tmp_path, capsys):
    tool = load_table_tool()
    compare = dict(plain_loop='benchmarks/PlainDFAD', blocks=20,
                   block_iters=2, ratio=0.991, ratio_cpu_time=0.9903,
                   loss_check=dict(equal=True, max_loss_diff=0.0,
                                   max_state_diff=2e-7))
    paths = [
        write(tmp_path, 'b.json', report('configs/x/b_cfg.py', compare)),
        write(tmp_path, 'a.json', dict(report('configs/x/a_cfg.py'),
                                       evaluation=dict(skipped='no data'))),
    ]
    assert tool.main(paths) == 0
    lines = capsys.readouterr().out.splitlines()
    # sorted by config; generator / student / other + data milliseconds
    assert lines[2] == ('| a_cfg | 128 x 6 | 1.250 | 960.0 | 300.0 | 495.0 '
                        '| 5.0 | 960 | skipped |')
    assert lines[3].endswith('| 960 | 13.6 |')
    assert lines[4] == ''
    assert lines[7] == ('| b_cfg | `benchmarks/PlainDFAD` | 20 x 2 '
                        '| **0.990** | 0.991 | yes (2e-07) |')
    assert len(lines) == 8


def test_ratio_table_needs_a_compared_report(tmp_path):
    tool = load_table_tool()
    path = write(tmp_path, 'a.json', report('configs/x/a_cfg.py'))
    with pytest.raises(SystemExit, match='--compare-plain'):
        tool.main([path, '--table', 'ratio'])


def test_refuses_a_file_that_is_not_a_report(tmp_path):
    tool = load_table_tool()
    path = write(tmp_path, 'metrics.json', {'accuracy/top1': 80.0})
    with pytest.raises(SystemExit, match='not a tools/benchmark.py report'):
        tool.main([path])
