"""End-to-end runs of every Fashion-MNIST method config through
tools/train.py: a few iterations, a checkpoint, a --resume that continues
from it, and tools/test.py on the result."""
import glob
import os.path as osp
import re

import pytest
import torch

from conftest import run_tool

CONFIGS = {
    'dafl': 'configs/dafl/dafl_lenet5_lenet5half_1xb128_fashionmnist.py',
    'dfad': 'configs/dfad/dfad_lenet5_lenet5half_1xb128_fashionmnist.py',
    'zskt': 'configs/zskt/zskt_lenet5_lenet5half_1xb128_fashionmnist.py',
    'deepinv':
    'configs/deepinv/deepinv_adi_lenet5_lenet5half_1xb256_fashionmnist.py',
    'ta_dfkd':
    'configs/ta_dfkd/ta_dfkd_lenet5_lenet5half_1xb256_fashionmnist.py',
}
# tiny batches and step counts; a 256-image slice of the test set
TINY = {
    'dafl': ['train_dataloader.batch_size=16'],
    'dfad': ['train_dataloader.batch_size=16', 'model.student_iter=2',
             'train_dataloader.dataset.num_draws=3'],
    'zskt': ['train_dataloader.batch_size=16', 'model.student_iter=2',
             'train_dataloader.dataset.num_draws=3'],
    'deepinv': ['train_dataloader.batch_size=16',
                'model.generator.batch_size=16', 'model.generator_iter=3',
                'model.student_iter=2'],
    'ta_dfkd': ['train_dataloader.batch_size=16', 'model.student_iter=2',
                'train_dataloader.dataset.num_draws=3'],
}


def cfg_options(method, teacher, max_iters):
    return [
        '--cfg-options', f'model.teachers.teacher.ckpt_path={teacher}',
        f'train_cfg.max_iters={max_iters}', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
        'val_dataloader.dataset.indices=256', 'val_dataloader.batch_size=128',
        'test_dataloader.dataset.indices=256', 'test_dataloader.batch_size=128',
        'custom_hooks.0.interval=2', *TINY[method]
    ]


@pytest.mark.parametrize('method', sorted(CONFIGS))
def test_train_resume_test(method, tmp_path, random_lenet5_teacher,
                           fashion_mnist_root):
    work_dir = str(tmp_path / method)
    config = CONFIGS[method]
    run_tool(['tools/train.py', config, '--work-dir', work_dir,
              *cfg_options(method, random_lenet5_teacher, 2)])
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    keys = state['state_dict'].keys()
    assert not [k for k in keys if k.startswith('teachers.')], \
        'teachers must not be saved in checkpoints'
    assert any(k.startswith('architecture.') for k in keys)
    assert any(k.startswith('generator.') for k in keys)
    assert set(state['optimizer']) == {'architecture', 'generator'}
    if method == 'deepinv':  # the synthetic set is resumed with the run
        assert int(state['state_dict']['memory_bank.num_stored']) == 2 * 16

    # image grids of the synthetic batches are written by the vis hook
    assert glob.glob(osp.join(work_dir, '*', 'vis_data', 'vis_image',
                              'synthetic_images_2.png'))

    resumed = run_tool(['tools/train.py', config, '--work-dir', work_dir,
                        '--resume', *cfg_options(method,
                                                 random_lenet5_teacher, 4)])
    log = resumed.stdout + resumed.stderr
    assert 'resumed' in log.lower() or 'Load checkpoint from' in log
    assert re.search(r'Iter\(train\) \[3/4\]', log), log[-2000:]
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    state = torch.load(osp.join(work_dir, 'iter_4.pth'), weights_only=True)
    assert state['meta']['iter'] == 4
    if method == 'deepinv':  # resumed bank (2 batches) + 2 new batches
        assert int(state['state_dict']['memory_bank.num_stored']) == 4 * 16

    tested = run_tool(['tools/test.py', config,
                       osp.join(work_dir, 'iter_4.pth'), '--work-dir',
                       work_dir, *cfg_options(method, random_lenet5_teacher,
                                              4)])
    assert 'accuracy/top1' in tested.stdout
    assert 'agreement/top1' in tested.stdout


def test_dist_train_two_cpu_processes(tmp_path, random_lenet5_teacher,
                                      fashion_mnist_root):
    """tools/dist_train.sh with 2 processes on CPU (gloo): each rank wraps
    the student and the generator in its own DDP and training completes."""
    import os
    import socket
    import subprocess
    import sys

    from conftest import ROOT, tool_env
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(tool_env(), PYTHON=sys.executable, PORT=str(port))
    work_dir = str(tmp_path / 'ddp')
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', CONFIGS['dfad'], '2', '--work-dir',
         work_dir, *cfg_options('dfad', random_lenet5_teacher, 2)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    # gloo's threads outliving the interpreter abort a finished run
    assert 'terminate called' not in log, log[-4000:]
    assert 'Distributed training: True' in log
    assert 'DataFreeDistributedDataParallel' in log
    assert os.path.isfile(os.path.join(work_dir, 'iter_2.pth'))
