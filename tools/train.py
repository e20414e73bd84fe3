"""Train a data-free distillation run (or a teacher) from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--cfg-options k=v ...] [--launcher pytorch]
    bash tools/dist_train.sh CONFIG NUM_PROCESSES   # torchrun, GPU or CPU
"""
import argparse
import os
import os.path as osp
import sys
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
from mmdfkd.utils import register_all_modules  # noqa: E402
from mmdfkd.utils.config_checks import (check_config,  # noqa: E402
                                         propagate_data_root)


def parse_args():
    parser = argparse.ArgumentParser(description='Train with mmdfkd')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='directory for logs, checkpoints '
                        'and image grids (default: work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or (without a value) from the '
        'latest checkpoint in the work directory')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='automatic mixed precision (AmpOptimWrapper; needs CUDA)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate on the real test set during training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'model.teachers.tea.ckpt_path=/path/teacher.pth data_root=/data/fm')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def use_amp(cfg: Config) -> None:
    """Turn every optimiser wrapper into an AmpOptimWrapper."""
    if not torch.cuda.is_available():
        raise SystemExit(
            '--amp: mmengine\'s AmpOptimWrapper needs a CUDA (or NPU/MLU) '
            'device and none is available; run without --amp on CPU.')
    optim = cfg.optim_wrapper
    wrappers = ([v for k, v in optim.items() if k != 'constructor']
                if 'constructor' in optim else [optim])
    for wrapper in wrappers:
        wrapper['type'] = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')


def merge_args(cfg: Config, args) -> Config:
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
        if 'data_root' in args.cfg_options:
            propagate_data_root(cfg, args.cfg_options['data_root'])
    if args.amp:
        use_amp(cfg)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise SystemExit(f'--resume: checkpoint {args.resume} not found')
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def init_cpu_distributed(cfg: Config) -> None:
    """Start a gloo process group for torchrun runs without CUDA.

    mmengine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device``,
    which fails on CPU; when the group already exists the Runner skips its
    own initialisation, and ``DataFreeDistributedDataParallel`` drops the
    CUDA ``device_ids`` it would pass.
    """
    if torch_dist.is_initialized():
        return
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    timeout = dist_cfg.get('timeout', 1800)
    torch_dist.init_process_group(
        backend='gloo', timeout=timedelta(seconds=timeout))


def main():
    args = parse_args()
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)
    check_config(cfg)
    if args.launcher == 'pytorch' and not torch.cuda.is_available():
        init_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
