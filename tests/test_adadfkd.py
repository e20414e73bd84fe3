"""AdaDFKD: the R2M ring loss with its window of negatives, the in-batch
InfoNCE and the self-paced student loss against hand-computed values, the
window curriculum against a transcription of the reference code for every
shipped config, the feature queue (wrap-around, state on resume), the fixed
projection, the window schedule inside the loop, and a tiny end-to-end run
of the Fashion-MNIST config through tools/train.py with a --resume that
continues the queue where the checkpoint left it."""
import glob
import math
import os.path as osp
import re

import pytest
import test_e2e_train as e2e
import torch
from conftest import ROOT, run_tool
from mmengine.config import Config
from test_algorithm import build, latent_batch

from mmdfkd.models.losses import (
    InBatchInfoNCELoss,
    RelationFeatureProjection,
    RelationRefinementLoss,
    SelfPacedInfoNCEDistillationLoss,
)
from mmdfkd.models.memory import FeatureQueue
from mmdfkd.models.utils import LinearWeightCurriculum
from mmdfkd.registry import TASK_UTILS
from mmdfkd.utils import register_all_modules

register_all_modules()

ADADFKD = osp.join(
    ROOT, 'configs/adadfkd/adadfkd_lenet5_lenet5half_1xb128_fashionmnist.py')
SHIPPED = sorted(glob.glob(osp.join(ROOT, 'configs/adadfkd/*.py')))


# --------------------------------------------------------------------------
# RelationRefinementLoss (R2M)
# --------------------------------------------------------------------------
def _ring(window_length=1.0, **kwargs):
    loss = RelationRefinementLoss(
        feature_dim=2, queue_size=4, temperature=0.5,
        window_length=window_length, **kwargs)
    # negatives with similarities 0.6, 0.8, -0.6, -0.8 to q = (0.6, 0.8)
    loss.queue.features.copy_(
        torch.tensor([[1.0, 0], [0, 1], [-1, 0], [0, -1]]))
    return loss


QUERY = torch.tensor([[3.0, 4.0]])  # q = (0.6, 0.8)
KEY = torch.tensor([[2.0, 0.0]])  # k = (1, 0): positive similarity 0.6


def test_ring_loss_full_queue_hand_value():
    loss = _ring()
    # logits [0.6 | -0.8, -0.6, 0.6, 0.8] / 0.5, label 0
    expected = math.log(2 * math.exp(1.2) + math.exp(-1.6) +
                        math.exp(-1.2) + math.exp(1.6)) - 1.2
    assert expected == pytest.approx(1.2929043329)
    assert float(loss(QUERY, KEY)) == pytest.approx(expected, rel=1e-6)


def test_ring_loss_keeps_the_curriculum_window():
    loss = _ring(window_length=0.5, loss_weight=2.0)
    loss.window_start = 0.25  # K = 4: ranks [1, 3) of -0.8, -0.6, 0.6, 0.8
    assert loss.negative_window() == (1, 3)
    query = QUERY.clone().requires_grad_()
    value = loss(query, KEY)
    # logits [0.6 | -0.6, 0.6] / 0.5 = [1.2, -1.2, 1.2]: log(2 + e^-2.4)
    assert float(value.detach()) == pytest.approx(2 * 0.7375075253,
                                                  rel=1e-6)
    value.backward()  # the query (teacher) carries the gradient
    assert query.grad.abs().sum() > 0
    # the hardest window: ranks [2, 4) -> [1.2 | 1.2, 1.6]
    loss.window_start = 0.5
    expected = math.log(2 * math.exp(1.2) + math.exp(1.6)) - 1.2
    assert float(loss(QUERY, KEY)) == pytest.approx(2 * expected, rel=1e-6)


