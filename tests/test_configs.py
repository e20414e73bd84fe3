"""Every file in configs/ parses; every file that defines a classifier (the
per-architecture model files, the seed-pair files, the teacher configs)
builds it and runs it on its input size; every data-free config builds its
algorithm (teachers with random weights: no download) and its latent
dataset supplies the draws one iteration consumes."""
import glob
import os.path as osp
import re

import mmpretrain
import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.hub import get_config

from conftest import ROOT
from mmdfkd.models.utils import build_classifier
from mmdfkd.models.utils.model_utils import _resolve_model_cfg
from mmdfkd.registry import DATASETS, MODELS
from mmdfkd.utils import register_all_modules
from mmdfkd.utils.config_checks import check_config, expand_work_dir

register_all_modules()

CONFIGS = osp.join(ROOT, 'configs')
ALL_FILES = sorted(
    glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True))
ALL_CONFIGS = [p for p in ALL_FILES if '_base_' not in p]
DATA_FREE = [p for p in ALL_CONFIGS if '/teachers/' not in p]
TEACHER_CONFIGS = [p for p in ALL_CONFIGS if '/teachers/' in p]
MODEL_FILES = sorted(
    glob.glob(osp.join(CONFIGS, '_base_', 'models', '**', '*.py'),
              recursive=True))
PAIR_FILES = [p for p in MODEL_FILES if '/pairs/' in p]

# the seed pairs of the DFKD benchmarks (issue: model zoo, item 5)
SEED_PAIRS = [
    f'{dataset}_{pair}' for dataset in ('cifar10', 'cifar100') for pair in (
        'resnet34_resnet18', 'vgg11_resnet18', 'wrn40_2_wrn16_1',
        'wrn40_2_wrn40_1', 'wrn40_2_wrn16_2')
] + ['cifar100_resnet34_mobilenetv2', 'tinyimagenet_resnet34_resnet18'] + [
    # GapSSG's Table 1 pairs
    'cifar10_resnet34_wrn16_1', 'cifar10_resnet34_mobilenetv2',
    'cifar100_resnet34_wrn16_1'
]
NUM_CLASSES = dict(
    cifar10=10, cifar100=100, tinyimagenet=200, fashionmnist=10)
MMPRETRAIN_CIFAR10_RESNET34 = (
    'https://download.openmmlab.com/mmclassification/v0/resnet/'
    'resnet34_b16x8_cifar10_20210528-a8aa36a6.pth')


def short(path):
    return osp.relpath(path, ROOT)


def dataset_of(path):
    """The dataset a config or _base_ file is named after, if any."""
    names = re.findall(r'(cifar100|cifar10|tinyimagenet|fashionmnist)',
                       osp.basename(path))
    return names[0] if names else None


def classifiers_of(cfg):
    """Every classifier a model file, pair file or catalogue defines: its
    ``model`` if that is a classifier, and each top-level student
    (``dict(cfg_path=...)``) or teacher (``dict(build_cfg=...)``)."""
    found = {}
    if cfg.get('model', {}).get('type') == 'ImageClassifier':
        found['model'] = cfg.model
    for key, value in cfg.items():
        if isinstance(value, dict) and 'cfg_path' in value:
            found[key] = value
        elif isinstance(value, dict) and 'build_cfg' in value:
            found[key] = value['build_cfg']
    return found


def check_forward(model_cfg, num_channels, size):
    """Build a classifier, run a batch of 2 and return its logits."""
    model = build_classifier(model_cfg).eval()
    with torch.no_grad():
        return model(torch.rand(2, num_channels, size, size), mode='tensor')


def eval_image_size(cfg):
    """Side of the images the evaluation pipeline yields."""
    dataset = cfg.val_dataloader.dataset
    for transform in dataset.get('pipeline', []):
        if 'crop_size' in transform:
            return transform['crop_size']
    return 64 if dataset.type == 'TinyImageNet' else 32


def test_configs_found():
    assert len(DATA_FREE) >= 12  # 4 methods x (CIFAR-10, CIFAR-100, FMNIST)
    names = {osp.splitext(osp.basename(p))[0] for p in TEACHER_CONFIGS}
    for dataset in ('cifar10', 'cifar100'):
        for arch in ('resnet34', 'vgg11', 'wrn40_2'):
            assert f'{arch}_{dataset}' in names
    assert 'resnet34_tinyimagenet' in names
    pairs = {osp.splitext(osp.basename(p))[0] for p in PAIR_FILES}
    assert pairs == set(SEED_PAIRS)


@pytest.mark.parametrize('path', ALL_FILES, ids=short)
def test_every_file_parses(path):
    cfg = Config.fromfile(path)
    if path in ALL_CONFIGS:
        check_config(cfg)
        assert cfg.default_scope == 'mmdfkd'


