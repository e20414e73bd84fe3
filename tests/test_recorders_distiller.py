"""Unit tests of the recorders (via ``RecorderManager``) and of
``ConfigurableDistiller``."""
import pytest
import torch
from torch import nn

from mmdfkd.models.distillers import ConfigurableDistiller
from mmdfkd.models.losses import (ActivationLoss, KLDivergence,
                                  TotalVariationLoss)
from mmdfkd.models.recorders import (BNStatistics, BNStatisticsRecorder,
                                     ModuleInputs, ModuleOutputs,
                                     RecorderManager)
from mmdfkd.registry import MODELS, TASK_UTILS
from mmdfkd.utils import register_all_modules

register_all_modules()


class _Head(nn.Module):

    def __init__(self, in_features, num_classes):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.fc(x)


class TinyClassifier(nn.Module):
    """ImageClassifier-like names: backbone / neck / head.fc."""

    def __init__(self, with_bn=True, num_classes=3):
        super().__init__()
        layers = [nn.Conv2d(3, 4, 3, padding=1)]
        if with_bn:
            layers.append(nn.BatchNorm2d(4))
        layers.append(nn.ReLU())
        self.backbone = nn.Sequential(*layers)
        neck = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)]
        if with_bn:
            neck.append(nn.BatchNorm1d(5))
        self.neck = nn.Sequential(*neck)
        self.head = _Head(5, num_classes)

    def forward(self, x, mode='tensor'):
        return self.head(self.neck(self.backbone(x)))


def _model(**kwargs):
    torch.manual_seed(0)
    model = TinyClassifier(**kwargs)
    # non-trivial running statistics
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model


