"""The CIFAR MobileNetV2 of RepDistiller (``mobile_half``), as an mmpretrain
backbone."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import nn

from mmdfkd.registry import MODELS


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int,
                  stride: int = 1, groups: int = 1) -> List[nn.Module]:
    return [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU()
    ]


class CIFARInvertedResidual(nn.Module):
    """Inverted residual block of RepDistiller's MobileNetV2.

    ``conv`` is ``[1x1 expand, BN, ReLU, 3x3 depth-wise (stride), BN, ReLU,
    1x1 project, BN]``; unlike torchvision (and mmpretrain), the 1x1 expansion
    is kept even when the expansion ratio is 1, and the activation is ReLU,
    not ReLU6. The input is added back when the block keeps the shape.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the depth-wise convolution, 1 or 2.
        expand_ratio (int): Hidden width = ``in_channels * expand_ratio``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            *_conv_bn_relu(in_channels, hidden, 1),
            *_conv_bn_relu(hidden, hidden, 3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


@MODELS.register_module()
class MobileNetV2_CIFAR(BaseBackbone):
    """MobileNetV2 for 32x32 images, as in RepDistiller.

    `MobileNetV2: Inverted Residuals and Linear Bottlenecks
    <https://arxiv.org/abs/1801.04381>`_ (Sandler et al., CVPR 2018), in the
    CIFAR version of RepDistiller (Tian et al., ICLR 2020,
    ``models/mobilenetv2.py``, itself from "Knowledge Distillation via Route
    Constrained Optimization"). Its ``mobile_half`` (expansion ``T = 6``,
    width 0.5) is the MobileNetV2 of the KD and DFKD literature whose
    CIFAR-100 scratch accuracy is 64.60 (RepDistiller's table, quoted by
    GapSSG).

    With width ``w`` and expansion ``T`` (``t, c, n, s`` = expansion,
    channels, blocks, first stride; channels are ``int(c * w)``, no
    rounding to multiples of 8)::

        conv1: conv3x3 3 -> int(32w), stride 2, BN, ReLU        16x16
        blocks[0]: t=1, c=16,  n=1, s=1                        16x16
        blocks[1]: t=T, c=24,  n=2, s=1                        16x16
        blocks[2]: t=T, c=32,  n=3, s=2                         8x8
        blocks[3]: t=T, c=64,  n=4, s=2                         4x4
        blocks[4]: t=T, c=96,  n=3, s=1                         4x4
        blocks[5]: t=T, c=160, n=3, s=2                         2x2
        blocks[6]: t=T, c=320, n=1, s=1                         2x2
        conv2: conv1x1 -> last_channel, BN, ReLU                2x2

    ``last_channel`` follows RepDistiller's rule
    ``int(1280 * w) if w > 1.0 else 1280``: 1280 for ``mobile_half``. The
    reference average-pools the final 2x2 map (``AvgPool2d(2, ceil_mode=
    True)``, i.e. a global pool at 32x32) before ``classifier =
    Sequential(Linear(last_channel, num_classes))``; here that is
    mmpretrain's ``GlobalAveragePooling`` neck and
    ``LinearClsHead(in_channels=1280)``.

    Note: the ``mobilenetv2`` of the Fast/CMI/NAYER registries (and so of
    GapSSG's released ResNet-34 -> MobileNetV2 code) is a *different*
    network, torchvision's ImageNet MobileNetV2 (width 1.0, ReLU6, stride 2
    also in the 24-channel stage, 1x1 map at 32x32), which is mmpretrain's
    ``MobileNetV2(widen_factor=1.0)``. ``tools/convert_teacher.py`` converts
    those checkpoints with ``--arch mobilenetv2_tv``.

    Submodule names are the reference's (``conv1.0``, ``blocks.2.1.conv.3``,
    ``conv2.1``), so its checkpoints load under a ``backbone.`` prefix.

    Args:
        widen_factor (float): Width multiplier ``w``. Defaults to 0.5.
        expand_ratio (int): Expansion ``T`` of every stage but the first.
            Defaults to 6.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Outputs to return: 0-6 are the outputs
            of ``blocks[0]``-``blocks[6]``, 7 the output of ``conv2``.
            Defaults to ``(7, )``.
        frozen_stages (int): Freeze ``conv1`` (``>= 0``) and
            ``blocks[0 .. frozen_stages - 1]`` (parameters and BN
            statistics); -1 freezes nothing. Defaults to -1.
        init_cfg (dict | list[dict], optional): Initialisation. Defaults to
            the reference's: Kaiming-normal (fan-out) convolutions, BN weight
            1 and bias 0.
    """

    # t, c, n, s; t=None is replaced by expand_ratio
    arch_settings = ((1, 16, 1, 1), (None, 24, 2, 1), (None, 32, 3, 2),
                     (None, 64, 4, 2), (None, 96, 3, 1), (None, 160, 3, 2),
                     (None, 320, 1, 1))

    def __init__(self,
                 widen_factor: float = 0.5,
                 expand_ratio: int = 6,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (7, ),
                 frozen_stages: int = -1,
                 init_cfg: Optional[Union[dict, List[dict]]] = [  # noqa: B006
                     dict(type='Kaiming', layer='Conv2d'),
                     dict(type='Constant', val=1, layer='_BatchNorm')
                 ]) -> None:
        super().__init__(init_cfg=init_cfg)
        if widen_factor <= 0:
            raise ValueError(f'widen_factor must be > 0, got {widen_factor}')
        out_indices = tuple(out_indices)
        num_outputs = len(self.arch_settings) + 1
        if not out_indices or not set(out_indices) <= set(range(num_outputs)):
            raise ValueError('out_indices must be a non-empty subset of '
                             f'(0, ..., 7), got {out_indices}')
        if not -1 <= frozen_stages <= len(self.arch_settings):
            raise ValueError(
                f'frozen_stages must be in [-1, 7], got {frozen_stages}')
        self.widen_factor = widen_factor
        self.expand_ratio = expand_ratio
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages

        channels = int(32 * widen_factor)
        self.conv1 = nn.Sequential(
            *_conv_bn_relu(in_channels, channels, 3, stride=2))
        self.blocks = nn.ModuleList()
        for t, c, n, s in self.arch_settings:
            out_channels = int(c * widen_factor)
            stage = []
            for i in range(n):
                stage.append(
                    CIFARInvertedResidual(channels, out_channels,
                                          s if i == 0 else 1,
                                          expand_ratio if t is None else t))
                channels = out_channels
            self.blocks.append(nn.Sequential(*stage))
        self.out_channels = int(
            1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = nn.Sequential(
            *_conv_bn_relu(channels, self.out_channels, 1))
        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the maps selected by ``out_indices``, shallowest first."""
        outs = []
        x = self.conv1(x)
        for i, stage in enumerate(self.blocks):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        x = self.conv2(x)
        if len(self.blocks) in self.out_indices:
            outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.conv1] + list(self.blocks[:self.frozen_stages])
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'MobileNetV2_CIFAR':
        super().train(mode)
        # a frozen stage keeps its BN running statistics
        self._freeze_stages()
        return self
