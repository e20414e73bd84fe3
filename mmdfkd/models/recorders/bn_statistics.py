from typing import List, NamedTuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdfkd.registry import TASK_UTILS
from .base_recorder import BaseRecorder, get_submodule


class BNStatistics(NamedTuple):
    """Batch statistics of one BatchNorm layer's input next to the layer's
    running statistics (the "training-data prior" of DeepInversion)."""
    batch_mean: torch.Tensor
    batch_var: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor


@TASK_UTILS.register_module()
class BNStatisticsRecorder(BaseRecorder):
    """Record, for every BatchNorm layer under ``source``, the per-channel mean
    and biased variance of its input over all but the channel dimension,
    together with the layer's running mean/variance.

    One record per forward call of the whole ``source`` model: a list with
    one :class:`BNStatistics` per BN layer, in module order. The running
    statistics are the layer's live buffers (no copy): teachers run in eval
    mode, so they do not change. This is the
    DeepInversion hook (Yin et al., CVPR 2020), active only while recording:
    the algorithms enter the recorders of ``generator_distiller`` only in
    the generator step, so the teacher forwards of the student phase compute
    no statistics (the CMI/Fast/NAYER hooks compute them on every forward,
    distillation included). The running averages of Fast/NAYER live in
    :class:`BNStatisticsLoss` (``momentum``), not here.

    Args:
        source (str): Name of the model (e.g. a teacher key ``'tea'``) or of
            a submodule whose BatchNorm layers are watched.
    """

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self._layers: List[_BatchNorm] = []
        self._current: List[BNStatistics] = []

    def prepare_from_model(self, model: nn.Module) -> None:
        root = get_submodule(model, self.source) if self.source else model
        self._layers = [m for m in root.modules() if isinstance(m, _BatchNorm)]
        if not self._layers:
            raise ValueError(
                f'BNStatisticsRecorder: {self.source!r} has no BatchNorm '
                'layer, so a BN-statistics prior cannot be computed; use a '
                'teacher with BatchNorm or drop the BN-statistics loss.')
        for layer in self._layers:
            self._handles.append(layer.register_forward_hook(self._hook))
        self._handles.append(
            root.register_forward_pre_hook(self._start_forward))
        self._handles.append(root.register_forward_hook(self._end_forward))

    def _start_forward(self, module, inputs):
        if self.recording:
            self._current = []

    def _hook(self, layer, inputs, outputs):
        if not self.recording:
            return
        x = inputs[0]
        dims = [0] + list(range(2, x.dim()))
        # biased variance, as BatchNorm normalises with it in training mode
        var, mean = torch.var_mean(x, dim=dims, unbiased=False)
        self._current.append(
            BNStatistics(mean, var, layer.running_mean, layer.running_var))

    def _end_forward(self, module, inputs, outputs):
        if self.recording:
            self.data_buffer.append(self._current)
        self._current = []