def _x(n=4, seed=1):
    return torch.randn(n, 3, 6, 6, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------
# ModuleOutputs / ModuleInputs through RecorderManager
# --------------------------------------------------------------------------
def test_recorders_registered():
    for name, cls in [('ModuleOutputs', ModuleOutputs),
                      ('ModuleInputs', ModuleInputs),
                      ('BNStatisticsRecorder', BNStatisticsRecorder)]:
        assert isinstance(TASK_UTILS.build(dict(type=name, source='a')), cls)


def test_module_outputs_and_inputs_record_only_inside_with():
    model = _model().eval()
    manager = RecorderManager(
        dict(
            logits=dict(type='ModuleOutputs', source='head.fc'),
            feat=dict(type='ModuleInputs', source='head.fc')))
    assert manager
    manager.prepare_from_model(model)
    model(_x())  # outside: nothing recorded
    assert manager.get_recorder('logits').data_buffer == []
    assert manager.get_recorder('feat').data_buffer == []

    with manager:
        out = model(_x())
    model(_x(seed=5))  # after the block: nothing more recorded
    logits = manager.get_recorder('logits')
    feat = manager.get_recorder('feat')
    assert len(logits.data_buffer) == 1 and len(feat.data_buffer) == 1
    assert torch.equal(logits.get_record_data(), out)
    expected_feat = model.neck(model.backbone(_x()))
    assert torch.allclose(feat.get_record_data(), expected_feat)
    assert not logits.recording


def test_one_record_per_forward_and_record_idx():
    model = _model().eval()
    manager = RecorderManager(
        dict(logits=dict(type='ModuleOutputs', source='head.fc')))
    manager.prepare_from_model(model)
    with manager:
        out0 = model(_x(seed=1))
        out1 = model(_x(seed=2))
        out2 = model(_x(seed=3))
    rec = manager.get_recorder('logits')
    assert len(rec.data_buffer) == 3
    for idx, out in enumerate([out0, out1, out2]):
        assert torch.equal(rec.get_record_data(record_idx=idx), out)
    with pytest.raises(RuntimeError, match='record_idx=3'):
        rec.get_record_data(record_idx=3)
    # entering again clears the old records
    with manager:
        pass
    assert rec.data_buffer == []
    with pytest.raises(RuntimeError, match='0 record'):
        rec.get_record_data()


def test_module_inputs_tuple_and_data_idx():

    class Pair(nn.Module):

        def forward(self, a, b):
            return a + b

    class Wrap(nn.Module):

        def __init__(self):
            super().__init__()
            self.pair = Pair()

        def forward(self, a, b):
            return self.pair(a, b)

    model = Wrap()
    manager = RecorderManager(
        dict(inp=dict(type='ModuleInputs', source='pair')))
    manager.prepare_from_model(model)
    a, b = torch.ones(2), torch.zeros(2)
    with manager:
        model(a, b)
    rec = manager.get_recorder('inp')
    assert isinstance(rec.get_record_data(), tuple)
    assert rec.get_record_data(data_idx=0) is a
    assert rec.get_record_data(data_idx=1) is b


def test_unknown_source_raises_key_error_listing_names():
    model = _model()
    manager = RecorderManager(
        dict(bad=dict(type='ModuleOutputs', source='head.fcc')))
    with pytest.raises(KeyError) as err:
        manager.prepare_from_model(model)
    msg = str(err.value)
    assert 'head.fcc' in msg
    assert 'head.fc' in msg.replace('head.fcc', '')  # a real name is listed

    manager = RecorderManager(
        dict(bad=dict(type='ModuleInputs', source='nothing.here')))
    with pytest.raises(KeyError, match='backbone'):
        manager.prepare_from_model(model)


def test_unknown_recorder_name_raises_key_error():
    manager = RecorderManager(
        dict(logits=dict(type='ModuleOutputs', source='head.fc')))
    with pytest.raises(KeyError, match='logits'):
        manager.get_recorder('logit')
    assert not RecorderManager()


def test_remove_hooks_stops_recording():
    model = _model().eval()
    manager = RecorderManager(
        dict(logits=dict(type='ModuleOutputs', source='head.fc')))
    manager.prepare_from_model(model)
    manager.get_recorder('logits').remove_hooks()
    with manager:
        model(_x())
    assert manager.get_recorder('logits').data_buffer == []


# --------------------------------------------------------------------------
# BNStatisticsRecorder
# --------------------------------------------------------------------------
def _manual_stats(x, dims):
    mean = x.mean(dim=dims)
    shape = [1] * x.dim()
    shape[1] = -1
    var = ((x - mean.view(shape))**2).mean(dim=dims)
    return mean, var


@pytest.mark.parametrize('train_mode', [False, True])
def test_bn_statistics_recorder_values(train_mode):
    model = _model()
    model.train(train_mode)
    manager = RecorderManager(
        dict(
            bn=dict(type='BNStatisticsRecorder', source=''),
            bn_in=dict(type='ModuleInputs', source='backbone.1'),
            bn1d_in=dict(type='ModuleInputs', source='neck.3')))
    manager.prepare_from_model(model)
    bn2d, bn1d = model.backbone[1], model.neck[3]
    running_before = [bn2d.running_mean.clone(), bn1d.running_mean.clone()]
    with manager:
        model(_x())
    rec = manager.get_recorder('bn')
    assert len(rec.data_buffer) == 1
    stats = rec.get_record_data()
    assert len(stats) == 2  # one per BN layer, in module order
    assert all(isinstance(s, BNStatistics) for s in stats)

    x2d = manager.get_recorder('bn_in').get_record_data()
    x1d = manager.get_recorder('bn1d_in').get_record_data()
    assert x2d.shape == (4, 4, 6, 6) and x1d.shape == (4, 5)
    for s, x, dims, bn in [(stats[0], x2d, (0, 2, 3), bn2d),
                           (stats[1], x1d, (0, ), bn1d)]:
        mean, var = _manual_stats(x, dims)
        assert torch.allclose(s.batch_mean, mean, atol=1e-6)
        assert torch.allclose(s.batch_var, var, atol=1e-6)  # biased
        tv, tm = torch.var_mean(x, dim=dims, unbiased=False)
        assert torch.allclose(s.batch_var, tv, atol=1e-6)
        assert torch.allclose(s.batch_mean, tm, atol=1e-6)
        # not the unbiased variance
        assert not torch.allclose(
            s.batch_var, x.var(dim=dims, unbiased=True), atol=1e-6)
        assert torch.equal(s.running_mean, bn.running_mean)
        assert torch.equal(s.running_var, bn.running_var)
    if not train_mode:
        # eval mode (teachers): the running statistics are the stored ones
        assert torch.equal(stats[0].running_mean, running_before[0])
        assert torch.equal(stats[1].running_mean, running_before[1])


def test_bn_statistics_recorder_gradient_flows_to_input():
    model = _model().eval()
    manager = RecorderManager(dict(bn=dict(type='BNStatisticsRecorder',
                                           source='')))
    manager.prepare_from_model(model)
    x = _x().requires_grad_(True)
    with manager:
        model(x)
    stats = manager.get_recorder('bn').get_record_data()
    sum(s.batch_mean.sum() + s.batch_var.sum() for s in stats).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bn_statistics_recorder_one_record_per_forward_and_source():
    teachers = nn.ModuleDict(dict(tea=_model().eval()))
    manager = RecorderManager(
        dict(bn=dict(type='BNStatisticsRecorder', source='tea')))
    manager.prepare_from_model(teachers)
    model = teachers['tea']
    model(_x())  # outside the block
    with manager:
        model(_x(seed=1))
        model(_x(seed=2))
    rec = manager.get_recorder('bn')
    assert len(rec.data_buffer) == 2
    assert all(len(r) == 2 for r in rec.data_buffer)
    assert not torch.equal(rec.get_record_data(0)[0].batch_mean,
                           rec.get_record_data(1)[0].batch_mean)

    # a sub-module source only watches the BNs below it
    manager = RecorderManager(
        dict(bn=dict(type='BNStatisticsRecorder', source='tea.backbone')))
    manager.prepare_from_model(teachers)
    with manager:
        model(_x())
    assert len(manager.get_recorder('bn').get_record_data()) == 1


def test_bn_statistics_recorder_without_bn_raises():
    manager = RecorderManager(dict(bn=dict(type='BNStatisticsRecorder',
                                           source='')))
    with pytest.raises(ValueError, match='no BatchNorm'):
        manager.prepare_from_model(_model(with_bn=False))
    manager = RecorderManager(
        dict(bn=dict(type='BNStatisticsRecorder', source='head')))
    with pytest.raises(ValueError, match='no BatchNorm'):
        manager.prepare_from_model(_model())


# --------------------------------------------------------------------------
# ConfigurableDistiller
# --------------------------------------------------------------------------
def _distiller_cfg():
    return dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='tea.head.fc'),
            feat=dict(type='ModuleInputs', source='tea.head.fc')),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=2.0, loss_weight=0.5),
            loss_act=dict(type='ActivationLoss', loss_weight=0.1),
            loss_tv=dict(type='TotalVariationLoss', loss_weight=3.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')),
            loss_act=dict(feat_T=dict(from_student=False, recorder='feat')),
            loss_tv=dict(images=dict(from_data='images'))))


