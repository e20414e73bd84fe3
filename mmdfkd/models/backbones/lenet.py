"""LeNet-5 and LeNet-5-half of DAFL, as an mmpretrain backbone."""
from typing import Optional, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class DFKDLeNet5(BaseModule):
    """LeNet-5 for 32x32 images, as used by DAFL.

    The teacher / student pair of the MNIST and Fashion-MNIST experiments of
    `DAFL: Data-Free Learning of Student Networks
    <https://arxiv.org/abs/1904.01186>`_ (Chen et al., ICCV 2019), after
    LeCun et al., "Gradient-based learning applied to document recognition",
    Proc. IEEE 1998, with max pooling and ReLU instead of subsampling and
    tanh::

        conv5x5 C->6   [BN] ReLU  maxpool2     32 -> 28 -> 14
        conv5x5 6->16  [BN] ReLU  maxpool2     14 -> 10 -> 5
        conv5x5 16->120 [BN] ReLU              5 -> 1
        flatten, fc 120->84 [BN1d] ReLU        -> output (N, 84)

    LeNet-5-half (``width_multiplier=0.5``) halves every width: 3, 8, 60, 42.
    The last ``fc 84->num_classes`` of DAFL is left to the classification
    head, so a config uses ``neck=None`` and
    ``head=dict(type='LinearClsHead', in_channels=84 (42 for half), ...)``.

    DAFL's original network has no BatchNorm. ``with_bn=True`` (the default)
    adds BatchNorm2d after every convolution and BatchNorm1d after the
    ``fc 120->84``, because methods such as DeepInversion (Yin et al., CVPR
    2020) match the teacher's BN running statistics; use ``with_bn=False`` to
    reproduce DAFL exactly. With BN, the layers before a BN have no bias,
    which BN's shift would make redundant.

    ReLUs are not in-place, so an output recorded by a forward hook (e.g. on
    ``bn3``) is not overwritten by the next layer.

    Submodule names are stable (``conv1``, ``bn1``, ..., ``fc``, ``bn4``,
    ``relu4``) so that recorders can address them, e.g.
    ``backbone.conv3`` for the 120-channel map DAFL calls the feature.

    Args:
        width_multiplier (float): 1.0 for LeNet-5, 0.5 for LeNet-5-half.
            Defaults to 1.0.
        in_channels (int): Channels of the input images. Defaults to 1.
        with_bn (bool): Whether to use BatchNorm after each conv and after
            the fully connected layer. Defaults to True.
        init_cfg (dict | list[dict], optional): mmengine initialisation
            config. Defaults to None, i.e. PyTorch's default initialisation,
            as in the DAFL code.
    """

    # widths of conv1, conv2, conv3 and fc at width_multiplier=1
    base_widths = (6, 16, 120, 84)

    def __init__(self,
                 width_multiplier: float = 1.0,
                 in_channels: int = 1,
                 with_bn: bool = True,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if width_multiplier not in (1.0, 0.5):
            raise ValueError('width_multiplier must be 1.0 (LeNet-5) or 0.5 '
                             f'(LeNet-5-half), got {width_multiplier}')
        self.width_multiplier = width_multiplier
        self.in_channels = in_channels
        self.with_bn = with_bn
        c1, c2, c3, c4 = (int(w * width_multiplier) for w in self.base_widths)
        self.out_channels = c4

        self.conv1 = nn.Conv2d(in_channels, c1, 5, bias=not with_bn)
        self.bn1 = nn.BatchNorm2d(c1) if with_bn else nn.Identity()
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, bias=not with_bn)
        self.bn2 = nn.BatchNorm2d(c2) if with_bn else nn.Identity()
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv3 = nn.Conv2d(c2, c3, 5, bias=not with_bn)
        self.bn3 = nn.BatchNorm2d(c3) if with_bn else nn.Identity()
        self.relu3 = nn.ReLU()
        self.fc = nn.Linear(c3, c4, bias=not with_bn)
        self.bn4 = nn.BatchNorm1d(c4) if with_bn else nn.Identity()
        self.relu4 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        """Return a one-element tuple with the (N, 84 * width) feature."""
        if x.shape[-2:] != (32, 32):
            # conv3 must reduce the map to 1x1 for the fc layer
            raise ValueError('DFKDLeNet5 expects 32x32 inputs, got '
                             f'{tuple(x.shape[-2:])}; pad 28x28 images by 2')
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        x = self.relu3(self.bn3(self.conv3(x)))
        x = self.relu4(self.bn4(self.fc(torch.flatten(x, 1))))
        return (x, )
