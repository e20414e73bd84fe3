"""Schedule controls of ``DataFreeDistillation``: warm-up without student
steps, several synthesis loops per iteration, generator re-initialisation
every ``g_life`` iterations or every loop, noisy layers re-drawn before
every synthesised batch, BN running averages folded once per batch, and the
BN recorder active only during synthesis. A tiny LeNet pair with random
weights keeps every test fast."""
import copy

import pytest
import torch
from mmengine.runner.checkpoint import load_state_dict as mmengine_load

import mmdfkd.models.algorithms.data_free_distillation as dfd_module
from mmdfkd.engine.optimizers import SeparateOptimWrapperConstructor
from mmdfkd.models.generators import NoisyLinear
from mmdfkd.models.losses import BNStatisticsLoss
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

BATCH = 20
LATENT = 8
_TEACHER_LOGITS = dict(type='ModuleOutputs', source='teacher.head.fc')
_STUDENT_LOGITS = dict(logits=dict(type='ModuleOutputs', source='head.fc'))
_LOGIT_PAIR = dict(
    preds_S=dict(from_student=True, recorder='logits'),
    preds_T=dict(from_student=False, recorder='logits'))


def _dafl_generator():
    return dict(type='DAFLGenerator', img_size=32, latent_dim=LATENT,
                hidden_channels=8, out_channels=1, bn_eps=1e-5,
                final_activation='sigmoid', final_norm=None)


def _noisy_generator():
    return dict(type='NoisyLayerGenerator',
                label_embeddings=torch.randn(10, 12).tolist(),
                batch_size=BATCH, img_size=32, out_channels=1,
                hidden_channels=4, noise_dim=16)


