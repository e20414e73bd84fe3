"""Speed changes and switches change no result beyond their stated tolerance.

* Teacher outputs reused (always on): DAFL's student step takes the teacher
  records of the generator step on the same batch: losses and weights are
  bit-identical to running the teacher again, with one teacher forward per
  iteration instead of two; a different or modified batch runs it again.
* Batched latent sampling (always on): Philox4x32-10 matches Random123's
  known answers; a batch equals its items; draws are reproducible and
  N(0, 1) / uniform.
* ``channels_last``: losses within 1e-5 relative; gradients' cosine
  similarity >= 0.99, and for DAFL's smooth losses within 1e-4 relative L2
  (float rounding only; DFAD's L1 losses have sign(student - teacher)
  gradients, which flip where the two are within rounding of each other).
* ``autocast_dtype='bfloat16'``: losses within 5e-2 relative + 5e-3
  absolute, gradients' cosine similarity >= 0.9 (bfloat16 keeps 8
  significant bits; measured 0.95 to 0.99).
* ``compile_networks``: with dynamo's ``eager`` backend (graph capture,
  recorder hooks included) bit-identical; with ``aot_eager`` (AOTAutograd's
  traced and re-partitioned forward/backward graphs, what inductor
  compiles from) losses within 1e-5 relative and gradients' cosine
  similarity >= 0.99; inductor itself compiles for minutes on one CPU
  core, so docs/benchmark.md measures it instead.

Only one iteration with one step per network is compared for the switches
(DFAD with ``student_iter=1``): DAFL's generator learns with Adam at lr 0.2,
whose first update is about lr * sign(gradient), so any rounding difference
flips some near-zero gradients and later steps drift apart for every switch
alike.
"""
import copy
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from mmengine.config import Config
from mmengine.dataset import InfiniteSampler, default_collate
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from torch.utils.data import DataLoader

from mmdfkd.datasets import LatentNoiseDataset
from mmdfkd.datasets.latent_noise_dataset import philox4x32
from mmdfkd.registry import DATASETS, MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

DAFL = osp.join(ROOT,
                'configs/dafl/dafl_lenet5_lenet5half_1xb128_fashionmnist.py')
DFAD = osp.join(ROOT,
                'configs/dfad/dfad_lenet5_lenet5half_1xb128_fashionmnist.py')
BATCH = 64
# one step per network and iteration (see the module docstring)
SWITCH_RECIPES = [(DAFL, {}), (DFAD, {'student_iter': 1})]


@pytest.fixture(autouse=True)
def quiet_logger():
    # random teachers warn once per build; nothing else is of interest
    MMLogger.get_instance('test_speed_switches', log_level='ERROR')


def build(config, **switches):
    """Model and optimiser wrappers, identical for every call (seed 0)."""
    cfg = Config.fromfile(config)
    cfg.model.teachers.teacher.ckpt_path = None
    cfg.model.update(switches)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper), cfg


def latent_batches(cfg, count, batch_size=BATCH):
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return [
        default_collate(
            dataset.__getitems__(range(i * batch_size, (i + 1) * batch_size)))
        for i in range(count)
    ]


def count_teacher_forwards(model):
    calls = []
    teacher = model.teachers.teacher
    teacher.register_forward_pre_hook(lambda *_: calls.append(1))
    return calls


def record_gradients(optim_wrapper):
    """Record every parameter gradient just before each optimiser step."""
    grads = []
    for wrapper in optim_wrapper.values():
        step = wrapper.step

        def recording_step(*args, _step=step, _wrapper=wrapper, **kwargs):
            grads.append(
                torch.cat([
                    p.grad.flatten()
                    for group in _wrapper.optimizer.param_groups
                    for p in group['params'] if p.grad is not None
                ]).double())
            return _step(*args, **kwargs)

        wrapper.step = recording_step
    return grads


def one_step(config, batches=1, **switches):
    """Logs of ``batches`` train steps and the gradients of the first."""
    model, optim_wrapper, cfg = build(config, **switches)
    grads = record_gradients(optim_wrapper)
    logs = [{k: float(v) for k, v in model.train_step(b, optim_wrapper)
             .items()} for b in latent_batches(cfg, batches)]
    return logs, grads