def _setup_distiller(cfg=None):
    distiller = MODELS.build(cfg or _distiller_cfg())
    torch.manual_seed(0)
    student = TinyClassifier().eval()
    teachers = nn.ModuleDict(dict(tea=_model().eval()))
    distiller.prepare_from_student(student)
    distiller.prepare_from_teacher(teachers)
    return distiller, student, teachers


def test_distiller_builds_losses():
    distiller = MODELS.build(_distiller_cfg())
    assert isinstance(distiller, ConfigurableDistiller)
    assert set(distiller.distill_losses) == {'loss_kd', 'loss_act', 'loss_tv'}
    assert isinstance(distiller.distill_losses['loss_kd'], KLDivergence)
    assert distiller.distill_losses['loss_kd'].tau == 2.0
    assert isinstance(distiller.distill_losses['loss_act'], ActivationLoss)
    assert isinstance(distiller.distill_losses['loss_tv'], TotalVariationLoss)
    assert distiller.needs_student
    # the losses are sub-modules (moved with .to(), listed in state_dict)
    names = [n for n, _ in distiller.named_modules()]
    assert 'distill_losses.loss_kd' in names


def test_distiller_compute_losses():
    distiller, student, teachers = _setup_distiller()
    images = _x()
    with distiller.student_recorders, distiller.teacher_recorders:
        s_out = student(images)
        t_out = teachers['tea'](images)
    losses = distiller.compute_distill_losses(dict(images=images))
    assert set(losses) == {'loss_kd', 'loss_act', 'loss_tv'}
    t_feat = teachers['tea'].neck(teachers['tea'].backbone(images))
    expected = {
        'loss_kd': KLDivergence(tau=2.0, loss_weight=0.5)(s_out, t_out),
        'loss_act': ActivationLoss(loss_weight=0.1)(t_feat),
        'loss_tv': TotalVariationLoss(loss_weight=3.0)(images),
    }
    for name, value in expected.items():
        assert torch.allclose(losses[name], value, atol=1e-6), name
    assert losses['loss_kd'] > 0


