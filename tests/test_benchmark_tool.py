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


# ------------------------------------------------ Fast and NAYER plain loops
FAST = 'configs/fast/fast_lenet5_lenet5half_1xb256_fashionmnist.py'
NAYER = 'configs/nayer/nayer_lenet5_lenet5half_1xb200_fashionmnist.py'
# the recipes at test sizes: small batches, two steps per synthesis task and
# two student steps, one warm-up iteration (the loss check's first
# iteration is then a warm-up one, its second a training one); the plain
# loops read every one of these from the built model
SMALL = {
    FAST: {
        'train_dataloader.batch_size': 64,
        'model.generator_iter': 2,
        'model.student_iter': 2,
        'model.warmup_iters': 1,
    },
    NAYER: {
        'train_dataloader.batch_size': 50,
        'model.generator.batch_size': 50,
        'model.generator.label_embeddings': osp.join(
            ROOT, 'configs/_base_/label_embeddings/'
            'fashion_mnist_all-minilm-l6-v2.pth'),
        'model.student_batch_size': 64,
        'model.generator_iter': 2,
        'model.student_iter': 2,
        'model.warmup_synthesis_loops': 2,
        'model.warmup_iters': 1,
    },
}
SYNTHESIS_LOSSES = {
    'generator.loss', 'generator.loss_bn', 'generator.loss_oh',
    'generator.loss_adv', 'generator.best_loss', 'student.loss_kd',
    'student.loss'
}


@pytest.fixture(scope='module')
def decisive_teacher(random_lenet5_teacher, tmp_path_factory):
    """A random LeNet-5 whose classifier weights are 100x larger: its
    predictions change from image to image, so that it agrees with the
    random student on some synthetic images and the agreement-masked
    adversarial term of Fast and NAYER is not zero (with the plain random
    teacher both networks predict one class each for every image)."""
    checkpoint = torch.load(random_lenet5_teacher, weights_only=True)
    checkpoint['state_dict']['head.fc.weight'] *= 100
    path = tmp_path_factory.mktemp('teacher') / 'lenet5_decisive.pth'
    torch.save(checkpoint, path)
    return str(path)


def check_synthesis(tool, config, teacher, iterations=2, **plain_overrides):
    options = dict(SMALL[config])
    options['model.teachers.teacher.ckpt_path'] = teacher
    cfg = tool.load_config(osp.join(ROOT, config), options,
                           random_teacher=False)
    with tool.registry_scope(cfg):
        return tool.check_plain_losses(
            tool.loss_check_config(cfg), torch.device('cpu'),
            iterations=iterations, plain_overrides=plain_overrides)


@pytest.mark.parametrize('config', [FAST, NAYER])
def test_plain_fast_and_nayer_compute_the_same_losses(tool, config,
                                                      decisive_teacher):
    """A warm-up iteration, then a training one (NAYER re-initialises its
    generator at its start): every loss, the meta-generator / generator
    and the student are bit-identical, and both loops drew the same random
    crops and noisy layers."""
    result = check_synthesis(tool, config, decisive_teacher)
    assert result['equal'], result['mismatches']
    assert set(result['losses']) == SYNTHESIS_LOSSES
    assert result['max_loss_diff'] == 0
    assert result['max_state_diff'] == 0
    # real values: the adversarial term and the student's KD included
    assert all(abs(ours) > 0 for ours, _ in result['losses'].values())


@pytest.mark.parametrize('config, attribute, value, expected', [
    (FAST, 'adv_weight', -1.0, 'generator.loss_adv'),
    (NAYER, 'kd_tau', 4.0, 'student.loss_kd'),
    (FAST, 'bn_momentum', None, 'generator.loss_bn'),
])
def test_synthesis_loss_check_catches_a_different_recipe(
        tool, config, attribute, value, expected, decisive_teacher):
    result = check_synthesis(tool, config, decisive_teacher,
                             **{attribute: value})
    assert not result['equal']
    assert any(expected in m for m in result['mismatches'])


