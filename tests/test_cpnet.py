"""CPNet: the coupled generator built from any teacher (the reference's
node tables recovered, block shapes equal to the teacher's BN inputs,
gradients reaching every generator layer), the feature-alignment and
pseudo-inverse feature-adversarial losses by hand, the reversed masked KL,
the algorithm's synthesis step, and a tiny end-to-end run of the
Fashion-MNIST config through tools/train.py with a resume."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, run_tool
from mmengine.config import Config
from torch.nn.modules.batchnorm import _BatchNorm

from mmdfkd.engine.optimizers import SeparateOptimWrapperConstructor
from mmdfkd.models.generators import (
    CoupledGenerator,
    orthogonal_label_embeddings,
    select_coupling_nodes,
    trace_bn_inputs,
)
from mmdfkd.models.losses.pseudo_inverse_feature_adversarial_loss import (
    clamped_pseudo_inverse,
)
from mmdfkd.models.utils import build_classifier
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

FMNIST_CONFIG = 'configs/cpnet/cpnet_lenet5_lenet5half_1xb200_fashionmnist.py'


def _teacher(name):
    return build_classifier(
        {'cfg_path': f'mmdfkd::_base_/models/{name}.py'}).eval()


# --------------------------------------------------------------------------
# the coupled generator
# --------------------------------------------------------------------------
def test_node_rule_recovers_the_reference_tables():
    """The hand-written _BN_NODES of the reference (deepest first), from
    the module tree alone; the VGG-11 and ResNet-34 tables are the last BN
    of each resolution, WRN-40-2 adds the 16-channel run of its stem."""
    expected = {
        'resnet34_cifar': ['layer4.2.bn2', 'layer3.5.bn2', 'layer2.3.bn2',
                           'layer1.2.bn2'],
        'wrn40_2_cifar': ['bn1', 'block3.layer.0.bn1', 'block2.layer.0.bn1',
                          'block1.layer.0.bn1'],
        'vgg11_cifar': ['block4.4', 'block2.4', 'block1.1', 'block0.1'],
    }
    for name, nodes in expected.items():
        traced = trace_bn_inputs(_teacher(name), (3, 32, 32))
        chosen = select_coupling_nodes(traced, 4)
        assert [n.name for n in chosen] == [f'backbone.{n}' for n in nodes]
    # more stages than blocks: the deepest ones
    traced = trace_bn_inputs(_teacher('vgg11_cifar'), (3, 32, 32))
    assert [n.name for n in select_coupling_nodes(traced, 2)] == [
        'backbone.block4.4', 'backbone.block2.4']


GENERATOR_TEACHERS = {
    # name: (config, image channels, num_blocks, deepest node shape)
    'resnet18': ('resnet18_cifar', 3, 4, (512, 4, 4)),
    'wrn16_1': ('wrn16_1_cifar', 3, 4, (64, 8, 8)),
    'vgg11': ('vgg11_cifar', 3, 4, (512, 4, 4)),
    'mobilenetv2': ('mobilenetv2_cifar', 3, 4, (1280, 2, 2)),
    # its 120 x 1 x 1 conv3 output is not a candidate (see the next test)
    'lenet5': ('lenet5_fashionmnist', 1, 2, (16, 10, 10)),
}


@pytest.mark.parametrize('name', sorted(GENERATOR_TEACHERS))
def test_generator_mirrors_the_teacher(name):
    """Block input h_i has exactly the shape of the teacher's BN input at
    node i on the generated images, the image has the teacher's input
    shape, and every generator parameter gets a gradient from the block
    features (the alignment loss) and from the image."""
    config, channels, num_blocks, deepest = GENERATOR_TEACHERS[name]
    teacher = _teacher(config)
    torch.manual_seed(0)
    generator = CoupledGenerator(
        label_embeddings=orthogonal_label_embeddings(3, 8), batch_size=6,
        teacher={'cfg_path': f'mmdfkd::_base_/models/{config}.py'},
        out_channels=channels, num_blocks=num_blocks, noise_dim=16)
    assert len(generator.blocks) == len(generator.nodes) == num_blocks
    assert tuple(generator.nodes[0][1:]) == deepest
    block_inputs = []
    for block in generator.blocks:
        block.register_forward_hook(
            lambda m, i, o: block_inputs.append(i[0]))
    images = generator(None, torch.arange(3).repeat(2))
    assert images.shape == (6, channels, 32, 32)
    assert 0 <= images.min().item() and images.max().item() <= 1

    bn_inputs = {}

    def record(name):

        def hook(module, inputs, output):
            bn_inputs[name] = inputs[0].shape

        return hook

    for node in generator.bn_nodes:
        teacher.get_submodule(node).register_forward_hook(record(node))
    with torch.no_grad():
        teacher(images, mode='tensor')
    for h, node in zip(block_inputs, generator.nodes, strict=True):
        assert h.shape == bn_inputs[node.name] == (6, *node[1:]), node
        assert isinstance(teacher.get_submodule(node.name), _BatchNorm)

    (sum(h.square().mean() for h in block_inputs) + images.mean()).backward()
    no_grad = [n for n, p in generator.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad


def test_generator_node_errors_and_explicit_nodes():
    lenet = {'cfg_path': 'mmdfkd::_base_/models/lenet5_fashionmnist.py'}
    table = orthogonal_label_embeddings(10, 8)
    # LeNet-5 has three 4-D BN layers (bn4 is a BatchNorm1d), and bn3 sees
    # a 1 x 1 map, which the automatic choice leaves out
    with pytest.raises(ValueError, match='fewer than num_blocks=3'):
        CoupledGenerator(table, 10, lenet, out_channels=1, num_blocks=3)
    assert CoupledGenerator(table, 10, lenet, out_channels=1,
                            num_blocks=2).bn_nodes == ('backbone.bn2',
                                                       'backbone.bn1')
    # named nodes may include it (any order; deepest first after)
    generator = CoupledGenerator(
        table, 10, lenet, out_channels=1,
        bn_nodes=['backbone.bn1', 'backbone.bn3', 'backbone.bn2'])
    assert generator.bn_nodes == ('backbone.bn3', 'backbone.bn2',
                                  'backbone.bn1')
    assert generator(None, torch.arange(10)).shape == (10, 1, 32, 32)
    with pytest.raises(KeyError, match='backbone.bn4'):
        CoupledGenerator(table, 10, lenet, out_channels=1,
                         bn_nodes=['backbone.bn4'])


# --------------------------------------------------------------------------
# the feature-alignment loss, by hand
# --------------------------------------------------------------------------
def test_feature_alignment_hand_values_and_history():
    """One node, one channel, x = (0, 2): mean 1, unbiased variance 2
    (biased 1); BN running mean 5, variance 8:
    phi = (x - 1) / sqrt(2) * sqrt(8) + 5 = (3, 7); h = (3, 5):
    MSE = (0 + 4) / 2 = 2.

    After update_history (mean 1, biased variance 1), x = (2, 6) (mean 4,
    unbiased variance 8) is normalised with mean 0.1 * 4 + 0.9 * 1 = 1.3
    and variance 0.1 * 8 + 0.9 * 1 = 1.7."""
    loss = MODELS.build({'type': 'CoupledFeatureAlignmentLoss',
                         'num_channels': [1], 'momentum': 0.9, 'eps': 0.0,
                         'loss_weight': 1.0})
    running = ([torch.tensor([5.0])], [torch.tensor([8.0])])
    x = torch.tensor([0.0, 2.0], requires_grad=True)
    h = torch.tensor([3.0, 5.0], requires_grad=True)
    value = loss([h.view(1, 1, 1, 2)], [x.view(1, 1, 1, 2)], *running)
    assert value.item() == pytest.approx(2.0, abs=1e-5)
    value.backward()
    assert x.grad is None  # the teacher's feature is a target only
    torch.testing.assert_close(h.grad, torch.tensor([0.0, -2.0]))

    loss.update_history()
    assert int(loss.num_history_updates) == 1
    torch.testing.assert_close(loss.history_mean_0, torch.tensor([1.0]))
    torch.testing.assert_close(loss.history_var_0, torch.tensor([1.0]))
    x = torch.tensor([2.0, 6.0])
    value = loss([torch.zeros(1, 1, 1, 2)], [x.view(1, 1, 1, 2)], *running)
    phi = (x - 1.3) / math.sqrt(1.7) * math.sqrt(8.0) + 5.0
    assert value.item() == pytest.approx(float(phi.square().mean()),
                                         rel=1e-5)
    # the fold-in uses the biased variance of the last batch
    loss.update_history()
    torch.testing.assert_close(loss.history_mean_0,
                               torch.tensor([0.9 * 1 + 0.1 * 4]))
    torch.testing.assert_close(loss.history_var_0,
                               torch.tensor([0.9 * 1 + 0.1 * 4]))
    loss.reset_history()
    assert loss.history() == [] and int(loss.num_history_updates) == 0


def test_feature_alignment_checks_shapes():
    loss = MODELS.build({'type': 'CoupledFeatureAlignmentLoss',
                         'num_channels': [2]})
    with pytest.raises(ValueError, match='same'):
        loss([torch.zeros(1, 2, 2, 2)], [torch.zeros(1, 2, 4, 4)],
             [torch.zeros(2)], [torch.ones(2)])


# --------------------------------------------------------------------------
# the pseudo-inverse feature-adversarial loss, by hand
# --------------------------------------------------------------------------
def _reference_pinv(mat, threshold):
    """The reference's compute_pinv: full SVD, clamped singular values."""
    u, s, vh = torch.linalg.svd(mat.double())
    s = torch.clamp(s, min=threshold)
    sigma_pinv = torch.zeros(mat.shape[1], mat.shape[0], dtype=torch.double)
    for i in range(min(u.shape[1], vh.shape[0])):
        sigma_pinv[i, i] = 1 / s[i]
    return vh.t() @ sigma_pinv @ u.t()