def test_ring_loss_enqueues_detached_keys_and_wraps():
    loss = _ring()
    key = KEY.clone().requires_grad_()
    loss(QUERY, key)
    assert key.grad is None and not loss.queue.features.requires_grad
    # the normalised key replaced the oldest slot (0)
    assert loss.queue.features[0].tolist() == [1.0, 0.0]
    assert int(loss.queue.write_pos) == 1
    loss.eval()  # no enqueue outside training
    loss(QUERY, torch.tensor([[0.0, 5.0]]))
    assert int(loss.queue.write_pos) == 1


def test_ring_loss_projects_student_features():
    loss = RelationRefinementLoss(
        feature_dim=6, student_feature_dim=3, queue_size=8)
    f_s = torch.randn(5, 3)
    loss(torch.randn(5, 6), f_s)
    keys = loss.queue.features[:5]
    expected = loss.projection(f_s)
    torch.testing.assert_close(
        keys, expected / expected.norm(dim=1, keepdim=True))
    with pytest.raises(ValueError, match='feature_dim'):
        loss(torch.randn(5, 4), f_s)
    with pytest.raises(ValueError, match='student feature width'):
        loss(torch.randn(5, 6), torch.randn(5, 4))
    with pytest.raises(ValueError, match='window_length'):
        RelationRefinementLoss(feature_dim=2, window_length=0)


# --------------------------------------------------------------------------
# Curriculum h(epoch) of the window
# --------------------------------------------------------------------------
def _reference_window_start(epoch, epochs, length, begin, end):
    """hard_factor of the reference's datafree_kd.py."""
    return min(
        max(0, (1 - length) * (epoch - int(begin * epochs)) /
            int(epochs * (end - begin))), 1 - length)


def test_window_curriculum_hand_values():
    # CIFAR-10 script: length 0.9, fractions 0.25 / 0.75 of 300 epochs
    ramp = LinearWeightCurriculum(
        start=0.0, slope=0.1 / 150, begin=75, end=225, iters_per_epoch=40)
    assert ramp(75 * 40 + 39) == 0.0
    assert ramp(76 * 40) == pytest.approx(0.1 / 150)
    assert ramp(150 * 40) == pytest.approx(0.05)
    assert ramp(225 * 40) == pytest.approx(0.1) == ramp(299 * 40 + 39)


@pytest.mark.parametrize('path', SHIPPED, ids=osp.basename)
def test_shipped_window_curriculum_matches_reference(path):
    cfg = Config.fromfile(path)
    schedule = TASK_UTILS.build(cfg.model.negative_window_schedules.loss_r2m)
    length = cfg.model.generator_distiller.distill_losses.loss_r2m[
        'window_length']
    epochs = cfg.epochs
    assert cfg.train_cfg.max_iters == epochs * schedule.iters_per_epoch
    for epoch in range(epochs):
        assert schedule(epoch * schedule.iters_per_epoch + 3) == \
            pytest.approx(_reference_window_start(
                epoch, epochs, length, cfg.begin_fraction,
                cfg.end_fraction), abs=1e-12)


def test_loop_sets_the_window_start():
    torch.manual_seed(0)
    model, optim, cfg = build(ADADFKD, student_iter=1)
    r2m = model.generator_distiller.distill_losses['loss_r2m']
    model.train_iter.fill_(8 * 40)  # epoch 8 of 18: (8 - 4) / 9 of 0.1
    model.train()
    logs = model.train_step(latent_batch(cfg, 8, num_draws=2), optim)
    assert r2m.window_start == pytest.approx(0.1 * 4 / 9)
    assert float(logs['generator.loss_r2m_window_start']) == pytest.approx(
        0.1 * 4 / 9)
    assert float(logs['generator.loss_r2m']) > 0
    assert int(r2m.queue.write_pos) == 8
    assert {'student.loss_kd_distance', 'student.loss_kd_info_nce',
            'student.loss_kd_lambda'} <= set(logs)
    with pytest.raises(KeyError, match='not losses of generator_distiller'):
        build(ADADFKD, negative_window_schedules={
            'loss_rm2': {'type': 'LinearWeightCurriculum', 'end': 1}})
    with pytest.raises(TypeError, match='window_start'):
        build(ADADFKD, negative_window_schedules={
            'loss_bn': {'type': 'LinearWeightCurriculum', 'end': 1}})


