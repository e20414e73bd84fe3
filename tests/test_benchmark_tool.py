"""tools/benchmark.py: the report it writes, its refusal to run without a
teacher checkpoint, and the proof behind its overhead floor, i.e. that the
plain-PyTorch loops of benchmarks/ compute exactly mmdfkd's losses."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from conftest import ROOT, run_tool

from mmdfkd.utils import register_all_modules

DAFL = 'configs/dafl/dafl_lenet5_lenet5half_1xb128_fashionmnist.py'
DFAD = 'configs/dfad/dfad_lenet5_lenet5half_1xb128_fashionmnist.py'


def load_benchmark_tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_tool', osp.join(ROOT, 'tools', 'benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('config, draws, compare', [(DAFL, 1, True),
                                                     (DFAD, 6, False)])
def test_tool_writes_the_documented_json(config, draws, compare, tmp_path):
    out = tmp_path / 'bench.json'
    # the plain comparison runs on DAFL only, to keep the test short; both
    # recipes' loss equality is tested in-process below
    extra = ['--compare-plain', '--blocks', '2', '--block-iters', '1'
             ] if compare else []
    proc = run_tool([
        'tools/benchmark.py', config, '--random-teacher', '--iters', '2',
        '--warmup', '1', '--device', 'cpu', '--eval-batches', '1', '--json',
        str(out), *extra
    ])
    assert 'iterations/s' in proc.stdout
    r = json.loads(out.read_text())
    assert r['batch_size'] == 128 and r['draws_per_iteration'] == draws
    assert r['images_per_iteration'] == 128 * draws
    assert r['iters'] == 2 and r['random_teacher'] is True
    assert r['images_per_s'] == pytest.approx(r['iterations_per_s'] * 128 *
                                              draws)
    ms = r['time_ms_per_iteration']
    parts = ('data', 'generator_phase', 'student_phase', 'other')
    assert all(ms[k] >= 0 for k in parts)
    # both phases ran and were timed; with the rest they make the total
    assert ms['generator_phase'] > 0 and ms['student_phase'] > 0
    assert sum(ms[k] for k in parts) == pytest.approx(ms['total'])
    assert ms['total'] == pytest.approx(1000 / r['iterations_per_s'])
    assert r['peak_memory_kind'] == 'rss'
    assert r['peak_memory_mib'] >= r['rss_before_build_mib'] > 0
    evaluation = r['evaluation']
    if 'skipped' not in evaluation:  # without the test set it is skipped
        assert evaluation['batches'] == 1 and evaluation['images'] > 0
        assert 'accuracy/top1' in evaluation['metrics']
    if compare:
        assert 'throughput ratio' in proc.stdout
        cp = r['compare_plain']
        assert cp['loss_check']['equal']
        assert len(cp['ratio_per_block']) == 2
        assert cp['ratio'] > 0 and cp['ratio_cpu_time'] > 0
        assert cp['plain_iterations_per_s'] > 0
    else:
        assert 'compare_plain' not in r


@pytest.fixture(scope='module')
def tool():
    register_all_modules(init_default_scope=False)
    return load_benchmark_tool()


def test_missing_teacher_checkpoint_is_a_clear_error(tool, tmp_path):
    missing = str(tmp_path / 'no_teacher.pth')
    options = {'model.teachers.teacher.ckpt_path': missing}
    with pytest.raises(SystemExit, match='--random-teacher') as error:
        tool.load_config(osp.join(ROOT, DAFL), options, random_teacher=False)
    assert missing in str(error.value)
    # with the flag the teacher keeps random weights instead
    cfg = tool.load_config(osp.join(ROOT, DAFL), options, random_teacher=True)
    assert cfg.model.teachers.teacher.ckpt_path is None


def check(tool, config, iterations=2, **plain_overrides):
    cfg = tool.load_config(osp.join(ROOT, config), None, random_teacher=True)
    with tool.registry_scope(cfg):
        return tool.check_plain_losses(
            cfg, torch.device('cpu'), iterations=iterations,
            plain_overrides=plain_overrides)


@pytest.mark.parametrize('config, expected', [
    (DAFL, {'generator.loss_onehot', 'generator.loss_activation',
            'generator.loss_entropy', 'generator.loss', 'student.loss_kd',
            'student.loss'}),
    (DFAD, {'student.loss_l1', 'student.loss', 'generator.loss_adv',
            'generator.loss'}),
])
def test_plain_loop_computes_the_same_losses(tool, config, expected):
    result = check(tool, config)
    assert result['equal'], result['mismatches']
    assert set(result['losses']) == expected
    assert result['max_loss_diff'] <= 1e-5
    assert result['max_state_diff'] <= 1e-5
    # the losses are not trivially equal: they are real, non-zero values
    assert all(abs(ours) > 0 for ours, _ in result['losses'].values())


@pytest.mark.parametrize('config, attribute, value, loss', [
    (DAFL, 'entropy_weight', 4.0, 'generator.loss_entropy'),
    (DFAD, 'student_weight', 0.5, 'student.loss_l1'),
])
def test_loss_check_catches_a_different_recipe(tool, config, attribute,
                                               value, loss):
    result = check(tool, config, iterations=1, **{attribute: value})
    assert not result['equal']
    assert any(loss in m for m in result['mismatches'])