def test_pseudo_inverse_matches_the_reference_and_the_ideal_line():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(5, 12, generator=g)  # C = 5 classes, D = 12
    weight[4] = weight[3] + 1e-3 * weight[4]  # a clamped singular value
    pinv = clamped_pseudo_inverse(weight.T, 0.1)
    torch.testing.assert_close(pinv.double(), _reference_pinv(weight.T, 0.1),
                               rtol=1e-5, atol=1e-6)
    # without clamping, features on the line of label y have the logits
    # delta * y + c: softmax is the 0.1-smoothed one-hot
    weight = torch.randn(5, 12, generator=g)
    bias = torch.randn(5, generator=g)
    loss = MODELS.build({'type': 'PseudoInverseFeatureAdversarialLoss',
                         'classifier_weight': weight,
                         'classifier_bias': bias})
    y = F.one_hot(torch.tensor([2]), 5).float()
    for c in (0.0, 3.0):
        f = ((loss.logit_gap * y - bias) @ loss.weight_pinv
             + c * loss.weight_pinv.sum(0))
        probs = (f @ weight.T + bias).softmax(1)
        torch.testing.assert_close(
            probs, 0.9 * y + 0.1 / 4 * (1 - y), rtol=0, atol=1e-4)


def test_pseudo_inverse_feature_loss_hand_value():
    """W = diag(1, 2), b = (0.5, -0.5): W^+ = diag(1, 1/2), delta = ln 9,
    direction d = (1, 1) W^+ = (1, 1/2). For y = 0 the anchor is
    (delta - 0.5, 0.5) W^+ = (delta - 0.5, 1/4); f = anchor + (1, 1/2)
    lies on the line (|cos| = 1), f = anchor + (1/2, -1) is orthogonal to
    it (cos 0): loss = w * (1 + 0) / 2."""
    loss = MODELS.build({
        'type': 'PseudoInverseFeatureAdversarialLoss',
        'classifier_weight': torch.tensor([[1.0, 0.0], [0.0, 2.0]]),
        'classifier_bias': torch.tensor([0.5, -0.5]),
        'loss_weight': 1.33 * 0.8})
    assert loss.logit_gap == pytest.approx(math.log(9.0))
    torch.testing.assert_close(loss.weight_pinv, torch.diag(
        torch.tensor([1.0, 0.5])))
    anchor = torch.tensor([math.log(9.0) - 0.5, 0.25])
    features = torch.stack([anchor + torch.tensor([1.0, 0.5]),
                            anchor + torch.tensor([0.5, -1.0])])
    value = loss(features, torch.tensor([0, 0]))
    assert value.item() == pytest.approx(1.33 * 0.8 * 0.5, abs=1e-6)
    # one-hot targets give the same value
    assert loss(features, torch.eye(2)[[0, 0]]).item() == pytest.approx(
        value.item())
    # elsewhere the generator is pushed off the line: a gradient step on
    # f = anchor + (1, 0) (cos = 1 / sqrt(1.25)) lowers |cos|
    off_line = (anchor + torch.tensor([1.0, 0.0]))[None].requires_grad_(True)
    value = loss(off_line, torch.tensor([0]))
    assert value.item() == pytest.approx(1.33 * 0.8 / math.sqrt(1.25),
                                         abs=1e-6)
    value.backward()
    stepped = off_line.detach() - 0.1 * off_line.grad
    assert loss(stepped, torch.tensor([0])).item() < value.item()