# --------------------------------------------------------------------------
# InBatchInfoNCELoss and the self-paced student loss
# --------------------------------------------------------------------------
F_T = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
F_S = torch.tensor([[3.0, 0.0], [1.0, 1.0]])  # cosines: [[1, c], [0, c]]
C = math.sqrt(0.5)
NCE = [math.log(math.e + math.exp(C)) - 1, math.log(1 + math.exp(C)) - C]


def test_in_batch_info_nce_hand_values():
    loss = InBatchInfoNCELoss(feature_dim=2, temperature=1.0, loss_weight=3.0)
    assert NCE == pytest.approx([0.5573857639, 0.4008335265])
    assert loss.sample_losses(F_S, F_T).tolist() == pytest.approx(NCE)
    feats = F_S.clone().requires_grad_()
    teacher = F_T.clone().requires_grad_()
    value = loss(feats, teacher)
    assert float(value) == pytest.approx(3 * 0.4791096452)
    value.backward()  # the student learns, the teacher is detached
    assert feats.grad.abs().sum() > 0 and teacher.grad is None


S = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
T = torch.tensor([[0.0, 0.0], [0.0, 4.0]])  # L1 per sample: 0.5 and 2.0


def _student_loss(per_sample):
    return SelfPacedInfoNCEDistillationLoss(
        distance='l1', per_sample=per_sample,
        self_paced={'lambda_0': 2.0, 'alpha': 1e-4},
        info_nce={'feature_dim': 2, 'temperature': 1.0, 'loss_weight': 0.1})


def test_self_paced_info_nce_batch_mean_is_the_reference_code():
    loss = _student_loss(per_sample=False)
    # l = 1.25 + 0.1 * 0.47911 = 1.29791; v = (1 + e^-2) / (1 + e^(l - 2))
    assert float(loss(S, T, F_S, F_T)) == pytest.approx(0.9852997864)
    assert float(loss.last_weight) == pytest.approx(0.7591428175)
    assert float(loss.last_kd) == pytest.approx(1.25)
    assert float(loss.last_info_nce) == pytest.approx(0.4791096452)


def test_self_paced_info_nce_per_sample_hand_value():
    loss = _student_loss(per_sample=True)
    # l_i = 0.5 + 0.1 * 0.55739, 2.0 + 0.1 * 0.40083; v_i = 0.91862, 0.55629
    assert float(loss(S, T, F_S, F_T)) == pytest.approx(0.8226961660)
    assert int(loss.self_paced.num_steps) == 1


# --------------------------------------------------------------------------
# FeatureQueue and RelationFeatureProjection
# --------------------------------------------------------------------------
def test_queue_starts_with_random_unit_keys_and_wraps_any_batch():
    queue = FeatureQueue(feature_dim=3, capacity=5, seed=1)
    assert len(queue) == 5
    torch.testing.assert_close(queue.keys().norm(dim=1), torch.ones(5))
    torch.testing.assert_close(
        queue.keys(), FeatureQueue(feature_dim=3, capacity=5, seed=1).keys())
    first, second = torch.arange(9.0).view(3, 3), -torch.arange(9.0).view(
        3, 3)
    queue.enqueue(first)
    queue.enqueue(second)  # 3 does not divide 5: wraps to slot 0
    assert int(queue.write_pos) == 1
    torch.testing.assert_close(queue.features[[3, 4, 0]], second)
    torch.testing.assert_close(queue.features[1:3], first[1:])
    # the reference's CIFAR-10 script: 4096 keys, batch 768
    big = FeatureQueue(feature_dim=2, capacity=4096)
    for _ in range(6):
        big.enqueue(torch.ones(768, 2))
    assert int(big.write_pos) == 6 * 768 % 4096


