"""Fast (meta-learned synthesis tasks) and NAYER through
``FastDistillation``: the masked adversarial loss by hand, the best iterate
into the bank, the first-order MAML outer step, warm-up, the layer reset,
NAYER's balanced targets and per-batch noisy layers, the text-free label
embeddings, and tiny end-to-end runs of both Fashion-MNIST configs through
tools/train.py with a resume that restores the memory bank. A LeNet pair
with random weights keeps every test fast."""
import copy
import math
import os.path as osp

import pytest
import torch
from conftest import ROOT, run_tool

from mmdfkd.engine.optimizers import SeparateOptimWrapperConstructor
from mmdfkd.models.generators import (
    NoisyLinear,
    load_label_embeddings,
    orthogonal_label_embeddings,
)
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

LATENT = 8
_TEACHER_LOGITS = dict(type='ModuleOutputs', source='teacher.head.fc')
_STUDENT_LOGITS = dict(logits=dict(type='ModuleOutputs', source='head.fc'))
_LOGIT_PAIR = dict(
    preds_S=dict(from_student=True, recorder='logits'),
    preds_T=dict(from_student=False, recorder='logits'))


def _generator_distiller():
    return dict(
        type='ConfigurableDistiller',
        student_recorders=_STUDENT_LOGITS,
        teacher_recorders=dict(
            bn=dict(type='BNStatisticsRecorder', source='teacher'),
            logits=_TEACHER_LOGITS),
        distill_losses=dict(
            loss_bn=dict(type='BNStatisticsLoss', loss_weight=1.0,
                         momentum=0.9),
            loss_oh=dict(type='CrossEntropyLoss', loss_weight=0.5),
            loss_adv=dict(type='AgreementMaskedKLDivergence',
                          loss_weight=-1.33, teacher_detach=False)),
        loss_forward_mappings=dict(
            loss_bn=dict(bn_stats=dict(from_student=False, recorder='bn')),
            loss_oh=dict(
                cls_score=dict(from_student=False, recorder='logits'),
                label=dict(from_data='targets')),
            loss_adv=_LOGIT_PAIR))


def _fast_generator():
    return dict(type='DAFLGenerator', img_size=32, latent_dim=LATENT,
                hidden_channels=8, out_channels=1, bn_eps=1e-5,
                final_activation='sigmoid', final_norm=None, conv_bias=False)


def build(meta=True, generator=None, inner_lr=0.05, meta_lr=0.1,
          generator_optim=None, **overrides):
    """Fast (meta=True) or a NAYER-like in-place loop (meta=False) on a
    random LeNet-5 teacher; SGD optimisers keep the updates checkable."""
    cfg = dict(
        type='FastDistillation',
        data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=10,
                               mean=[72.94], std=[90.0]),
        architecture=dict(
            cfg_path='mmdfkd::_base_/models/lenet5_half_fashionmnist.py'),
        teachers=dict(teacher=dict(build_cfg=dict(
            cfg_path='mmdfkd::_base_/models/lenet5_fashionmnist.py'))),
        generator=generator or _fast_generator(),
        memory_bank=dict(type='SyntheticMemoryBank', capacity=512),
        synthesis_augmentation=dict(type='SynthesisAugmentation',
                                    flip=False),
        generator_iter=3,
        student_iter=2,
        student_train_mode_in_generator_step=False,
        generator_distiller=_generator_distiller(),
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=_STUDENT_LOGITS,
            teacher_recorders=dict(logits=_TEACHER_LOGITS),
            distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=20.0)),
            loss_forward_mappings=dict(loss_kd=_LOGIT_PAIR)))
    if meta:
        cfg.update(meta_update=dict(type='MetaGeneratorUpdate'),
                   inner_optimizer=dict(type='SGD', lr=inner_lr),
                   latent_optimizer=dict(type='Adam', lr=0.01))
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    optim = SeparateOptimWrapperConstructor(
        dict(architecture=dict(optimizer=dict(type='SGD', lr=0.01)),
             generator=dict(optimizer=generator_optim
                            or dict(type='SGD', lr=meta_lr))))(model)
    return model, optim


