"""LeNet-5 / LeNet-5-half and the DAFL generator as plain ``nn.Module``s.

The layers, their order and their parameter names mirror mmdfkd's
``DFKDLeNet5`` + ``LinearClsHead`` (an mmpretrain ``ImageClassifier``) and
``DAFLGenerator``, so that the weights of an mmdfkd model load into these
after a renaming (:func:`classifier_state_to_plain`), and both compute the
same numbers with the same operations. Nothing here imports mmengine.
"""

import torch
import torch.nn.functional as F
from torch import nn


class PlainLeNet5(nn.Module):
    """LeNet-5 for 32x32 images (DAFL, Chen et al., ICCV 2019) with BN::

        conv5x5 C->6 BN ReLU maxpool2, conv5x5 6->16 BN ReLU maxpool2,
        conv5x5 16->120 BN ReLU, fc 120->84 BN1d ReLU, classifier 84->K

    ``width_multiplier=0.5`` gives LeNet-5-half (3, 8, 60, 42).

    Args:
        width_multiplier (float): 1.0 or 0.5.
        in_channels (int): Image channels.
        num_classes (int): Classifier outputs.
        with_bn (bool): BatchNorm after every conv and the fc layer (then
            those layers have no bias), as mmdfkd's default.
    """

    base_widths = (6, 16, 120, 84)

    def __init__(self,
                 width_multiplier: float = 1.0,
                 in_channels: int = 1,
                 num_classes: int = 10,
                 with_bn: bool = True) -> None:
        super().__init__()
        c1, c2, c3, c4 = (int(w * width_multiplier) for w in self.base_widths)

        def norm(channels, two_d=True):
            if not with_bn:
                return nn.Identity()
            return nn.BatchNorm2d(channels) if two_d else nn.BatchNorm1d(
                channels)

        self.conv1 = nn.Conv2d(in_channels, c1, 5, bias=not with_bn)
        self.bn1 = norm(c1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, bias=not with_bn)
        self.bn2 = norm(c2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv3 = nn.Conv2d(c2, c3, 5, bias=not with_bn)
        self.bn3 = norm(c3)
        self.relu3 = nn.ReLU()
        self.fc = nn.Linear(c3, c4, bias=not with_bn)
        self.bn4 = norm(c4, two_d=False)
        self.relu4 = nn.ReLU()
        self.classifier = nn.Linear(c4, num_classes)

    def features_and_logits(
            self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate features (N, 84 * width) and logits (N, K)."""
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        x = self.relu3(self.bn3(self.conv3(x)))
        features = self.relu4(self.bn4(self.fc(torch.flatten(x, 1))))
        return features, self.classifier(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]


class PlainDAFLGenerator(nn.Module):
    """DAFL's generator (Chen et al., ICCV 2019), as DFAD also uses it::

        z -> Linear -> (C_h @ img/4) -> BN
          -> x2 up -> Conv3x3 C_h->C_h -> BN(eps) -> LReLU(0.2)
          -> x2 up -> Conv3x3 C_h->C_h/2 -> BN(eps) -> LReLU(0.2)
          -> Conv3x3 C_h/2->C_out -> tanh -> BN(affine=False)

    Args:
        img_size (int): Output height/width, a multiple of 4.
        latent_dim (int): Size of z.
        hidden_channels (int): C_h.
        out_channels (int): Image channels.
        bn_eps (float): eps of the two inner BatchNorms (0.8 in DAFL's code,
            1e-5 in DFAD's).
    """

    def __init__(self,
                 img_size: int = 32,
                 latent_dim: int = 100,
                 hidden_channels: int = 128,
                 out_channels: int = 1,
                 bn_eps: float = 0.8) -> None:
        super().__init__()
        self.init_size = img_size // 4
        h = hidden_channels
        self.fc = nn.Linear(latent_dim, h * self.init_size**2)
        self.input_bn = nn.Sequential(nn.BatchNorm2d(h))
        self.block1 = nn.Sequential(
            nn.Conv2d(h, h, 3, 1, 1), nn.BatchNorm2d(h, eps=bn_eps),
            nn.LeakyReLU(0.2, inplace=True))
        self.block2 = nn.Sequential(
            nn.Conv2d(h, h // 2, 3, 1, 1), nn.BatchNorm2d(h // 2, eps=bn_eps),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(h // 2, out_channels, 3, 1, 1), nn.Tanh(),
            nn.BatchNorm2d(out_channels, affine=False))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, self.fc.out_features // self.init_size**2,
                            self.init_size, self.init_size)
        x = self.input_bn(x)
        x = F.interpolate(x, scale_factor=2)
        x = self.block1(x)
        x = F.interpolate(x, scale_factor=2)
        return self.block2(x)


def classifier_state_to_plain(
        state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the state dict of an mmpretrain ``ImageClassifier`` with a
    ``DFKDLeNet5`` backbone and a ``LinearClsHead`` into
    :class:`PlainLeNet5`'s names (``backbone.conv1.weight`` ->
    ``conv1.weight``, ``head.fc.weight`` -> ``classifier.weight``)."""
    renamed = {}
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            renamed[key[len('backbone.'):]] = value
        elif key.startswith('head.fc.'):
            renamed['classifier.' + key[len('head.fc.'):]] = value
        else:
            raise KeyError(f'unexpected classifier state key {key!r}: only a '
                           'LeNet-5 backbone with a linear head is supported')
    return renamed
