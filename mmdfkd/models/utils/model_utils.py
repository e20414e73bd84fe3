import copy
import os.path as osp
from contextlib import contextmanager
from typing import Iterator

from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.model import is_model_wrapper
from torch import nn

from mmdfkd.registry import MODELS


def unwrap_model(module: nn.Module) -> nn.Module:
    """Return the module inside a DDP/model wrapper (or itself), so that the
    same code reads attributes on 1 CPU, 1 GPU and N GPUs."""
    while is_model_wrapper(module) or isinstance(
            module, nn.parallel.DistributedDataParallel):
        module = module.module
    return module


@contextmanager
def frozen_parameters(module: nn.Module) -> Iterator[None]:
    """Temporarily set ``requires_grad=False`` on all parameters, so that a
    backward pass meant for another network (the generator) neither
    computes nor leaves gradients on this one. MMRazor's data-free loop
    lets those gradients leak into the next student update."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextmanager
def module_mode(module: nn.Module, training: bool) -> Iterator[None]:
    """Temporarily switch train/eval mode, restoring the previous modes of
    every submodule afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.train(training)
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def mmdfkd_configs_root() -> str:
    """The ``configs/`` folder of mmdfkd: ``mmdfkd/.mim/configs`` in an
    installed package, ``configs/`` beside the package in a source checkout.
    (mmengine's own ``pkg::`` lookup only knows OpenMMLab's packages.)"""
    package_dir = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    for root in (osp.join(package_dir, '.mim', 'configs'),
                 osp.join(osp.dirname(package_dir), 'configs')):
        if osp.isdir(root):
            return root
    raise FileNotFoundError(
        f'cannot find the mmdfkd configs folder near {package_dir}')


def build_classifier(cfg: dict) -> nn.Module:
    """Build a classifier from a model config, or from another config file.

    ``cfg`` is either a model config (``dict(type='ImageClassifier', ...)``)
    or ``dict(cfg_path=..., **overrides)`` where ``cfg_path`` is a config
    file path, a package config such as
    ``'mmpretrain::resnet/resnet34_8xb16_cifar10.py'``, or one of ours,
    ``'mmdfkd::_base_/models/lenet5_fashionmnist.py'``; its ``model`` field is
    used, with ``overrides`` merged into it (e.g. ``head=dict(num_classes=
    100)``). MMRazor's ``pretrained`` key is accepted and ignored: weights
    come from the algorithm's ``ckpt_path``.
    """
    cfg = copy.deepcopy(dict(cfg))
    # nested builds (mmpretrain's ImageClassifier building its backbone) look
    # types up from the default scope; ours also sees mmpretrain's modules
    with DefaultScope.overwrite_default_scope('mmdfkd'):
        return MODELS.build(_resolve_model_cfg(cfg))


def _resolve_model_cfg(cfg: dict) -> dict:
    if 'cfg_path' not in cfg:
        return cfg
    cfg_path = cfg.pop('cfg_path')
    cfg.pop('pretrained', None)
    if cfg_path.startswith('mmdfkd::'):
        cfg_path = osp.join(mmdfkd_configs_root(), cfg_path[len('mmdfkd::'):])
    if '::' in cfg_path:
        from mmengine.hub import get_config
        model_cfg = get_config(cfg_path).model
    else:
        if not osp.isfile(cfg_path):
            raise FileNotFoundError(f'model config file {cfg_path} not found')
        model_cfg = Config.fromfile(cfg_path).model
    merged = Config(dict(model=model_cfg))
    merged.merge_from_dict({f'model.{k}': v for k, v in cfg.items()})
    return merged.model