# ---------------------------------------------------- teacher outputs reused
def test_dafl_reuses_the_generator_steps_teacher_outputs():
    runs = {}
    for reuse in (True, False):
        model, optim_wrapper, cfg = build(DAFL)
        if not reuse:  # the previous behaviour: the student step reruns it
            model.reuse_teacher_records = lambda images: False
        calls = count_teacher_forwards(model)
        logs = [model.train_step(b, optim_wrapper)
                for b in latent_batches(cfg, 3)]
        runs[reuse] = logs, len(calls), copy.deepcopy(model.state_dict())
    (logs, calls, state), (ref_logs, ref_calls, ref_state) = runs[True], \
        runs[False]
    assert (calls, ref_calls) == (3, 6)  # one teacher forward per iteration
    for ours, theirs in zip(logs, ref_logs, strict=True):
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert torch.equal(ours[key], theirs[key]), key
    for key, value in state.items():
        assert torch.equal(value, ref_state[key]), key


def test_dfad_runs_the_teacher_for_every_step():
    model, optim_wrapper, cfg = build(DFAD)
    calls = count_teacher_forwards(model)
    model.train_step(latent_batches(cfg, 1)[0], optim_wrapper)
    assert len(calls) == model.student_iter + model.generator_iter
    assert model._teacher_records is None


@pytest.mark.parametrize('change', ['new tensor', 'modified in place'])
def test_a_changed_student_batch_runs_the_teacher_again(change):
    model, optim_wrapper, cfg = build(DAFL)
    reused = model.sample_student_batch

    def changed_batch():
        batch = dict(reused())
        if change == 'new tensor':  # e.g. an augmented copy
            batch['images'] = batch['images'].flip(3)
        else:
            batch['images'].mul_(0.5)
        return batch

    model.sample_student_batch = changed_batch
    calls = count_teacher_forwards(model)
    recorded = []
    teacher_fc = model.teachers.teacher.head.fc
    teacher_fc.register_forward_hook(lambda m, i, o: recorded.append(o))
    model.train_step(latent_batches(cfg, 1)[0], optim_wrapper)
    assert len(calls) == 2
    # the student step's KD target is the teacher on the changed images
    assert torch.equal(
        model.distiller.teacher_recorders.get_recorder(
            'logits').get_record_data(), recorded[-1])


def test_teacher_records_are_not_reused_under_another_autocast_state():
    model, optim_wrapper, cfg = build(DAFL)
    model.train_step(latent_batches(cfg, 1)[0], optim_wrapper)
    images = model._last_generated['images']
    assert model.reuse_teacher_records(images)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not model.reuse_teacher_records(images)
    assert not model.reuse_teacher_records(images.clone())