def latent_batch(model, batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    draws = model.draws_per_iteration
    return dict(latents=torch.randn(batch, draws, LATENT, generator=g),
                targets=torch.randint(10, (batch, draws), generator=g))


def _state(module):
    return copy.deepcopy(module.state_dict())


def _changed(module, before):
    return any(not torch.equal(v, before[k])
               for k, v in module.state_dict().items())


# --------------------------------------------------------------------------
# the decision-adversarial loss, by hand
# --------------------------------------------------------------------------
def test_masked_adversarial_kl_hand_value():
    """-1/N sum_i m_i KL(p_T || p_S), m_i = 1[argmax S = argmax T].

    i=0: p_T = (1/2, 1/2), p_S = (3/4, 1/4), both argmax 0 (ties: first):
         KL(p_T || p_S) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
         (the other direction, KL(p_S || p_T), would be 0.1308)
    i=1: p_T = (1/4, 3/4), p_S = (1/2, 1/2): argmax 1 vs 0 -> masked
    i=2: p_T = p_S = (3/4, 1/4): KL 0
    """
    ln3 = math.log(3.0)
    preds_S = torch.tensor([[ln3, 0.0], [0.0, 0.0], [ln3, 0.0]],
                           requires_grad=True)
    preds_T = torch.tensor([[0.0, 0.0], [0.0, ln3], [ln3, 0.0]],
                           requires_grad=True)
    loss = MODELS.build(dict(type='AgreementMaskedKLDivergence', tau=1.0,
                             loss_weight=-1.0, teacher_detach=False))
    value = loss(preds_S, preds_T)
    assert value.item() == pytest.approx(-0.5 * math.log(4 / 3) / 3,
                                         abs=1e-6)
    value.backward()
    # the masked sample contributes nothing, to either network
    assert torch.count_nonzero(preds_S.grad[1]) == 0
    assert torch.count_nonzero(preds_T.grad[1]) == 0
    # teacher_detach=False: the generator gets gradients through T too
    assert torch.count_nonzero(preds_T.grad[0]) > 0


# --------------------------------------------------------------------------
# Fast's synthesis task
# --------------------------------------------------------------------------
def test_synthesis_task_banks_the_best_iterate(monkeypatch):
    """Constant offsets make step 1 the lowest-loss one (not the last):
    exactly its images, in [0, 1] before augmentation, enter the bank."""
    model, optim = build(warmup_iters=0)
    offsets = iter([5.0, 0.0, 10.0])
    seen = []
    original = model.synthesis_loss

    def offset_loss(images, targets, latents):
        loss, logs = original(images, targets, latents)
        loss = loss + next(offsets)
        seen.append((float(loss.detach()), images.detach().clone(),
                     targets.clone()))
        return loss, logs

    monkeypatch.setattr(model, 'synthesis_loss', offset_loss)
    logs = model.train_step(latent_batch(model), optim)
    losses = [s[0] for s in seen]
    assert len(seen) == 3 and min(losses) == losses[1]
    bank = model.memory_bank
    assert len(bank) == 16
    assert torch.equal(bank.images[:16], seen[1][1])
    assert torch.equal(bank.targets[:16], seen[1][2])
    assert not torch.equal(seen[1][1], seen[2][1])
    assert logs['generator.best_loss'].item() == pytest.approx(losses[1])
    assert 0.0 <= float(seen[1][1].min()) and float(seen[1][1].max()) <= 1.0


def test_meta_step_is_the_sum_of_the_inner_gradients(monkeypatch):
    """FOMAML with SGD outer step: theta <- theta - lr * sum_j g_j, where
    g_j is the task copy's gradient at inner step j; the copy, not the
    meta-generator, takes the inner steps."""
    meta_lr = 0.1
    model, optim = build(warmup_iters=0, meta_lr=meta_lr)
    generator = model.generator
    before = {k: p.detach().clone() for k, p in generator.named_parameters()}
    grads = []
    original = model.meta_update.accumulate

    def record(meta, fast):
        grads.append({k: p.grad.detach().clone()
                      for k, p in fast.named_parameters()})
        assert fast is not meta
        return original(meta, fast)

    monkeypatch.setattr(model.meta_update, 'accumulate', record)
    model.train_step(latent_batch(model), optim)
    assert len(grads) == model.generator_iter == 3
    for name, param in generator.named_parameters():
        expected = before[name] - meta_lr * sum(g[name] for g in grads)
        torch.testing.assert_close(param.detach(), expected)
    assert all(p.grad is None for p in generator.parameters())


def test_warmup_skips_the_student_and_the_adversarial_term():
    model, optim = build(warmup_iters=1, warmup_disabled_losses=['loss_adv'])
    student = _state(model.architecture)  # weights and BN statistics
    logs = model.train_step(latent_batch(model, seed=0), optim)
    assert not _changed(model.architecture, student)
    assert not [k for k in logs if k.startswith('student.')]
    assert 'generator.loss_adv' not in logs and 'generator.loss_bn' in logs
    assert len(model.memory_bank) == 16  # the warm-up fills the bank
    logs = model.train_step(latent_batch(model, seed=1), optim)
    assert _changed(model.architecture, student)
    assert 'student.loss_kd' in logs and 'generator.loss_adv' in logs
    assert len(model.memory_bank) == 32
    # the student reads bank batches of the synthesis batch size, in the
    # normalised space
    batch = model.sample_student_batch()
    assert batch['images'].shape == (16, 1, 32, 32)
    assert float(batch['images'].min()) < 0  # (0 - 72.94) / 90 < 0


def test_layer_reset_fires_at_the_configured_iteration(monkeypatch):
    model, optim = build(layer_reset_iter=2)
    calls = []
    original = model.reset_generator_layers

    def spy():
        calls.append(int(model.train_iter))
        original()
        fc, bn = model.generator.fc, model.generator.input_bn[0]
        assert torch.count_nonzero(fc.bias) == 0
        assert torch.count_nonzero(bn.bias) == 0
        assert float(fc.weight.detach().std()) == pytest.approx(0.02,
                                                               rel=0.15)

    monkeypatch.setattr(model, 'reset_generator_layers', spy)
    for it in range(4):
        model.train_step(latent_batch(model, seed=it), optim)
    assert calls == [2]
    with pytest.raises(KeyError, match='not_a_layer'):
        build(layer_reset_iter=1, layer_reset_modules=['not_a_layer'])


def test_argument_checks():
    with pytest.raises(ValueError, match='meta_update'):
        build(meta=False, inner_optimizer=dict(type='SGD', lr=0.1))
    with pytest.raises(ValueError, match='target_layout'):
        build(target_layout='sorted')
    with pytest.raises(ValueError, match='draw_per_synthesis_loop'):
        build(draw_per_synthesis_loop=False)
    with pytest.raises(ValueError, match='student_train_first'):
        build(student_train_first=True)
    with pytest.raises(ValueError, match='num_classes'):
        build(target_layout='balanced')  # DAFLGenerator knows no classes


# --------------------------------------------------------------------------
# NAYER
# --------------------------------------------------------------------------
def _nayer(batch=25, **overrides):
    generator = dict(type='NoisyLayerGenerator',
                     label_embeddings=dict(type='orthogonal',
                                           num_classes=10, dim=12),
                     batch_size=batch, img_size=32, out_channels=1,
                     hidden_channels=4, noise_dim=16)
    return build(meta=False, generator=generator, target_layout='balanced',
                 synthesis_loops=2, reset_generator_optimizer_every_loop=True,
                 generator_optim=dict(type='Adam', lr=4e-3,
                                      betas=(0.5, 0.999)),
                 **overrides)


def test_nayer_balanced_targets_and_noisy_layers_per_batch(monkeypatch):
    model, optim = _nayer(batch=25)
    data = latent_batch(model, batch=25)
    assert data['latents'].shape[1] == 2  # one draw per synthesis loop
    noise, targets = [], []
    original = model.synthesis_loss
    layer = next(m for m in model.generator.modules()
                 if isinstance(m, NoisyLinear))

    def spy(images, t, latents):
        noise.append(layer.weight.detach().clone())
        targets.append(t.clone())
        return original(images, t, latents)

    monkeypatch.setattr(model, 'synthesis_loss', spy)
    model.train_step(data, optim)
    # 25 = 2 blocks of the 10 classes + the first 5 drawn targets
    for k, t in enumerate(targets[::model.generator_iter]):
        expected = torch.cat([torch.arange(10).repeat(2),
                              data['targets'][:5, k]])
        assert torch.equal(t, expected)
    # the bank got both batches with their balanced targets
    assert torch.equal(model.memory_bank.targets[:20],
                       torch.arange(10).repeat(2))
    # within a batch the noisy layer is trained; between batches re-drawn
    steps = model.generator_iter
    assert not torch.equal(noise[0], noise[1])  # an optimiser step
    first, second = noise[0], noise[steps]
    assert not torch.allclose(first, second, atol=0.5)
    assert float(second.std()) == pytest.approx(1.0, rel=0.2)  # N(0, 1)
    assert torch.count_nonzero(layer.bias.detach()) > 0  # trained


def test_nayer_new_adam_per_batch(monkeypatch):
    model, optim = _nayer(batch=20)
    states = []
    original = model.synthesis_loop

    def spy(wrapper):
        states.append(len(wrapper.optimizer.state))
        return original(wrapper)

    monkeypatch.setattr(model, 'synthesis_loop', spy)
    model.train_step(latent_batch(model, batch=20), optim)
    assert states == [0, 0]  # each batch starts without Adam moments


def test_orthogonal_label_embeddings():
    table = orthogonal_label_embeddings(10, 16, seed=3)
    assert table.shape == (10, 16)
    torch.testing.assert_close(table @ table.T, torch.eye(10),
                               atol=1e-5, rtol=0)
    assert torch.equal(table, orthogonal_label_embeddings(10, 16, seed=3))
    assert not torch.equal(table, orthogonal_label_embeddings(10, 16, 4))
    many = orthogonal_label_embeddings(20, 4)  # more classes than dims
    torch.testing.assert_close(many.norm(dim=1), torch.ones(20))
    spec = dict(type='orthogonal', num_classes=10, dim=16, seed=3)
    assert torch.equal(load_label_embeddings(spec), table)
    with pytest.raises(ValueError, match='orthogonal'):
        load_label_embeddings(dict(type='clip', num_classes=10, dim=16))
    with pytest.raises(KeyError, match='dim'):
        load_label_embeddings(dict(type='orthogonal', num_classes=10))


@pytest.mark.parametrize('dataset,classes', [('cifar10', 10),
                                             ('cifar100', 100),
                                             ('fashion_mnist', 10)])
def test_shipped_label_embeddings(dataset, classes):
    path = osp.join(ROOT, 'configs/_base_/label_embeddings',
                    f'{dataset}_all-minilm-l6-v2.pth')
    table = load_label_embeddings(path)
    assert table.shape == (classes, 384)
    torch.testing.assert_close(table.norm(dim=1), torch.ones(classes))
    meta = torch.load(path, weights_only=True)
    assert len(meta['class_names']) == classes
    assert 'MiniLM' in meta['encoder']


# --------------------------------------------------------------------------
# end to end through tools/train.py, with a resume
# --------------------------------------------------------------------------
E2E = {
    'fast': ('configs/fast/fast_lenet5_lenet5half_1xb256_fashionmnist.py', [
        'train_dataloader.batch_size=16', 'model.generator_iter=2',
        'model.student_iter=2', 'model.warmup_iters=1',
        'model.layer_reset_iter=3'
    ], [16, 16, 16, 16]),
    'nayer': ('configs/nayer/nayer_lenet5_lenet5half_1xb200_fashionmnist.py',
              [
                  'train_dataloader.batch_size=20',
                  'model.generator.batch_size=20', 'model.generator_iter=2',
                  'model.student_iter=2', 'model.student_batch_size=16',
                  'model.warmup_iters=1', 'model.warmup_synthesis_loops=2',
                  'model.synthesis_loops=1', 'model.generator_reinit_interval=2',
                  'train_dataloader.dataset.num_draws=2'
              ], [40, 20, 20, 20]),
}


def _options(method, teacher, max_iters):
    return [
        '--cfg-options', f'model.teachers.teacher.ckpt_path={teacher}',
        f'train_cfg.max_iters={max_iters}', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'custom_hooks.0.interval=2',
        'val_dataloader.dataset.indices=128', 'val_dataloader.batch_size=128',
        'param_scheduler.architecture.begin=1',
        'model.memory_bank.capacity=256', *E2E[method][1]
    ]


@pytest.mark.parametrize('method', sorted(E2E))
def test_train_and_resume_restores_the_bank(method, tmp_path,
                                            random_lenet5_teacher,
                                            fashion_mnist_root):
    config, _, per_iter = E2E[method]
    work_dir = str(tmp_path / method)
    run_tool(['tools/train.py', config, '--work-dir', work_dir,
              *_options(method, random_lenet5_teacher, 2)])
    first = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert not [k for k in first if k.startswith('teachers.')]
    stored = int(first['memory_bank.num_stored'])
    assert stored == sum(per_iter[:2])

    resumed = run_tool(['tools/train.py', config, '--work-dir', work_dir,
                        '--resume', *_options(method, random_lenet5_teacher,
                                              4)])
    log = resumed.stdout + resumed.stderr
    assert 'Iter(train) [3/4]' in log
    state = torch.load(osp.join(work_dir, 'iter_4.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert int(state['memory_bank.num_stored']) == sum(per_iter)
    # the resumed run continued the checkpoint's pool (FIFO, not full):
    # its first entries are exactly those of iteration 2
    torch.testing.assert_close(state['memory_bank.images'][:stored],
                               first['memory_bank.images'][:stored])
    assert torch.equal(state['memory_bank.targets'][:stored],
                       first['memory_bank.targets'][:stored])
    if method == 'fast':  # the layer reset of iteration 3 (0-based)
        assert "layers ['fc', 'input_bn.0'] re-initialised" in log


def test_label_embedding_tool_without_a_text_model(tmp_path):
    """tools/misc/compute_label_embeddings.py writes the documented file
    format; the orthogonal encoder needs no text model."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'compute_label_embeddings',
        osp.join(ROOT, 'tools/misc/compute_label_embeddings.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    names = tmp_path / 'names.txt'
    names.write_text('aquarium_fish\nT-shirt\nsea\n')
    out = str(tmp_path / 'le.pth')
    tool.main(['--class-names', str(names), '--encoder', 'orthogonal',
               '--dim', '8', '--seed', '2', '--out', out])
    saved = torch.load(out, weights_only=True)
    assert saved['class_names'] == ['aquarium_fish', 'T-shirt', 'sea']
    assert torch.equal(load_label_embeddings(out),
                       orthogonal_label_embeddings(3, 8, seed=2))
    # NAYER's text: separators become spaces
    assert tool.prompts_for(['aquarium_fish', 'T-shirt'], 'a image of {}') \
        == ['a image of aquarium fish', 'a image of T shirt']


def test_resume_check_accepts_the_bn_history_of_a_trained_run():
    """The momentum BN loss creates its running averages on first use: a
    freshly built model must still accept a trained run's checkpoint, and
    nothing else unexpected."""
    from mmdfkd.utils.checkpoint import CheckpointMismatchError, check_weights_fit
    model, optim = build(warmup_iters=0)
    model.train_step(latent_batch(model), optim)
    state = model.state_dict()
    assert any('loss_bn.history_mean_' in k for k in state)
    fresh, _ = build(warmup_iters=0)
    check_weights_fit(fresh, state, 'trained.pth')
    state['generator.not_a_weight'] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match='not_a_weight'):
        check_weights_fit(fresh, state, 'trained.pth')
