"""Evaluate a checkpoint on the configured test set.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
                         [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
from mmdfkd.utils import register_all_modules  # noqa: E402
from mmdfkd.utils.distributed import distributed_session  # noqa: E402
from mmdfkd.utils.config_checks import (check_config,  # noqa: E402
                                         expand_work_dir,
                                         propagate_data_root)


def parse_args():
    parser = argparse.ArgumentParser(description='Test with mmdfkd')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument('--work-dir', help='directory for the test logs')
    parser.add_argument('--out', help='dump the metrics to this JSON file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
        if 'data_root' in args.cfg_options:
            propagate_data_root(cfg, args.cfg_options['data_root'])
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    expand_work_dir(cfg)
    if not (args.checkpoint.startswith(('http://', 'https://'))
            or osp.isfile(args.checkpoint)):
        raise SystemExit(f'checkpoint {args.checkpoint} not found')
    cfg.load_from = args.checkpoint
    check_config(cfg)
    with distributed_session(cfg, args.launcher):
        metrics = Runner.from_cfg(cfg).test()
    if args.out:
        import json
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=2)
    print({k: round(float(v), 4) for k, v in metrics.items()})


if __name__ == '__main__':
    main()