def build(generator=None, momentum=0.9, **overrides):
    """A DFQ/Fast-like algorithm: BN (with momentum) + class prior +
    adversarial generator losses, KL student loss."""
    cfg = dict(
        type='DataFreeDistillation',
        architecture=dict(
            cfg_path='mmdfkd::_base_/models/lenet5_half_fashionmnist.py'),
        teachers=dict(teacher=dict(build_cfg=dict(
            cfg_path='mmdfkd::_base_/models/lenet5_fashionmnist.py'))),
        generator=generator or _dafl_generator(),
        generator_distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=_STUDENT_LOGITS,
            teacher_recorders=dict(
                bn=dict(type='BNStatisticsRecorder', source='teacher'),
                logits=_TEACHER_LOGITS),
            distill_losses=dict(
                loss_bn=dict(type='BNStatisticsLoss', loss_weight=1.0,
                             momentum=momentum),
                loss_oh=dict(type='CrossEntropyLoss', loss_weight=0.5),
                loss_adv=dict(type='KLDivergence', loss_weight=-1.0,
                              teacher_detach=False)),
            loss_forward_mappings=dict(
                loss_bn=dict(bn_stats=dict(from_student=False,
                                           recorder='bn')),
                loss_oh=dict(
                    cls_score=dict(from_student=False, recorder='logits'),
                    label=dict(from_data='targets')),
                loss_adv=_LOGIT_PAIR)),
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=_STUDENT_LOGITS,
            teacher_recorders=dict(logits=_TEACHER_LOGITS),
            distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=4.0)),
            loss_forward_mappings=dict(loss_kd=_LOGIT_PAIR)))
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    optim = SeparateOptimWrapperConstructor(
        dict(architecture=dict(optimizer=dict(type='SGD', lr=0.01)),
             generator=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)
    return model, optim


def latent_batch(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    draws = model.draws_per_iteration
    return dict(latents=torch.randn(BATCH, draws, LATENT, generator=g),
                targets=torch.randint(10, (BATCH, draws), generator=g))


def _state(module):
    return copy.deepcopy(module.state_dict())


def _changed(module, before):
    return any(not torch.equal(v, before[k])
               for k, v in module.state_dict().items())


def _spy(monkeypatch, model, name):
    """Count calls of a method (recording train_iter at each call)."""
    calls = []
    original = getattr(model, name)

    def wrapper(*args, **kwargs):
        calls.append(int(model.train_iter))
        return original(*args, **kwargs)

    monkeypatch.setattr(model, name, wrapper)
    return calls


# --------------------------------------------------------------------------
# warm-up
# --------------------------------------------------------------------------
def test_warmup_skips_student_steps_and_disabled_losses():
    model, optim = build(warmup_iters=2, warmup_disabled_losses=['loss_adv'],
                         student_iter=2)
    for it in range(3):
        student = _state(model.architecture)
        generator = _state(model.generator)
        logs = model.train_step(latent_batch(model, it), optim)
        assert _changed(model.generator, generator)
        if it < 2:
            assert not _changed(model.architecture, student), it
            assert not [k for k in logs if k.startswith('student.')]
            assert 'generator.loss_adv' not in logs
            assert 'generator.loss_bn' in logs
        else:
            assert _changed(model.architecture, student)
            assert 'student.loss_kd' in logs
            assert 'generator.loss_adv' in logs
    assert int(model.train_iter) == 3 and not model.in_warmup


def test_warmup_argument_checks():
    with pytest.raises(KeyError, match='loss_typo'):
        build(warmup_iters=1, warmup_disabled_losses=['loss_typo'])
    with pytest.raises(ValueError, match='every'):
        build(warmup_iters=1,
              warmup_disabled_losses=['loss_bn', 'loss_oh', 'loss_adv'])
    with pytest.raises(ValueError, match='warmup_iters'):
        build(warmup_iters=-1)
    with pytest.raises(ValueError, match='generator_reinit_interval'):
        build(generator_reinit_interval=0)


# --------------------------------------------------------------------------
# synthesis loops
# --------------------------------------------------------------------------
def test_synthesis_loops_per_iteration_and_during_warmup(monkeypatch):
    model, optim = build(warmup_iters=1, synthesis_loops=2,
                         warmup_synthesis_loops=3, generator_iter=2,
                         student_iter=1)
    # warm-up: 3 loops x 2 steps = 6 draws; afterwards 2 x 2 + 1 = 5
    assert model.draws_per_iteration == 6
    loops = _spy(monkeypatch, model, 'begin_synthesis_loop')
    steps = _spy(monkeypatch, model, 'generator_step')
    for it in range(2):
        model.train_step(latent_batch(model, it), optim)
    assert loops == [0, 0, 0, 1, 1]
    assert steps == [0] * 6 + [1] * 4


def test_one_draw_per_synthesis_loop(monkeypatch):
    model, optim = build(synthesis_loops=2, generator_iter=3,
                         draw_per_synthesis_loop=True, student_iter=1)
    assert model.draws_per_iteration == 2 + 1
    seen = []
    original = model.generator_step

    def record(latents, targets, wrapper):
        seen.append(latents.clone())
        return original(latents, targets, wrapper)

    monkeypatch.setattr(model, 'generator_step', record)
    model.train_step(latent_batch(model), optim)
    assert len(seen) == 6
    # the 3 steps of a loop optimise one batch; the two loops differ
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[1], seen[2])
    assert torch.equal(seen[3], seen[5])
    assert not torch.equal(seen[0], seen[3])


def test_bn_history_takes_one_batch_per_loop():
    model, optim = build(synthesis_loops=3, generator_iter=2)
    loss, = model.bn_momentum_losses()
    assert isinstance(loss, BNStatisticsLoss)
    model.train_step(latent_batch(model), optim)
    assert int(loss.num_history_updates) == 3
    # LeNet-5 has 4 BN layers (3 BatchNorm2d, 1 BatchNorm1d)
    assert loss.num_history_layers == 4


# --------------------------------------------------------------------------
# re-initialisation
# --------------------------------------------------------------------------
@pytest.mark.parametrize('warmup, life, expected', [
    (0, 2, [2, 4, 6, 8]),
    (3, 4, [3, 4, 7, 8]),  # NAYER: (t - warmup) % g_life or t % g_life
    (0, None, []),
])
def test_reinit_every_g_life_iterations(monkeypatch, warmup, life, expected):
    model, optim = build(warmup_iters=warmup,
                         generator_reinit_interval=life, student_iter=1)
    calls = _spy(monkeypatch, model, 'reinitialize_generator')
    for it in range(9):
        model.train_step(latent_batch(model, it), optim)
    assert calls == expected


def test_reinitialize_generator_draws_new_weights_and_clears_state():
    model, optim = build(synthesis_loops=2)
    model.train_step(latent_batch(model), optim)
    loss, = model.bn_momentum_losses()
    wrapper = optim['generator']
    assert wrapper.optimizer.state  # Adam moments exist
    before = _state(model.generator)
    model.reinitialize_generator(wrapper)
    assert not wrapper.optimizer.state
    after = model.generator.state_dict()
    assert not torch.equal(after['fc.weight'], before['fc.weight'])
    # BatchNorm running statistics are reset too
    assert torch.equal(after['input_bn.0.running_mean'],
                       torch.zeros_like(before['input_bn.0.running_mean']))
    # by default the BN-loss history persists (as in Fast/NAYER) ...
    assert int(loss.num_history_updates) == 2
    # ... unless asked
    model.reinitialize_generator(wrapper, reset_bn_history=True)
    assert int(loss.num_history_updates) == 0 and loss.history() == []
    model.reset_bn_history_on_reinit = True
    model.train_step(latent_batch(model, 1), optim)
    model.reinitialize_generator(wrapper)
    assert loss.history() == []


def test_reinitialize_generator_applies_init_cfg_again():
    generator = dict(_dafl_generator(),
                     init_cfg=dict(type='Constant', layer='Linear', val=0.5))
    model, optim = build(generator=generator)
    assert torch.all(model.generator.fc.weight == 0.5)
    model.train_step(latent_batch(model), optim)
    assert not torch.all(model.generator.fc.weight == 0.5)
    model.reinitialize_generator(optim['generator'])
    assert torch.all(model.generator.fc.weight == 0.5)


def test_reinit_every_synthesis_loop(monkeypatch):
    """CMI: a fresh generator for every synthesised batch."""
    model, optim = build(synthesis_loops=3, generator_iter=2,
                         reinit_generator_every_loop=True)
    calls = _spy(monkeypatch, model, 'reinitialize_generator')
    model.train_step(latent_batch(model), optim)
    assert calls == [0, 0, 0]


def test_optimizer_reset_every_loop(monkeypatch):
    model, optim = build(synthesis_loops=2, generator_iter=2,
                         reset_generator_optimizer_every_loop=True)
    sizes = []
    original = model.synthesis_loop

    def record(wrapper):
        sizes.append(len(wrapper.optimizer.state))
        return original(wrapper)

    monkeypatch.setattr(model, 'synthesis_loop', record)
    model.train_step(latent_batch(model), optim)
    assert sizes == [0, 0]  # each batch starts with a fresh Adam


def test_reinit_under_ddp_broadcasts_rank0_weights(monkeypatch):
    model, optim = build()
    broadcasts = []
    monkeypatch.setattr(dfd_module, 'get_world_size', lambda: 2)
    monkeypatch.setattr(dfd_module, 'broadcast',
                        lambda tensor, src: broadcasts.append(src))
    model.reinitialize_generator(optim['generator'])
    n = len(list(model.generator.parameters())) + len(
        list(model.generator.buffers()))
    assert broadcasts == [0] * n


# --------------------------------------------------------------------------
# noisy layers (NAYER)
# --------------------------------------------------------------------------
def test_noisy_layers_are_redrawn_before_every_batch(monkeypatch):
    model, optim = build(generator=_noisy_generator(), synthesis_loops=3,
                         generator_iter=2, draw_per_synthesis_loop=True,
                         reset_generator_optimizer_every_loop=True)
    layer = model.generator.noisy_layer
    assert isinstance(layer, NoisyLinear) and layer.num_layers == 2
    starts, ends = [], []
    original = model.synthesis_loop

    def record(wrapper):
        starts.append((layer.weight.detach().clone(),
                       layer.bias.detach().clone()))
        logs = original(wrapper)
        ends.append(layer.weight.detach().clone())
        return logs

    monkeypatch.setattr(model, 'synthesis_loop', record)
    model.train_step(latent_batch(model), optim)
    assert len(starts) == 3
    for k, (weight, bias) in enumerate(starts):
        assert torch.equal(bias, torch.zeros_like(bias))  # zero bias
        assert abs(weight.std().item() - 1) < 0.2  # N(0, 1)
        # trained during the batch, then re-drawn (not continued)
        assert not torch.equal(ends[k], weight)
        if k:
            assert not torch.equal(weight, ends[k - 1])
            assert not torch.equal(weight, starts[k - 1][0])


def test_noisy_redraw_can_be_switched_off():
    model, optim = build(generator=_noisy_generator(), synthesis_loops=2,
                         generator_iter=1, redraw_noisy_layers=False,
                         draw_per_synthesis_loop=True)
    layer = model.generator.noisy_layer
    bias_before = layer.bias.detach().clone()
    model.train_step(latent_batch(model), optim)
    # trained, never re-drawn: the bias moved away from zero
    assert not torch.equal(layer.bias.detach(), bias_before)


# --------------------------------------------------------------------------
# BN recorder only during synthesis; state for resume
# --------------------------------------------------------------------------
def test_bn_statistics_are_computed_only_during_synthesis(monkeypatch):
    model, optim = build(student_iter=3)
    model._set_draws(latent_batch(model))
    calls = []
    original = torch.var_mean

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, 'var_mean', counting)
    model.generator_phase(optim)
    per_synthesis = len(calls)
    assert per_synthesis == 4  # one per teacher BN layer
    model.student_phase(optim)  # 3 steps, teacher forward each time
    assert len(calls) == per_synthesis