# --------------------------------------------------- batched latent sampling
@pytest.mark.parametrize('counter, key, expected', [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, ) * 4, (0xFFFFFFFF, ) * 2,
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
     (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_matches_random123_known_answers(counter, key, expected):
    words = philox4x32([np.array([c], dtype=np.uint64) for c in counter], key)
    assert tuple(int(w[0]) for w in words) == expected


def test_batched_draws_equal_items_and_are_reproducible():
    dataset = LatentNoiseDataset(latent_dim=7, num_classes=10, num_draws=3,
                                 seed=5)
    indices = [9, 0, 2**19 + 3, 4, 4]
    batch = dataset.__getitems__(indices)
    again = LatentNoiseDataset(latent_dim=7, num_classes=10, num_draws=3,
                               seed=5).__getitems__(indices)
    for index, item, other in zip(indices, batch, again, strict=True):
        single = dataset[index]
        for key in ('latents', 'targets'):
            assert torch.equal(item[key], single[key])
            assert torch.equal(item[key], other[key])
    assert torch.equal(batch[3]['latents'], batch[4]['latents'])
    assert not torch.equal(batch[0]['latents'], batch[1]['latents'])
    # draw d does not depend on num_draws; another seed changes everything
    fewer = LatentNoiseDataset(latent_dim=7, num_classes=10, num_draws=2,
                               seed=5)[9]
    assert torch.equal(fewer['latents'], batch[0]['latents'][:2])
    other_seed = LatentNoiseDataset(latent_dim=7, num_classes=10,
                                    num_draws=3, seed=6)[9]
    assert not torch.equal(other_seed['latents'], batch[0]['latents'])


def test_dataloader_batches_are_reproducible():
    dataset = LatentNoiseDataset(latent_dim=100, num_classes=10)

    def batches():
        loader = DataLoader(dataset, batch_size=32, collate_fn=default_collate,
                            sampler=InfiniteSampler(dataset, seed=3))
        iterator = iter(loader)
        return [next(iterator) for _ in range(3)]

    for ours, theirs in zip(batches(), batches(), strict=True):
        assert torch.equal(ours['latents'], theirs['latents'])
        assert torch.equal(ours['targets'], theirs['targets'])


def test_draws_are_standard_normal_and_uniform():
    dataset = LatentNoiseDataset(latent_dim=256, num_classes=10, num_draws=4)
    items = default_collate(dataset.__getitems__(range(1024)))
    z = items['latents'].double().flatten()  # 2**20 normals
    assert abs(float(z.mean())) < 5e-3
    assert abs(float(z.std()) - 1) < 5e-3
    for threshold, tail in ((1, 0.3173), (2, 0.0455), (3, 0.0027)):
        assert abs(float((z.abs() > threshold).double().mean()) - tail) \
            < 0.05 * tail + 2e-4
    assert float(z.abs().max()) <= 5.78
    counts = torch.bincount(items['targets'].flatten(), minlength=10)
    assert len(counts) == 10
    # chi-square, 9 degrees of freedom: P(> 27.9) = 0.001
    expected = items['targets'].numel() / 10
    assert float(((counts - expected)**2 / expected).sum()) < 27.9


def test_invalid_seed_and_index_are_clear_errors():
    with pytest.raises(ValueError, match='seed'):
        LatentNoiseDataset(latent_dim=2, num_classes=2, seed=-1)
    dataset = LatentNoiseDataset(latent_dim=2, num_classes=2, length=8)
    with pytest.raises(IndexError, match='out of range'):
        dataset.__getitems__([0, 8])


# -------------------------------------------------------------- the switches
def relative_l2(ours, theirs):
    return float((ours - theirs).norm() / theirs.norm())


def cosine(ours, theirs):
    return float(torch.nn.functional.cosine_similarity(ours, theirs, dim=0))


@pytest.mark.parametrize('config, recipe', SWITCH_RECIPES)
def test_channels_last_agrees_with_float32(config, recipe):
    ref_logs, ref_grads = one_step(config, **recipe)
    logs, grads = one_step(config, channels_last=True, **recipe)
    model, _, _ = build(config, channels_last=True)
    conv = model.teachers.teacher.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    for key, value in ref_logs[0].items():
        assert logs[0][key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    assert len(grads) == len(ref_grads) == 2
    for ours, theirs in zip(grads, ref_grads, strict=True):
        assert cosine(ours, theirs) >= 0.99
        if config == DAFL:
            assert relative_l2(ours, theirs) < 1e-4


@pytest.mark.parametrize('config, recipe', SWITCH_RECIPES)
def test_bfloat16_autocast_agrees_with_float32(config, recipe):
    ref_logs, ref_grads = one_step(config, **recipe)
    logs, grads = one_step(config, autocast_dtype='bfloat16', **recipe)
    for key, value in ref_logs[0].items():
        assert logs[0][key] == pytest.approx(value, rel=5e-2, abs=5e-3), key
    assert len(grads) == len(ref_grads) == 2
    for ours, theirs in zip(grads, ref_grads, strict=True):
        assert cosine(ours, theirs) >= 0.9


def test_bfloat16_autocast_runs_in_bfloat16_and_stores_float32():
    model, optim_wrapper, cfg = build(DAFL, autocast_dtype='bfloat16')
    dtypes = []
    model.teachers.teacher.head.fc.register_forward_hook(
        lambda m, i, o: dtypes.append(o.dtype))
    model.train_step(latent_batches(cfg, 1)[0], optim_wrapper)
    assert dtypes == [torch.bfloat16]
    assert model.last_synthetic_batch.dtype == torch.float32
    with pytest.raises(ValueError, match='float16 needs loss scaling'):
        build(DAFL, autocast_dtype='float16')


def test_compiled_networks_agree_with_eager():
    ref_logs, ref_grads = one_step(DAFL, batches=2)
    logs, grads = one_step(
        DAFL, batches=2, compile_networks={'backend': 'eager'})
    assert logs == ref_logs
    for ours, theirs in zip(grads, ref_grads, strict=True):
        assert torch.equal(ours, theirs)
    with pytest.raises(TypeError, match='compile_networks'):
        build(DAFL, compile_networks='inductor')
    with pytest.raises(RuntimeError, match='torch.compile does not work'):
        build(DAFL, compile_networks={'backend': 'no_such_backend'})


def test_train_amp_on_cpu_is_bfloat16_autocast(monkeypatch):
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import train as train_tool
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config.fromfile(DAFL)
    train_tool.use_amp(cfg)
    assert cfg.model.autocast_dtype == 'bfloat16'
    assert cfg.optim_wrapper.architecture.get('type') != 'AmpOptimWrapper'
    teacher_cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/models/lenet5_fashionmnist.py'))
    with pytest.raises(SystemExit, match='without --amp on CPU'):
        train_tool.use_amp(teacher_cfg)


def test_benchmark_checks_the_plain_loop_with_the_switches_off():
    from test_benchmark_tool import load_benchmark_tool
    tool = load_benchmark_tool()
    cfg = Config.fromfile(DAFL)
    cfg.model.update(channels_last=True, autocast_dtype='bfloat16')
    assert tool.speed_switches(cfg) == {
        'channels_last': True, 'autocast_dtype': 'bfloat16'}
    plain_cfg = tool.without_speed_switches(cfg)
    assert tool.speed_switches(plain_cfg) == {}
    assert 'channels_last' in cfg.model  # the timed config keeps them


def test_kd_loss_under_bfloat16_autocast_is_a_divergence():
    """Fast's and NAYER's student loss at tau = 20 on a student close to its
    teacher: the logits come out of a layer under bfloat16 autocast, the
    loss must still be a KL divergence (>= 0), within the switch's loss
    tolerance (5e-2 relative + 5e-3 absolute) of the float32 run, and
    float32 arithmetic on the bfloat16 logits (1e-4 relative). Computed in
    bfloat16, log_softmax(logits / 20) rounds the log-probabilities to
    about 0.016, far more than they differ: the loss came out as -7.5
    times the true divergence here (and as -1.5 in a Fast run)."""
    from mmdfkd.models.losses import KLDivergence
    torch.manual_seed(0)
    teacher = torch.randn(256, 10) * 5
    student = teacher + 0.1 * torch.randn(256, 10)
    head = torch.nn.Linear(10, 10)  # the identity: only its rounding counts
    with torch.no_grad():
        head.weight.copy_(torch.eye(10))
        head.bias.zero_()
    kd = KLDivergence(tau=20.0)
    with torch.no_grad():
        reference = float(kd(head(student), head(teacher)))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            preds_S, preds_T = head(student), head(teacher)
            loss = kd(preds_S, preds_T)
    assert preds_S.dtype == torch.bfloat16
    assert loss.dtype == torch.float32
    assert float(loss) >= 0
    assert float(loss) == pytest.approx(reference, rel=5e-2, abs=5e-3)
    # the only error left is the logits' own bfloat16 rounding
    exact = float(kd(preds_S.double(), preds_T.double()))
    assert float(loss) == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize('loss_cfg', [
    dict(type='AgreementMaskedKLDivergence', tau=20.0),
    dict(type='SelfPacedDistillationLoss', tau=20.0),
    dict(type='JSDivergence', tau=20.0),
], ids=lambda cfg: cfg['type'])
def test_softmax_losses_compute_in_float32_on_bfloat16_logits(loss_cfg):
    """The other softmax-based losses share KLDivergence's float32 cast:
    on bfloat16 logits they agree with float64 arithmetic on the same
    (rounded) logits, which bfloat16 arithmetic at tau = 20 does not."""
    from mmdfkd.registry import MODELS
    torch.manual_seed(0)
    teacher = torch.randn(256, 10) * 5
    preds_T = teacher.bfloat16()
    preds_S = (teacher + 0.1 * torch.randn(256, 10)).bfloat16()
    loss = MODELS.build(loss_cfg)
    value = loss(preds_S, preds_T)
    assert value.dtype == torch.float32
    exact = float(MODELS.build(loss_cfg)(preds_S.double(), preds_T.double()))
    assert float(value) >= 0
    assert float(value) == pytest.approx(exact, rel=1e-3, abs=1e-7)


def test_aot_autograd_compiled_networks_agree_with_eager():
    """``aot_eager`` traces forward and backward through AOTAutograd
    (functionalisation, decompositions, a joint graph that is partitioned
    again), the path inductor compiles from, without generating code: the
    results may differ by float rounding only."""
    ref_logs, ref_grads = one_step(DAFL)
    logs, grads = one_step(DAFL, compile_networks={'backend': 'aot_eager'})
    assert logs[0].keys() == ref_logs[0].keys()
    for key, value in ref_logs[0].items():
        assert logs[0][key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    assert len(grads) == len(ref_grads) == 2
    for ours, theirs in zip(grads, ref_grads, strict=True):
        assert cosine(ours, theirs) >= 0.99
