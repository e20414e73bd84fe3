"""Tests of tools/dataset_converters/prepare_fashion_mnist.py: the prepared
folder must be readable by mmpretrain's own FashionMNIST dataset."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(REPO, 'tools', 'dataset_converters',
                  'prepare_fashion_mnist.py')
DATASET_CONFIG = osp.join(REPO, 'configs', '_base_', 'datasets',
                          'fashionmnist_bs256.py')
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'

# mmpretrain 1.2.0's MNIST loader predates NumPy 2: np.array() on each label
# tensor warns once per image, and torch warns about the read-only IDX buffer.
pytestmark = [
    pytest.mark.filterwarnings(
        'ignore:__array__ implementation doesn.t accept a copy keyword'),
    pytest.mark.filterwarnings('ignore:The given NumPy array is not writable'),
]

needs_debian_data = pytest.mark.skipif(
    not osp.isdir(DEBIAN_DIR),
    reason=f'{DEBIAN_DIR} is missing: `apt-get install dataset-fashion-mnist`')


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT, *args],
                          capture_output=True,
                          text=True,
                          cwd=REPO)


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    if not osp.isdir(DEBIAN_DIR):
        pytest.skip(f'{DEBIAN_DIR} is missing: '
                    '`apt-get install dataset-fashion-mnist`')
    out = tmp_path_factory.mktemp('fashion_mnist')
    result = run_script('--out', str(out))
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    return out


@needs_debian_data
def test_layout(prepared):
    assert sorted(p.name for p in prepared.iterdir()) == [
        't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte',
        'train-images-idx3-ubyte', 'train-labels-idx1-ubyte'
    ]
    assert (prepared / 'train-images-idx3-ubyte').stat().st_size \
        == 16 + 60000 * 28 * 28


@needs_debian_data
def test_idempotent(prepared):
    result = run_script('--out', str(prepared))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('up to date') == 4


@needs_debian_data
def test_mmpretrain_fashion_mnist_reads_it(prepared):
    from mmpretrain.datasets import FashionMNIST

    # test_mode=True is needed: mmpretrain 1.2.0 picks the files by
    # test_mode, so split='test' alone would return the training set
    test_set = FashionMNIST(
        data_root=str(prepared),
        split='test',
        test_mode=True,
        download=False)
    assert len(test_set) == 10000
    labels = test_set.get_gt_labels()
    assert labels.min() == 0 and labels.max() == 9
    # Fashion-MNIST's test set is balanced: 1000 images per class
    assert np.bincount(labels).tolist() == [1000] * 10
    assert test_set.CLASSES[0] == 'T-shirt/top'

    img = test_set.get_data_info(0)['img']
    assert img.shape == (28, 28) and img.dtype == np.uint8


@needs_debian_data
def test_dataset_config_pipeline(prepared):
    """The base dataset config gives centred, zero-padded 1x32x32 test
    images, with the test split really being the test split."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import mmpretrain.datasets  # noqa: F401
    from mmdfkd.registry import DATASETS

    cfg = Config.fromfile(DATASET_CONFIG)
    assert cfg.data_root == cfg.val_dataloader.dataset.data_root \
        == cfg.train_dataloader.dataset.data_root
    cfg.test_dataloader.dataset.data_root = str(prepared)
    with DefaultScope.overwrite_default_scope('mmdfkd'):
        test_set = DATASETS.build(cfg.test_dataloader.dataset)
    assert len(test_set) == 10000

    raw = test_set.get_data_info(0)['img']
    inputs = test_set[0]['inputs']
    assert tuple(inputs.shape) == (1, 32, 32)
    inputs = inputs[0].numpy()
    np.testing.assert_array_equal(inputs[2:30, 2:30], raw)
    inner = np.zeros((32, 32), dtype=bool)
    inner[2:30, 2:30] = True
    assert (inputs[~inner] == 0).all()


def test_missing_source_folder(tmp_path):
    result = run_script('--src', str(tmp_path / 'missing'), '--out',
                        str(tmp_path / 'out'))
    assert result.returncode == 1
    assert 'apt-get install dataset-fashion-mnist' in result.stderr


def test_rejects_wrong_dataset(tmp_path):
    """An IDX folder of another dataset fails the md5 check."""
    if not osp.isdir(DEBIAN_DIR):
        pytest.skip(f'{DEBIAN_DIR} is missing: '
                    '`apt-get install dataset-fashion-mnist`')
    result = run_script('--dataset', 'mnist', '--out', str(tmp_path))
    assert result.returncode == 1
    assert 'md5' in result.stderr
    assert not (tmp_path / 'train-images-idx3-ubyte').exists()