# --------------------------------------------------------------------------
# the reversed masked KL (an option of AgreementMaskedKLDivergence)
# --------------------------------------------------------------------------
def test_masked_kl_direction():
    """Sample 0: p_T = (1/2, 1/2), p_S = (3/4, 1/4), both argmax 0:
    KL(p_S || p_T) = 3/4 ln(3/2) + 1/4 ln(1/2); sample 1 disagrees and is
    masked. The default stays KL(p_T || p_S) = 1/2 ln(4/3)."""
    ln3 = math.log(3.0)
    preds_S = torch.tensor([[ln3, 0.0], [0.0, 0.0]])
    preds_T = torch.tensor([[0.0, 0.0], [0.0, ln3]])
    reverse = MODELS.build({'type': 'AgreementMaskedKLDivergence',
                            'direction': 'reverse'})
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert reverse(preds_S, preds_T).item() == pytest.approx(expected / 2,
                                                             abs=1e-6)
    default = MODELS.build({'type': 'AgreementMaskedKLDivergence'})
    assert default.direction == 'forward'
    assert default(preds_S, preds_T).item() == pytest.approx(
        0.5 * math.log(4 / 3) / 2, abs=1e-6)
    with pytest.raises(ValueError, match='direction'):
        MODELS.build({'type': 'AgreementMaskedKLDivergence',
                      'direction': 'both'})


