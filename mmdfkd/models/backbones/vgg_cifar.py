"""The CIFAR VGG-BN of RepDistiller (``vgg8/11/13``), as an mmpretrain
backbone."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class VGG_CIFAR(BaseBackbone):
    """VGG with BatchNorm for 32x32 (and 64x64) images, without the fully
    connected layers.

    `Very Deep Convolutional Networks for Large-Scale Image Recognition
    <https://arxiv.org/abs/1409.1556>`_ (Simonyan & Zisserman, ICLR 2015),
    in the CIFAR version of RepDistiller (Tian et al., `Contrastive
    Representation Distillation <https://arxiv.org/abs/1910.10699>`_, ICLR
    2020, ``models/vgg.py``). Fast, CMI and NAYER register its BN variants as
    ``vgg8`` (``vgg8_bn``), ``vgg11`` (``vgg11_bn``) and ``vgg13``
    (``vgg13_bn``). Convolutions are 3x3 with bias, each followed by BN and
    ReLU; widths per block (``depth`` counts the convolutions plus 3, after
    the ImageNet VGG's three fully connected layers)::

        depth  block0     block1     block2          block3          block4
        8      64         128        256             512             512
        11     64         128        256x2           512x2           512x2
        13     64x2       128x2      256x2           512x2           512x2
        16     64x2       128x2      256x3           512x3           512x3
        19     64x2       128x2      256x4           512x4           512x4

    A 2x2 max-pool follows block0, block1 and block2, so block3 and block4
    run at 4x4 on 32x32 inputs; block3 is max-pooled too only for 64x64
    inputs (RepDistiller's ``if h == 64``), so block4 is 4x4 there as well.
    The output is ``relu(block4)``, 512 channels; RepDistiller's adaptive
    average pool and single ``classifier = Linear(512, num_classes)`` are
    mmpretrain's ``GlobalAveragePooling`` neck and
    ``LinearClsHead(in_channels=512)``.

    Each ``block<i>`` is an ``nn.Sequential`` of ``conv, bn, relu, ...,
    conv, bn`` (the block's last ReLU is applied in ``forward``), so the
    reference keys (``block2.4.running_var``) load unchanged under a
    ``backbone.`` prefix and NAYER/CPNet's hooked nodes (``block4.4``,
    ``block1.1``) name the same layers.

    Args:
        depth (int): 8, 11, 13, 16 or 19.
        in_channels (int): Input image channels. Defaults to 3.
        out_indices (Sequence[int]): Indices of the ReLU-activated block
            outputs to return (0-4). Defaults to ``(4, )``.
        frozen_stages (int): Freeze blocks ``0 .. frozen_stages`` (parameters
            and BN statistics); -1 freezes nothing. Defaults to -1.
        init_cfg (dict | list[dict], optional): Initialisation. Defaults to
            the reference's: Kaiming-normal (fan-out) convolutions with zero
            bias, BN weight 1 and bias 0.
    """

    arch_settings = {
        8: ((64, ), (128, ), (256, ), (512, ), (512, )),
        11: ((64, ), (128, ), (256, 256), (512, 512), (512, 512)),
        13: ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
        16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512),
             (512, 512, 512)),
        19: ((64, 64), (128, 128), (256, 256, 256, 256),
             (512, 512, 512, 512), (512, 512, 512, 512)),
    }
    num_stages = 5

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (4, ),
                 frozen_stages: int = -1,
                 init_cfg: Optional[Union[dict, List[dict]]] = [  # noqa: B006
                     dict(type='Kaiming', layer='Conv2d'),
                     dict(type='Constant', val=1, layer='_BatchNorm')
                 ]) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(f'VGG_CIFAR depth must be one of '
                             f'{sorted(self.arch_settings)}, got {depth}')
        out_indices = tuple(out_indices)
        if not out_indices or not set(out_indices) <= set(
                range(self.num_stages)):
            raise ValueError('out_indices must be a non-empty subset of '
                             f'(0, 1, 2, 3, 4), got {out_indices}')
        if not -1 <= frozen_stages < self.num_stages:
            raise ValueError(
                f'frozen_stages must be in [-1, 4], got {frozen_stages}')
        self.depth = depth
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.out_channels = 512

        for i, widths in enumerate(self.arch_settings[depth]):
            self.add_module(f'block{i}', self._make_block(in_channels, widths))
            in_channels = widths[-1]
        # pool3 only acts on 64x64 inputs, see the class docstring
        for i in range(4):
            self.add_module(f'pool{i}', nn.MaxPool2d(kernel_size=2, stride=2))
        self._freeze_stages()

    @staticmethod
    def _make_block(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
        layers = []
        for width in widths:
            layers += [
                nn.Conv2d(in_channels, width, kernel_size=3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU()
            ]
            in_channels = width
        return nn.Sequential(*layers[:-1])

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the activated block outputs selected by ``out_indices``."""
        input_height = x.shape[2]
        outs = []
        for i in range(self.num_stages):
            x = F.relu(getattr(self, f'block{i}')(x))
            if i in self.out_indices:
                outs.append(x)
            if i < 3 or (i == 3 and input_height == 64):
                x = getattr(self, f'pool{i}')(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages + 1):
            block = getattr(self, f'block{i}')
            block.eval()
            for param in block.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'VGG_CIFAR':
        super().train(mode)
        # a frozen block keeps its BN running statistics
        self._freeze_stages()
        return self
