"""`python tools/train.py configs/teachers/<x>.py` trains a teacher with
mmpretrain's epoch-based loop: a CIFAR-10 ResNet-34 on a fake CIFAR-10
folder in the official pickle layout, and a Tiny-ImageNet ResNet-18 on a
fake tiny-imagenet-200 tree, for one epoch of 2-3 iterations each; the
checkpoint they write loads as an mmdfkd teacher and converts with
tools/convert_teacher.py into a clean one, as configs/teachers/README.md
says.

Each run goes through a config that inherits the shipped teacher config and
overrides only the data location, the batch size, one epoch and, for CIFAR,
the dataset class: mmpretrain's CIFAR10 checks the md5 sum of every batch
file of the real dataset, which a fake cannot match, so a subclass without
those sums is registered through `custom_imports` (mmpretrain's download
and md5 code is tested in test_cifar_download.py)."""
import glob
import math
import os
import os.path as osp
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config

from conftest import ROOT, tool_env
from mmdfkd.models.utils import build_classifier
from mmdfkd.utils import register_all_modules
from mmdfkd.utils.checkpoint import load_checkpoint_file
from test_tiny_imagenet import make_tiny_imagenet_tree

register_all_modules()

UNCHECKED_CIFAR10 = '''
from mmpretrain.datasets import CIFAR10

from mmdfkd.registry import DATASETS


@DATASETS.register_module()
class UncheckedCIFAR10(CIFAR10):
    """CIFAR10 reading a fake folder: no md5 sums of the real files."""
    train_list = [[name, None] for name, _ in CIFAR10.train_list]
    test_list = [[name, None] for name, _ in CIFAR10.test_list]
    meta = dict(CIFAR10.meta, md5=None)
'''


def make_fake_cifar10(root, images_per_batch=4, test_images=8):
    """``root/cifar-10-batches-py`` with data_batch_1..5, test_batch and
    batches.meta as python pickles of the official layout."""
    folder = root / 'cifar-10-batches-py'
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, num in [(f'data_batch_{i}', images_per_batch)
                      for i in range(1, 6)] + [('test_batch', test_images)]:
        entry = {
            'batch_label': name,
            'data': rng.integers(0, 256, (num, 3072), dtype=np.uint8),
            'labels': rng.integers(0, 10, num).tolist(),
            'filenames': [f'{name}_{i}.png' for i in range(num)],
        }
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    (folder / 'batches.meta').write_bytes(
        pickle.dumps({'label_names': [f'class {i}' for i in range(10)]},
                     protocol=2))
    return root


def write_run_config(tmp_path, teacher, data_root, batch_size,
                     dataset_type=None):
    dataset = dict(data_root=str(data_root))
    if dataset_type:
        dataset.update(type=dataset_type, download=False)
    loader = dict(
        batch_size=batch_size,
        num_workers=0,
        persistent_workers=False,
        dataset=dataset)
    lines = [
        f"_base_ = [{osp.join(ROOT, 'configs', 'teachers', teacher)!r}]",
        f'data_root = {str(data_root)!r}',
        f'train_dataloader = {loader!r}',
        f'val_dataloader = {loader!r}',
        'test_dataloader = val_dataloader',
        'train_cfg = dict(max_epochs=1)',
        'default_hooks = dict(logger=dict(interval=1))',
    ]
    if dataset_type:
        lines.append("custom_imports = dict(imports=['unchecked_cifar10'], "
                     'allow_failed_imports=False)')
    path = tmp_path / f'run_{teacher}'
    path.write_text('\n'.join(lines) + '\n')
    return path


@pytest.mark.parametrize('teacher', ['resnet34_cifar10.py',
                                     'resnet18_tinyimagenet.py'])
def test_train_teacher_config(teacher, tmp_path):
    if 'cifar10' in teacher:
        data_root = make_fake_cifar10(tmp_path / 'cifar10')
        (tmp_path / 'unchecked_cifar10.py').write_text(UNCHECKED_CIFAR10)
        config = write_run_config(tmp_path, teacher, data_root, 8,
                                  'UncheckedCIFAR10')
        iterations = 3  # 20 training images in batches of 8
    else:
        data_root = make_tiny_imagenet_tree(tmp_path / 'tiny-imagenet-200')
        config = write_run_config(tmp_path, teacher, data_root, 4)
        iterations = 2  # 6 training images in batches of 4
    env = tool_env()
    # the CIFAR run imports its plugin from tmp_path
    env['PYTHONPATH'] = f'{tmp_path}{os.pathsep}{env["PYTHONPATH"]}'
    work_dir = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(config), '--work-dir',
         str(work_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        check=False)
    assert proc.returncode == 0, proc.stderr[-5000:]

    log = ''
    for path in glob.glob(str(work_dir / '*' / '*.log')):
        with open(path) as f:
            log += f.read()
    assert f'Epoch(train) [1][{iterations}/{iterations}]' in log
    assert 'Epoch(val) [1]' in log and 'accuracy/top1' in log

    checkpoint = load_checkpoint_file(str(work_dir / 'epoch_1.pth'))
    assert checkpoint['meta']['epoch'] == 1
    assert checkpoint['meta']['iter'] == iterations
    # the papers' recipe: SGD, momentum 0.9, wd 5e-4, lr 0.1 cosine-annealed
    # over 200 epochs (stepped once per epoch)
    group = checkpoint['optimizer']['param_groups'][0]
    assert group['momentum'] == 0.9 and group['weight_decay'] == 5e-4
    assert group['lr'] == pytest.approx(0.1 * (1 + math.cos(math.pi / 200))
                                        / 2)
    # the weights load strictly into the teacher's classifier
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'teachers', teacher))
    build_classifier(cfg.model).load_state_dict(
        checkpoint['state_dict'], strict=True)

    # README.md's last step: a clean, hash-named teacher checkpoint
    arch = teacher.split('_')[0]
    proc = subprocess.run(
        [sys.executable, 'tools/convert_teacher.py',
         str(work_dir / 'epoch_1.pth'), str(tmp_path / 'checkpoints' /
                                            f'teacher_{arch}.pth'),
         '--arch', arch, '--source', 'mmpretrain'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    converted = proc.stdout.strip().splitlines()[-1]
    assert re.search(rf'teacher_{arch}-[0-9a-f]{{8}}\.pth$', converted)
    teacher_weights = load_checkpoint_file(converted)['state_dict']
    assert teacher_weights.keys() == checkpoint['state_dict'].keys()
    # a ResNet-34 run leaves ~300 MB of checkpoints; pytest keeps old tmp dirs
    shutil.rmtree(work_dir)