def test_queue_state_is_restored_and_checked():
    loss = RelationRefinementLoss(feature_dim=4, queue_size=6)
    for _ in range(3):
        loss(torch.randn(4, 4), torch.randn(4, 4))
    resumed = RelationRefinementLoss(feature_dim=4, queue_size=6)
    resumed.load_state_dict(loss.state_dict())
    assert torch.equal(resumed.queue.features, loss.queue.features)
    assert int(resumed.queue.write_pos) == 12 % 6
    other = RelationRefinementLoss(feature_dim=4, queue_size=8)
    with pytest.raises(RuntimeError, match='feature bank'):
        other.load_state_dict(loss.state_dict(), strict=False)


def test_projection_is_fixed_semi_orthogonal_and_shared():
    up = RelationFeatureProjection(3, 7, seed=0)
    torch.testing.assert_close(up.weight.t() @ up.weight, torch.eye(3))
    x = torch.randn(4, 3)
    torch.testing.assert_close(up(x) @ up(x).t(), x @ x.t())  # isometry
    down = RelationFeatureProjection(7, 3, seed=0)
    torch.testing.assert_close(down.weight @ down.weight.t(), torch.eye(3))
    assert up.state_dict() == {}  # a function of the config only
    assert RelationFeatureProjection(5, 5)(x.repeat(1, 2)[:, :5]).shape == (
        4, 5)
    student = InBatchInfoNCELoss(feature_dim=7, student_feature_dim=3)
    generator = RelationRefinementLoss(feature_dim=7, student_feature_dim=3)
    assert torch.equal(student.projection.weight,
                       generator.projection.weight)


# --------------------------------------------------------------------------
# End to end through tools/train.py, with a resume
# --------------------------------------------------------------------------
e2e.TINY['adadfkd'] = [
    'train_dataloader.batch_size=8', 'model.student_iter=2',
    'train_dataloader.dataset.num_draws=3',
    'model.generator.hidden_channels=16',
    # 8 keys per iteration into 20 slots: wraps around after 3 iterations
    'model.generator_distiller.distill_losses.loss_r2m.queue_size=20'
]
QUEUE = 'generator_distiller.distill_losses.loss_r2m.queue.'


def test_train_and_resume_continue_the_queue(tmp_path, random_lenet5_teacher,
                                             fashion_mnist_root):
    work_dir = str(tmp_path / 'resumed')
    options = e2e.cfg_options('adadfkd', random_lenet5_teacher, 2)
    run_tool(['tools/train.py', ADADFKD, '--work-dir', work_dir, *options])
    keys = torch.load(osp.join(work_dir, 'iter_2.pth'),
                      weights_only=True)['state_dict']
    assert not [k for k in keys if k.startswith('teachers.')]
    assert int(keys[QUEUE + 'write_pos']) == 16
    assert int(keys[QUEUE + 'num_added']) == 16
    resumed = run_tool(
        ['tools/train.py', ADADFKD, '--work-dir', work_dir, '--resume',
         *e2e.cfg_options('adadfkd', random_lenet5_teacher, 4)])
    log = resumed.stdout + resumed.stderr
    assert re.search(r'Iter\(train\) \[3/4\]', log), log[-2000:]
    assert 'generator.loss_r2m' in log and 'student.loss_kd_info_nce' in log
    after = torch.load(osp.join(work_dir, 'iter_4.pth'),
                       weights_only=True)['state_dict']
    # iterations 3 and 4 wrote slots 16-19 and 0-11; slots 12-15 still hold
    # iteration 2's keys, as restored from the checkpoint
    assert int(after[QUEUE + 'write_pos']) == 32 % 20
    assert int(after[QUEUE + 'num_added']) == 32
    assert torch.equal(after[QUEUE + 'features'][12:16],
                       keys[QUEUE + 'features'][12:16])
    assert not torch.equal(after[QUEUE + 'features'][:12],
                           keys[QUEUE + 'features'][:12])
