"""DataFreeDistillation's loop on a tiny LeNet pair: gradients go where they
should, teachers stay frozen and out of checkpoints, bad inputs fail with
one clear error, and teachers load by URL with hash verification."""
import copy
import hashlib
import math
import shutil

import pytest
import torch
from mmengine.config import Config
from torch.utils.data import default_collate

from conftest import ROOT
from mmdfkd.registry import DATASETS, MODELS
from mmdfkd.utils import register_all_modules
from mmdfkd.utils.checkpoint import CheckpointHashError

register_all_modules()

DFAD = ROOT + '/configs/dfad/dfad_lenet5_lenet5half_1xb128_fashionmnist.py'


def build(config=DFAD, teacher=None, **overrides):
    cfg = Config.fromfile(config)
    cfg.model.teachers.teacher.ckpt_path = teacher
    cfg.model.generator.hidden_channels = 16
    cfg.model.update(overrides)
    model = MODELS.build(cfg.model)
    optim = {k: v for k, v in cfg.optim_wrapper.items() if k != 'constructor'}
    from mmdfkd.engine.optimizers import SeparateOptimWrapperConstructor
    return model, SeparateOptimWrapperConstructor(optim)(model), cfg


def latent_batch(cfg, batch_size=8, num_draws=None):
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    if num_draws is not None:
        dataset_cfg.num_draws = num_draws
    dataset = DATASETS.build(dataset_cfg)
    return default_collate([dataset[i] for i in range(batch_size)])


def test_train_step_updates_student_and_generator_not_teacher():
    torch.manual_seed(0)
    model, optim, cfg = build()
    model.train()
    teacher = copy.deepcopy(model.teachers.state_dict())
    student = copy.deepcopy(model.architecture.state_dict())
    generator = copy.deepcopy(model.generator.state_dict())
    logs = model.train_step(latent_batch(cfg), optim)
    assert {'student.loss_l1', 'generator.loss_adv'} <= set(logs)
    for key, value in model.teachers.state_dict().items():
        assert torch.equal(value, teacher[key]), f'teacher changed: {key}'
    assert not all(
        torch.equal(v, student[k])
        for k, v in model.architecture.state_dict().items())
    assert not all(
        torch.equal(v, generator[k])
        for k, v in model.generator.state_dict().items())
    assert not model.teachers.training


def test_generator_step_leaves_no_gradient_on_the_student():
    """MMRazor's loop leaks the generator loss's gradient into the next
    student update; ours freezes the student during the generator step."""
    model, optim, cfg = build()
    model.train()
    model._set_draws(latent_batch(cfg))
    latents, targets = model.next_draw()
    model.generator_step(latents, targets, optim['generator'])
    assert all(p.grad is None or not p.grad.any()
               for p in model.architecture.parameters())
    assert all(p.requires_grad for p in model.architecture.parameters())


def test_too_few_latent_draws_is_a_clear_error():
    model, optim, cfg = build()
    with pytest.raises(RuntimeError, match='num_draws'):
        model.train_step(latent_batch(cfg, num_draws=2), optim)


def test_nan_loss_names_the_phase():
    model, optim, cfg = build()
    model.generator.fc.weight.data.fill_(float('nan'))
    with pytest.raises(FloatingPointError, match='loss became nan'):
        model.train_step(latent_batch(cfg), optim)


def test_teachers_are_not_checkpointed_and_survive_loading():
    torch.manual_seed(0)
    model, _, _ = build()
    state = model.state_dict()
    assert state and not [k for k in state if k.startswith('teachers.')]
    other, _, _ = build()
    teacher_before = copy.deepcopy(other.teachers.state_dict())
    incompatible = other.load_state_dict(state, strict=True)
    assert not incompatible.missing_keys
    for key, value in other.teachers.state_dict().items():
        assert torch.equal(value, teacher_before[key])
    for key, value in model.architecture.state_dict().items():
        assert torch.equal(value, other.architecture.state_dict()[key])


def test_init_weights_keeps_teacher_weights(random_lenet5_teacher):
    model, _, _ = build(teacher=random_lenet5_teacher)
    loaded = copy.deepcopy(model.teachers.state_dict())
    model.init_weights()
    for key, value in model.teachers.state_dict().items():
        assert torch.equal(value, loaded[key])


def test_predict_sets_teacher_labels_for_agreement():
    from mmpretrain.structures import DataSample
    model, _, _ = build()
    model.eval()
    samples = [DataSample().set_gt_label(0) for _ in range(3)]
    results = model(torch.randn(3, 1, 32, 32), samples, mode='predict')
    assert all(r.teacher_pred_label.shape == (1, ) for r in results)
    with pytest.raises(RuntimeError, match='no supervised loss'):
        model(torch.randn(3, 1, 32, 32), samples, mode='loss')


def test_reuse_generator_batch_consumes_one_draw():
    """DAFL: the student learns on the generator's (detached) batch."""
    config = ROOT + '/configs/dafl/dafl_lenet5_lenet5half_1xb128_fashionmnist.py'
    model, optim, cfg = build(config)
    assert model.draws_per_iteration == 1
    model.train_step(latent_batch(cfg, num_draws=1), optim)


def _sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def test_teacher_by_url_with_hash_prefix(served_dir, random_lenet5_teacher,
                                         monkeypatch, tmp_path):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    folder, base_url = served_dir
    sha = _sha256(random_lenet5_teacher)
    good = f'lenet5_fashionmnist-{sha[:8]}.pth'
    shutil.copy(random_lenet5_teacher, folder / good)
    model, _, _ = build(teacher=f'{base_url}/{good}')
    expected = torch.load(random_lenet5_teacher, weights_only=True)
    for key, value in expected['state_dict'].items():
        assert torch.equal(model.teachers.teacher.state_dict()[key], value)

    wrong = 'lenet5_fashionmnist-{}.pth'.format(
        '0' * 8 if not sha.startswith('0' * 8) else '1' * 8)
    shutil.copy(random_lenet5_teacher, folder / wrong)
    with pytest.raises(CheckpointHashError):
        build(teacher=f'{base_url}/{wrong}')


def test_information_entropy_of_uniform_prediction_via_registry():
    loss = MODELS.build(dict(type='InformationEntropyLoss'))
    assert loss(torch.zeros(4, 10)).item() == pytest.approx(-math.log(10))
