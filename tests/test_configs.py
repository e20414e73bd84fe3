"""Every config in configs/ parses; every data-free config builds its
algorithm (teachers with random weights: no download) and its latent
dataset supplies the draws one iteration consumes."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from conftest import ROOT
from mmdfkd.registry import DATASETS, MODELS
from mmdfkd.utils import register_all_modules
from mmdfkd.utils.config_checks import check_config

register_all_modules()

ALL_CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)
DATA_FREE = [p for p in ALL_CONFIGS if '/teachers/' not in p]


def short(path):
    return osp.relpath(path, ROOT)


def test_configs_found():
    assert len(DATA_FREE) >= 12  # 4 methods x (CIFAR-10, CIFAR-100, FMNIST)


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=short)
def test_config_parses_and_passes_checks(path):
    cfg = Config.fromfile(path)
    check_config(cfg)
    assert cfg.default_scope == 'mmdfkd'


@pytest.mark.parametrize('path', DATA_FREE, ids=short)
def test_data_free_config_builds(path):
    cfg = Config.fromfile(path)
    # training reads no image: only latent noise
    assert cfg.train_dataloader.dataset.type == 'LatentNoiseDataset'
    for teacher in cfg.model.teachers.values():
        assert teacher.ckpt_path, 'every shipped config names its teacher'
        teacher.ckpt_path = None  # random weights: no download in tests
    model = MODELS.build(cfg.model)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.num_draws >= model.draws_per_iteration
    assert dataset.num_classes == cfg.model.data_preprocessor.num_classes
    item = dataset[0]
    if dataset.latent_dim:
        images = model.generator(item['latents'][:1].repeat(2, 1))
        size = cfg.val_dataloader.dataset.get('pipeline', [{}])[0].get(
            'crop_size', 32)
        assert images.shape[-1] == size, 'generator and data size differ'
        with torch.no_grad():
            for teacher in model.teachers.values():
                teacher.eval()(images, mode='tensor')


def test_bad_config_key_is_named():
    cfg = Config(dict(trian_cfg=dict(max_iters=1)))
    with pytest.raises(ValueError, match="did you mean 'train_cfg'"):
        check_config(cfg)


def test_non_positive_batch_size_is_named():
    cfg = Config(dict(train_dataloader=dict(batch_size=0)))
    with pytest.raises(ValueError, match='batch_size'):
        check_config(cfg)