def test_loss_check_catches_other_random_draws(tool, decisive_teacher):
    """A plain loop that also flips its synthesis views draws one more
    random number per image and step: the check says so (besides the
    losses it changes)."""
    from benchmarks.plain_synthesis import CropFlipNormalize
    flipping = CropFlipNormalize(padding=4, padding_value=0.0, flip=True,
                                 mean=(0.5, ), std=(0.5, ),
                                 device=torch.device('cpu'))
    result = check_synthesis(tool, FAST, decisive_teacher, iterations=1,
                             synthesis_view=flipping)
    assert any('other random numbers' in m for m in result['mismatches'])


@pytest.mark.parametrize('option, reason', [
    ({'model.meta_update.mode': 'reptile'}, "not Fast's loop"),
    ({'model.memory_bank.policy': 'reservoir'}, 'FIFO bank'),
    ({'model.synthesis_augmentation.color_jitter': {'brightness': 0.1}},
     'padded crop'),
])
def test_plain_loop_refuses_what_it_does_not_implement(tool, option, reason):
    cfg = tool.load_config(osp.join(ROOT, FAST),
                           dict(SMALL[FAST], **option), random_teacher=True)
    with tool.registry_scope(cfg):
        model, optim_wrapper = tool.build_training(cfg, torch.device('cpu'))
        with pytest.raises(SystemExit, match=reason):
            tool.build_plain_loop(model, optim_wrapper, cfg,
                                  torch.device('cpu'))


@pytest.mark.parametrize('config, plain_loop', [(FAST, 'PlainFast'),
                                                (NAYER, 'PlainNAYER')])
def test_tool_compares_fast_and_nayer_with_their_plain_loops(
        config, plain_loop, tmp_path):
    out = tmp_path / 'bench.json'
    options = [f'{k}={v}' for k, v in SMALL[config].items()]
    proc = run_tool([
        'tools/benchmark.py', config, '--random-teacher', '--iters', '1',
        '--warmup', '0', '--device', 'cpu', '--no-eval', '--compare-plain',
        '--blocks', '2', '--block-iters', '1', '--json', str(out),
        '--cfg-options', *options
    ])
    assert 'throughput ratio' in proc.stdout
    cp = json.loads(out.read_text())['compare_plain']
    assert cp['plain_loop'] == f'benchmarks/{plain_loop}'
    assert cp['loss_check']['equal'], cp['loss_check']['mismatches']
    assert set(cp['loss_check']['losses']) == SYNTHESIS_LOSSES
    assert len(cp['ratio_per_block']) == 2
    assert cp['ratio'] > 0 and cp['ratio_cpu_time'] > 0


# ------------------------------------------------- every method config
EVERY_METHOD = ('adadfkd', 'cmi', 'cpnet', 'cudfkd', 'dafl', 'deepinv',
                'dfad', 'dfq', 'fast', 'gapssg', 'nayer', 'ta_dfkd', 'zskt')


@pytest.mark.parametrize('method', EVERY_METHOD)
def test_tool_runs_every_method_config(tool, method, tmp_path):
    """Every method's Fashion-MNIST config (at its end-to-end test sizes)
    goes through the timed loop, both phases timed."""
    from test_exact_resume import tiny_method_run
    config, options = tiny_method_run(method, 'unused.pth', 4)
    out = tmp_path / 'bench.json'
    tool.main([
        osp.join(ROOT, config), '--random-teacher', '--iters', '1',
        '--warmup', '1', '--device', 'cpu', '--no-eval', '--json',
        str(out), '--cfg-options', *options
    ])
    r = json.loads(out.read_text())
    ms = r['time_ms_per_iteration']
    assert r['config'].endswith(config) and r['iters'] == 1
    assert ms['generator_phase'] > 0 and ms['student_phase'] > 0
    assert r['images_per_iteration'] > 0 and r['images_per_s'] > 0
    assert r['evaluation'] == {'skipped': '--no-eval'}