def test_schedule_state_is_restored_with_the_model():
    model, optim = build(warmup_iters=5, synthesis_loops=2)
    for it in range(3):
        model.train_step(latent_batch(model, it), optim)
    state = copy.deepcopy(model.state_dict())
    assert int(state['train_iter']) == 3
    keys = [k for k in state if '.history_' in k]
    assert len(keys) == 8 and all(
        k.startswith('generator_distiller.distill_losses.loss_bn.')
        for k in keys)
    resumed, _ = build(warmup_iters=5, synthesis_loops=2)
    mmengine_load(resumed, state, strict=True)
    assert int(resumed.train_iter) == 3 and resumed.in_warmup
    ours = model.bn_momentum_losses()[0].history()
    theirs = resumed.bn_momentum_losses()[0].history()
    for (m1, v1), (m2, v2) in zip(ours, theirs, strict=True):
        assert torch.equal(m1, m2) and torch.equal(v1, v2)


def test_redraw_keeps_mmengine_init_report_out_of_the_log(tmp_path):
    """A re-draw must not append mmengine's per-parameter initialisation
    report to the log file (CMI re-draws every iteration); building still
    writes it once."""
    import logging

    from mmengine.logging import MMLogger
    from mmengine.model import BaseModule

    from mmdfkd.models.algorithms.data_free_distillation import \
        reinitialize_module

    class Net(BaseModule):

        def __init__(self):
            super().__init__(
                init_cfg=dict(type='Normal', layer='Linear', std=0.02))
            self.fc = torch.nn.Linear(4, 4)

    log_file = tmp_path / 'run.log'
    logger = MMLogger.get_instance('test_init_report', log_file=str(log_file))
    report = 'Initialization information'
    try:
        net = Net()
        net.init_weights()
        for handler in logger.handlers:
            handler.flush()
        assert log_file.read_text().count(report) == 1  # the control
        before = net.fc.weight.detach().clone()
        reinitialize_module(net)
        for handler in logger.handlers:
            handler.flush()
        assert log_file.read_text().count(report) == 1
        assert not torch.equal(before, net.fc.weight)
        assert float(net.fc.weight.detach().std()) == pytest.approx(0.02, rel=0.5)
        assert '_dump_init_info' not in vars(net)
    finally:
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler):
                handler.close()
                logger.removeHandler(handler)