# --------------------------------------------------------------------------
# the algorithm (the shipped Fashion-MNIST config, random LeNet teacher)
# --------------------------------------------------------------------------
def _build(**overrides):
    cfg = Config.fromfile(osp.join(ROOT, FMNIST_CONFIG))
    model_cfg = cfg.model
    model_cfg.teachers.teacher.ckpt_path = None
    model_cfg.generator.batch_size = 20
    model_cfg.update(generator_iter=2, student_iter=1, student_batch_size=8,
                     warmup_iters=1, warmup_synthesis_loops=1,
                     memory_bank={'capacity': 200})
    model_cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    wrapper = dict(cfg.optim_wrapper)
    wrapper.pop('constructor')
    return model, SeparateOptimWrapperConstructor(wrapper)(model)


def _latents(model, batch=20):
    g = torch.Generator().manual_seed(0)
    draws = model.draws_per_iteration
    return {'latents': torch.zeros(batch, draws, 0),
            'targets': torch.randint(10, (batch, draws), generator=g)}


def test_cpnet_synthesis_step(monkeypatch):
    model, optim = _build()
    teacher_fc = model.teachers.teacher.head.fc
    torch.testing.assert_close(
        model.feature_adversarial_loss.weight_pinv,
        clamped_pseudo_inverse(teacher_fc.weight.detach().T, 0.1))
    assert model.generator.bn_nodes == ('backbone.bn2', 'backbone.bn1')
    # the mixed targets: one-hot blended by the pasted area
    _, mixed = model.mix(torch.rand(20, 1, 32, 32), torch.arange(20) % 10)
    torch.testing.assert_close(mixed.sum(1), torch.ones(20))
    assert (mixed.max(1).values >= 0.5).all()

    logs = model.train_step(_latents(model), optim)  # warm-up
    assert {'generator.loss_bn', 'generator.loss_oh',
            'generator.loss_align'} <= set(logs)
    assert not {'generator.loss_adv', 'generator.loss_dis'} & set(logs)
    assert int(model.feature_alignment_loss.num_history_updates) == 1
    logs = model.train_step(_latents(model), optim)
    assert {'generator.loss_adv', 'generator.loss_dis',
            'student.loss_kd'} <= set(logs)
    assert int(model.feature_alignment_loss.num_history_updates) == 3
    # each step read and cleared its own generator features
    assert all(not r.data_buffer
               for r in model.block_recorders.recorders.values())

    # the alignment term alone trains the generator up to its last h_i
    # (blocks.0 makes h_1; blocks.1 makes the image from it)
    model.generator.zero_grad()
    losses = {}
    original = model._parse_and_check

    def keep(values, phase):
        losses.update(values)
        return original(values, phase)

    monkeypatch.setattr(model, '_parse_and_check', keep)
    with model.block_recorders:
        images = model.generator(None, torch.arange(20) % 10)
    model.synthesis_loss(images, torch.arange(20) % 10, None)
    losses['loss_align'].backward()
    for name in ('fc', 'blocks.0.1'):
        grad = model.generator.get_submodule(name).weight.grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_cpnet_argument_checks():
    with pytest.raises(ValueError, match='meta_update'):
        _build(meta_update={'type': 'MetaGeneratorUpdate'})
    with pytest.raises(KeyError, match='coupled_teacher'):
        _build(coupled_teacher='nope')
    with pytest.raises(TypeError, match='nn.Linear'):
        _build(classifier_layer='backbone.bn4')


