"""The CIFAR Wide-ResNet of ZSKT, used as teacher and student by every DFKD
paper, as an mmpretrain backbone."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import nn

from mmdfkd.registry import MODELS


class WideBasicBlock(nn.Module):
    """Pre-activation basic block of a Wide-ResNet (BN-ReLU-conv twice).

    When the block changes the width or the resolution, the shortcut is a
    1x1 convolution applied to the *activated* input ``relu(bn1(x))``;
    otherwise it is the raw input ``x``. This is the block of Zagoruyko &
    Komodakis's reference code as ported by ZSKT.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the first convolution (and the shortcut).
        drop_rate (float): Dropout probability between the two
            convolutions.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=1,
            bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
        self.dropout = nn.Dropout(drop_rate)
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.has_projection = in_channels != out_channels or stride != 1
        # The camelCase name is the reference checkpoints' key
        # (``...layer.0.convShortcut.weight``).
        self.convShortcut = nn.Conv2d(
            in_channels, out_channels, 1, stride=stride,
            bias=False) if self.has_projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(activated)))
        out = self.conv2(self.dropout(out))
        shortcut = self.convShortcut(activated) if self.has_projection else x
        return shortcut + out


class WideResNetStage(nn.Module):
    """``n`` wide basic blocks; the first one may change width/stride.

    The blocks live in ``self.layer`` so that parameter names match the
    reference checkpoints (``block2.layer.0.bn1.weight``).
    """

    def __init__(self, num_blocks: int, in_channels: int, out_channels: int,
                 stride: int, drop_rate: float) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[
            WideBasicBlock(in_channels if i == 0 else out_channels,
                           out_channels, stride if i == 0 else 1, drop_rate)
            for i in range(num_blocks)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


@MODELS.register_module()
class WideResNet_CIFAR(BaseBackbone):
    """Wide-ResNet WRN-``depth``-``widen_factor`` for 32x32 images.

    `Wide Residual Networks <https://arxiv.org/abs/1605.07146>`_ (Zagoruyko
    & Komodakis, BMVC 2016), in the version of `Zero-shot Knowledge Transfer
    via Adversarial Belief Matching <https://arxiv.org/abs/1905.09768>`_
    (Micaelli & Storkey, NeurIPS 2019, ``polo5/ZeroShotKnowledgeTransfer``
    ``models/wresnet.py``), which Fast, CMI, NAYER, CPNet and AdaDFKD copy as
    ``wrn16_1 / wrn16_2 / wrn40_1 / wrn40_2``. With ``n = (depth - 4) / 6``
    blocks per stage and ``k = widen_factor``::

        conv3x3 3->16                                   32x32
        block1: n pre-activation blocks, 16  -> 16k     32x32
        block2: n blocks, 16k -> 32k, first stride 2    16x16
        block3: n blocks, 32k -> 64k, first stride 2     8x8
        bn1, ReLU                                        8x8, 64k channels

    The reference then average-pools the 8x8 map and applies ``fc``; here
    the pooling is mmpretrain's ``GlobalAveragePooling`` neck and ``fc`` is
    ``LinearClsHead(in_channels=64 * widen_factor)``.

    Submodule names are those of the reference (``conv1``, ``block1.layer.0.
    bn1``, ``convShortcut``, the final ``bn1``), so its checkpoints load
    under a ``backbone.`` prefix and the BN layers that methods hook (CPNet:
    ``bn1, block3.layer.0.bn1, block2.layer.0.bn1, block1.layer.0.bn1``)
    have the same names. ReLUs are separate, non in-place modules so that
    recorded outputs are not overwritten.

    Args:
        depth (int): ``6n + 4``; 16 and 40 in the DFKD papers.
        widen_factor (int): Width multiplier ``k``; 1 or 2 in the papers.
        drop_rate (float): Dropout between the two convolutions of a block.
            Defaults to 0 (as in every DFKD paper).
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Outputs to return: 0, 1, 2 are the
            outputs of ``block1``-``block3`` (ZSKT's attention-transfer
            activations), 3 the final BN-ReLU map. Defaults to ``(3, )``.
        frozen_stages (int): Freeze the stem conv (``>= 0``) and the first
            ``frozen_stages`` blocks (parameters and BN statistics). -1
            freezes nothing. Defaults to -1.
        init_cfg (dict | list[dict], optional): Initialisation. Defaults to
            the reference's: Kaiming-normal (fan-out) convolutions, BN weight
            1 and bias 0.
    """

    num_stages = 3

    def __init__(self,
                 depth: int,
                 widen_factor: int = 1,
                 drop_rate: float = 0.0,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (3, ),
                 frozen_stages: int = -1,
                 init_cfg: Optional[Union[dict, List[dict]]] = [  # noqa: B006
                     dict(type='Kaiming', layer='Conv2d'),
                     dict(type='Constant', val=1, layer='_BatchNorm')
                 ]) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(
                f'WideResNet_CIFAR depth must be 6n + 4 (n >= 1), got {depth}')
        if widen_factor < 1:
            raise ValueError(
                f'widen_factor must be a positive integer, got {widen_factor}')
        out_indices = tuple(out_indices)
        if not out_indices or not set(out_indices) <= {0, 1, 2, 3}:
            raise ValueError(
                f'out_indices must be a non-empty subset of (0, 1, 2, 3), got '
                f'{out_indices}')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in [-1, 3], got '
                             f'{frozen_stages}')
        self.depth = depth
        self.widen_factor = widen_factor
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        blocks_per_stage = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.out_channels = widths[-1]

        self.conv1 = nn.Conv2d(
            in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.block1 = WideResNetStage(blocks_per_stage, widths[0], widths[1],
                                      1, drop_rate)
        self.block2 = WideResNetStage(blocks_per_stage, widths[1], widths[2],
                                      2, drop_rate)
        self.block3 = WideResNetStage(blocks_per_stage, widths[2], widths[3],
                                      2, drop_rate)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU()
        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the maps selected by ``out_indices``, shallowest first."""
        outs = []
        x = self.conv1(x)
        for i, stage in enumerate((self.block1, self.block2, self.block3)):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        x = self.relu(self.bn1(x))
        if 3 in self.out_indices:
            outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.conv1] + [
            getattr(self, f'block{i}')
            for i in range(1, self.frozen_stages + 1)
        ]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'WideResNet_CIFAR':
        super().train(mode)
        # a frozen stage keeps its BN running statistics
        self._freeze_stages()
        return self