@pytest.mark.parametrize('path', MODEL_FILES + TEACHER_CONFIGS, ids=short)
def test_classifier_builds_and_runs(path):
    """Model files, pair files, catalogues and teacher configs: every
    classifier they define builds and maps a batch of its dataset's input
    size to one logit per class of that dataset (per-architecture files
    default to CIFAR-10)."""
    cfg = Config.fromfile(path)
    classifiers = classifiers_of(cfg)
    assert classifiers, f'{short(path)} defines no classifier'
    for name, model_cfg in classifiers.items():
        dataset = dataset_of(name) or dataset_of(path) or 'cifar10'
        size = 64 if dataset == 'tinyimagenet' else 32
        if path in TEACHER_CONFIGS:
            assert cfg.data_preprocessor.num_classes == NUM_CLASSES[dataset]
            crop = [t for t in cfg.train_dataloader.dataset.pipeline
                    if t.type == 'RandomCrop']
            assert crop[0].crop_size == size
        resolved = _resolve_model_cfg(dict(model_cfg))
        channels = resolved['backbone'].get('in_channels', 3)
        logits = check_forward(model_cfg, channels, size)
        assert logits.shape == (2, NUM_CLASSES[dataset]), name


@pytest.mark.parametrize('path', PAIR_FILES, ids=short)
def test_seed_pair_file(path):
    """A pair file defines `student` and `teacher`; the teacher comes from
    mmpretrain's model zoo where it publishes one, else from
    checkpoints/{dataset}_{arch}.pth (configs/teachers/README.md)."""
    cfg = Config.fromfile(path)
    assert set(cfg.keys()) == {'student', 'teacher'}
    dataset = dataset_of(path)
    teacher_arch = next(
        arch for arch in ('resnet34', 'vgg11', 'wrn40_2')
        if osp.basename(path).startswith(f'{dataset}_{arch}_'))
    assert set(cfg.teacher) == {'build_cfg', 'ckpt_path'}
    if (dataset, teacher_arch) == ('cifar10', 'resnet34'):
        assert cfg.teacher.ckpt_path == MMPRETRAIN_CIFAR10_RESNET34
    else:
        assert cfg.teacher.ckpt_path == (
            f'checkpoints/{dataset}_{teacher_arch}.pth')
    assert teacher_arch in cfg.teacher.build_cfg.cfg_path


@pytest.mark.parametrize('path', PAIR_FILES, ids=short)
def test_seed_pair_composes_with_recipe_and_dataset(path, tmp_path):
    """A method config = recipe + data_free_<dataset>.py + pair file: the
    three bases share no key, and the dataset's test set, class count and
    image size come with the data-free base."""
    dataset = dataset_of(path)
    config = tmp_path / 'composed.py'
    config.write_text(
        f"_base_ = [{osp.join(CONFIGS, '_base_/algorithms/dafl.py')!r},\n"
        f"          {osp.join(CONFIGS, f'_base_/data_free_{dataset}.py')!r},"
        f'\n          {path!r}]\n'
        'model = dict(architecture={{_base_.student}},\n'
        '             teachers=dict(teacher={{_base_.teacher}}))\n')
    cfg = Config.fromfile(str(config))
    check_config(cfg)
    pair = Config.fromfile(path)
    assert cfg.model.architecture == pair.student
    assert cfg.model.teachers.teacher == pair.teacher
    assert cfg.data_preprocessor.num_classes == NUM_CLASSES[dataset]
    assert cfg.train_dataloader.dataset.num_classes == NUM_CLASSES[dataset]
    assert eval_image_size(cfg) == (64 if dataset == 'tinyimagenet' else 32)


def test_resnet_model_files_match_mmpretrain_zoo():
    """The model-zoo URL is mmpretrain's CIFAR-10 ResNet-34 and our model
    file is the network it was trained as, so the checkpoint loads."""
    metafile = osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'configs', 'resnet',
        'metafile.yml')
    with open(metafile) as f:
        models = {m['Weights']: m for m in yaml.safe_load(f)['Models']}
    entry = models[MMPRETRAIN_CIFAR10_RESNET34]
    assert entry['Config'] == 'configs/resnet/resnet34_8xb16_cifar10.py'
    assert entry['Results'][0]['Metrics']['Top 1 Accuracy'] == 95.34
    for depth in (18, 34):
        ours = Config.fromfile(
            osp.join(CONFIGS, f'_base_/models/resnet{depth}_cifar.py')).model
        theirs = get_config(
            f'mmpretrain::resnet/resnet{depth}_8xb16_cifar10.py').model
        assert ours.to_dict() == theirs.to_dict()


def test_resnet_catalogue_agrees_with_pair_files():
    """configs/_base_/models/resnet_cifar.py (for CIFAR-100 configs derived
    from CIFAR-10 ones) names the same models and teachers as the pairs."""
    catalogue = Config.fromfile(
        osp.join(CONFIGS, '_base_/models/resnet_cifar.py'))
    for dataset in ('cifar10', 'cifar100'):
        pair = Config.fromfile(
            osp.join(CONFIGS,
                     f'_base_/models/pairs/{dataset}_resnet34_resnet18.py'))
        assert catalogue[f'resnet18_{dataset}'] == pair.student
        assert catalogue[f'resnet34_{dataset}_teacher'] == pair.teacher


@pytest.mark.parametrize('path', DATA_FREE, ids=short)
def test_data_free_config_builds(path, tmp_path):
    cfg = Config.fromfile(path)
    cfg.work_dir = str(tmp_path)  # on-disk memory banks live under it
    expand_work_dir(cfg)
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
        assert images.shape[-1] == eval_image_size(cfg), \
            'generator and data size differ'
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