def test_distiller_record_idx_mapping():
    cfg = dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='tea.head.fc')),
        distill_losses=dict(loss_l1=dict(type='L1Loss')),
        loss_forward_mappings=dict(
            loss_l1=dict(
                s_feature=dict(from_student=True, recorder='logits',
                               record_idx=1),
                t_feature=dict(from_student=False, recorder='logits'))))
    distiller, student, teachers = _setup_distiller(cfg)
    with distiller.student_recorders, distiller.teacher_recorders:
        student(_x(seed=1))
        s1 = student(_x(seed=2))
        t0 = teachers['tea'](_x(seed=3))
    loss = distiller.compute_distill_losses()['loss_l1']
    assert torch.allclose(loss, (s1 - t0).abs().mean())


def test_distiller_missing_from_data_key_raises():
    distiller, student, teachers = _setup_distiller()
    with distiller.student_recorders, distiller.teacher_recorders:
        student(_x())
        teachers['tea'](_x())
    with pytest.raises(KeyError, match='images'):
        distiller.compute_distill_losses(dict(latents=torch.zeros(4, 2)))


def test_distiller_loss_mapping_mismatch_raises():
    cfg = _distiller_cfg()
    del cfg['loss_forward_mappings']['loss_act']
    with pytest.raises(ValueError, match='loss_act'):
        MODELS.build(cfg)
    cfg = _distiller_cfg()
    cfg['loss_forward_mappings']['loss_extra'] = dict(
        images=dict(from_data='images'))
    with pytest.raises(ValueError, match='loss_extra'):
        MODELS.build(cfg)


def test_distiller_mapping_without_recorder_fields_raises():
    cfg = _distiller_cfg()
    cfg['loss_forward_mappings']['loss_act'] = dict(
        feat_T=dict(recorder='feat'))
    with pytest.raises(ValueError, match='from_student'):
        MODELS.build(cfg)


def test_distiller_mapping_to_unknown_recorder_raises():
    cfg = _distiller_cfg()
    cfg['loss_forward_mappings']['loss_act'] = dict(
        feat_T=dict(from_student=False, recorder='features'))
    with pytest.raises(KeyError, match='features'):
        MODELS.build(cfg)
    # a teacher recorder name looked up among the student recorders
    cfg = _distiller_cfg()
    cfg['loss_forward_mappings']['loss_act'] = dict(
        feat_T=dict(from_student=True, recorder='feat'))
    with pytest.raises(KeyError, match='feat'):
        MODELS.build(cfg)


def test_distiller_without_student_recorders():
    cfg = dict(
        type='ConfigurableDistiller',
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='tea.head.fc')),
        distill_losses=dict(loss_oh=dict(type='OnehotLikeLoss')),
        loss_forward_mappings=dict(
            loss_oh=dict(preds_T=dict(from_student=False,
                                      recorder='logits'))))
    distiller = MODELS.build(cfg)
    assert not distiller.needs_student
    assert MODELS.build(dict(type='ConfigurableDistiller'))\
        .compute_distill_losses() == {}
