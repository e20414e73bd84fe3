"""Train a data-free distillation run (or a teacher) from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                                 [--cfg-options k=v ...] [--launcher pytorch]
    bash tools/dist_train.sh CONFIG NUM_PROCESSES   # torchrun, GPU or CPU
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
from mmdfkd.engine.hooks import TrainingCollapseError  # noqa: E402
from mmdfkd.engine.hooks.resumable_checkpoint_hook import (  # noqa: E402
    state_dict_for_model)
from mmdfkd.models.utils import unwrap_model  # noqa: E402
from mmdfkd.utils import register_all_modules  # noqa: E402
from mmdfkd.utils.checkpoint import (CheckpointError,  # noqa: E402
                                     check_weights_fit, load_checkpoint_file)
from mmdfkd.utils.distributed import distributed_session  # noqa: E402
from mmdfkd.utils.config_checks import (ConfigError,  # noqa: E402
                                         check_config, check_data_free_model,
                                         check_work_dir, expand_work_dir,
                                         propagate_data_root)

# Errors whose message names the cause: reported as one line, no traceback.
USER_ERRORS = (ConfigError, CheckpointError, FileNotFoundError,
               TrainingCollapseError)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='tools/train.py', description='Train with mmdfkd')
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
        help='mixed precision: float16 AmpOptimWrapper on CUDA; on CPU '
        'bfloat16 autocast of the data-free algorithms')
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
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def use_amp(cfg: Config) -> None:
    """Mixed precision. With CUDA every optimiser wrapper becomes mmengine's
    AmpOptimWrapper (float16 with dynamic loss scaling). mmengine refuses it
    without an accelerator, so on CPU a data-free algorithm autocasts its
    training forward passes to bfloat16 instead (``model.autocast_dtype``;
    bfloat16 needs no loss scaling)."""
    if not torch.cuda.is_available():
        from mmdfkd.models.algorithms import DataFreeDistillation
        from mmdfkd.registry import MODELS
        model_type = cfg.model.get('type')
        model_cls = (model_type if isinstance(model_type, type) else
                     MODELS.get(model_type) if model_type else None)
        if not (isinstance(model_cls, type)
                and issubclass(model_cls, DataFreeDistillation)):
            raise SystemExit(
                '--amp: without CUDA, mixed precision is the bfloat16 '
                'autocast of the data-free algorithms (model.autocast_dtype)'
                f', and {model_type!r} is not one; run it without --amp on '
                'CPU.')
        cfg.model['autocast_dtype'] = 'bfloat16'
        return
    optim = cfg.optim_wrapper
    wrappers = ([v for k, v in optim.items() if k != 'constructor']
                if 'constructor' in optim else [optim])
    for wrapper in wrappers:
        wrapper['type'] = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')


# default hooks the Runner adds itself; `None` removes them
RUNNER_DEFAULT_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger',
                        'param_scheduler', 'checkpoint')


def drop_disabled_default_hooks(cfg: Config) -> None:
    """Let ``default_hooks.<name>=None`` disable any default hook.

    mmengine 0.10.7 accepts ``None`` only for the hooks it adds itself and
    fails with a bare ``AssertionError`` for others, such as the
    ``random_state`` and ``collapse_guard`` hooks of our default runtime.
    """
    hooks = cfg.get('default_hooks') or {}
    for name in [k for k, v in hooks.items() if v is None]:
        if name not in RUNNER_DEFAULT_HOOKS:
            del hooks[name]


def merge_args(cfg: Config, args) -> Config:
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
    if args.no_validate:  # after --cfg-options, which may set val_* keys
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    expand_work_dir(cfg)
    if args.amp:
        use_amp(cfg)
    drop_disabled_default_hooks(cfg)
    return cfg


def resolve_resume_checkpoint(cfg: Config, resume: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from, set as the Runner's
    ``load_from``; None if an automatic resume finds nothing to resume.

    Raises:
        FileNotFoundError: If the given checkpoint, or the one that the
            work directory's ``last_checkpoint`` names, does not exist.
    """
    if resume == 'auto':
        marker = osp.join(cfg.work_dir, 'last_checkpoint')
        if not osp.isfile(marker):
            print(f'--resume: no {marker}, nothing to resume: training '
                  'starts from scratch', file=sys.stderr)
            cfg.resume, cfg.load_from = True, None
            return None
        with open(marker) as f:
            path = f.read().strip()
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'--resume: {marker} names the checkpoint {path}, which does '
                'not exist (moved or deleted?); pass --resume CHECKPOINT '
                'to choose one')
    else:
        path = resume
        if not osp.isfile(path):
            raise FileNotFoundError(f'--resume: checkpoint {path} not found')
    cfg.resume, cfg.load_from = True, path
    return path


class CheckedRunner(Runner):
    """mmengine's Runner, but the config is copied into the work directory
    only once the run has passed :func:`train`'s checks (``Runner``
    writes it while it is built), so that a run refused for a bad input
    leaves the work directory of an earlier run as it was."""

    config_dump_allowed = False

    def dump_config(self) -> None:
        if self.config_dump_allowed:
            super().dump_config()


def build_runner(cfg: Config) -> CheckedRunner:
    """``Runner.from_cfg``, reporting as a :class:`ConfigError` what names
    a wrong setting: an unknown registry type (mmengine's KeyError message
    names it) and a ``ValueError`` of a constructor (an invalid argument,
    e.g. an image size the generator cannot produce)."""
    try:
        return CheckedRunner.from_cfg(cfg)
    except KeyError as error:
        message = error.args[0] if error.args else ''
        if isinstance(message, str) and ' registry' in message:
            raise ConfigError(message) from None
        raise
    except ValueError as error:
        raise ConfigError(
            f'invalid setting while building the run: {error}') from None


def train(args) -> None:
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)
    check_config(cfg)
    check_work_dir(cfg.work_dir)
    resume_from = None
    if args.resume is not None:
        resume_from = resolve_resume_checkpoint(cfg, args.resume)
    with distributed_session(cfg, args.launcher):
        run_training(cfg, resume_from)


def run_training(cfg: Config, resume_from: Optional[str]) -> None:
    """Build the runner, check the model (and the resume checkpoint's
    weights against it) and train."""
    # corrupt, truncated or code-carrying files are refused with a clear
    # error before mmengine unpickles them (it would load them again)
    resume_checkpoint = (load_checkpoint_file(resume_from)
                         if resume_from else None)
    runner = build_runner(cfg)
    check_data_free_model(runner.model, cfg.train_dataloader)
    if resume_checkpoint is not None:
        # mmengine's non-strict load would only warn and resume a model
        # whose weights were partly not loaded
        model = unwrap_model(runner.model)
        check_weights_fit(
            model,
            state_dict_for_model(resume_checkpoint.get('state_dict', {}),
                                 model), resume_from)
        del resume_checkpoint
    runner.config_dump_allowed = True
    runner.dump_config()
    runner.train()


def main(argv=None):
    args = parse_args(argv)
    try:
        train(args)
    except USER_ERRORS as error:
        raise SystemExit(f'tools/train.py: error: {error}') from None


if __name__ == '__main__':
    main()
