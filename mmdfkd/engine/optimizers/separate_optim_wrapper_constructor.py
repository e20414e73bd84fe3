import copy

from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn

from mmdfkd.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SeparateOptimWrapperConstructor:
    """Build one optimiser wrapper per named child of the algorithm and
    return them as an ``OptimWrapperDict`` (MMRazor's constructor of the same
    name), e.g.::

        optim_wrapper = dict(
            constructor='SeparateOptimWrapperConstructor',
            architecture=dict(optimizer=dict(type='SGD', lr=0.1)),
            generator=dict(optimizer=dict(type='Adam', lr=1e-3)))

    Each value is an ordinary optim-wrapper config (``type`` defaults to
    ``OptimWrapper``; ``paramwise_cfg`` is honoured) built over the
    parameters of ``model.<key>``. ``param_scheduler`` may then be a dict
    with the same keys.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None) -> None:
        if not isinstance(optim_wrapper_cfg, dict) or not optim_wrapper_cfg:
            raise TypeError('optim_wrapper must map child module names '
                            "(e.g. 'architecture', 'generator') to "
                            f'optim-wrapper configs, got {optim_wrapper_cfg}')
        if paramwise_cfg is not None:
            raise ValueError('set paramwise_cfg inside each named wrapper')
        self.optim_wrapper_cfg = copy.deepcopy(optim_wrapper_cfg)

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        wrappers = {}
        children = dict(model.named_children())
        for name, cfg in self.optim_wrapper_cfg.items():
            if name not in children:
                raise KeyError(
                    f'optim_wrapper has key {name!r} but the model has no '
                    f'child of that name; children: {list(children)}')
            cfg = copy.deepcopy(cfg)
            paramwise_cfg = cfg.pop('paramwise_cfg', None)
            constructor = DefaultOptimWrapperConstructor(cfg, paramwise_cfg)
            wrappers[name] = constructor(children[name])
        return OptimWrapperDict(**wrappers)