# --------------------------------------------------------------------------
# end to end through tools/train.py, with a resume
# --------------------------------------------------------------------------
def _options(teacher, max_iters):
    return [
        '--cfg-options', f'model.teachers.teacher.ckpt_path={teacher}',
        f'train_cfg.max_iters={max_iters}', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'custom_hooks.0.interval=2',
        'val_dataloader.dataset.indices=128', 'val_dataloader.batch_size=128',
        'param_scheduler.architecture.begin=1',
        'model.memory_bank.capacity=256', 'train_dataloader.batch_size=20',
        'model.generator.batch_size=20', 'model.generator_iter=2',
        'model.student_iter=2', 'model.student_batch_size=16',
        'model.warmup_iters=1', 'model.warmup_synthesis_loops=2',
        'model.synthesis_loops=1', 'model.generator_reinit_interval=2',
        'train_dataloader.dataset.num_draws=2'
    ]


def test_train_and_resume(tmp_path, random_lenet5_teacher,
                          fashion_mnist_root):
    work_dir = str(tmp_path / 'cpnet')
    run_tool(['tools/train.py', FMNIST_CONFIG, '--work-dir', work_dir,
              *_options(random_lenet5_teacher, 2)])
    first = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert not [k for k in first if k.startswith('teachers.')]
    # derived from the teacher, rebuilt with it: not in checkpoints
    assert not [k for k in first if 'weight_pinv' in k]
    stored = int(first['memory_bank.num_stored'])
    assert stored == 40 + 20
    assert int(first['feature_alignment_loss.num_history_updates']) == 3

    resumed = run_tool(['tools/train.py', FMNIST_CONFIG, '--work-dir',
                        work_dir, '--resume',
                        *_options(random_lenet5_teacher, 4)])
    log = resumed.stdout + resumed.stderr
    assert 'Iter(train) [3/4]' in log
    assert 'generator.loss_dis' in log and 'generator.loss_align' in log
    state = torch.load(osp.join(work_dir, 'iter_4.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert int(state['memory_bank.num_stored']) == stored + 40
    torch.testing.assert_close(state['memory_bank.images'][:stored],
                               first['memory_bank.images'][:stored])
    # the re-normalisation history continued from the checkpoint's
    assert int(state['feature_alignment_loss.num_history_updates']) == 5
