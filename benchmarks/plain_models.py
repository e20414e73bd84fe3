"""LeNet-5 / LeNet-5-half and the generators of DAFL, Fast and NAYER as
plain ``nn.Module``s.

The layers, their order and their parameter names mirror mmdfkd's
``DFKDLeNet5`` + ``LinearClsHead`` (an mmpretrain ``ImageClassifier``),
``DAFLGenerator`` and ``NoisyLayerGenerator``, so that the weights of an
mmdfkd model load into these after a renaming
(:func:`classifier_state_to_plain`), and both compute the same numbers
with the same operations. Nothing here imports mmengine.
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


class PlainFastGenerator(nn.Module):
    """Fast's generator (Fang et al., AAAI 2022; mmdfkd's ``DAFLGenerator``
    with ``final_activation='sigmoid'``, ``final_norm=None``,
    ``conv_bias=False``)::

        z -> Linear -> (C_h @ img/4) -> BN
          -> x2 up -> Conv3x3 C_h->C_h (no bias) -> BN -> LReLU(0.2)
          -> x2 up -> Conv3x3 C_h->C_h/2 (no bias) -> BN -> LReLU(0.2)
          -> Conv3x3 C_h/2->C_out -> sigmoid            (images in [0, 1])

    Args:
        img_size (int): Output height/width, a multiple of 4.
        latent_dim (int): Size of z.
        hidden_channels (int): C_h.
        out_channels (int): Image channels.
    """

    def __init__(self,
                 img_size: int = 32,
                 latent_dim: int = 256,
                 hidden_channels: int = 32,
                 out_channels: int = 1) -> None:
        super().__init__()
        self.init_size = img_size // 4
        h = hidden_channels
        self.fc = nn.Linear(latent_dim, h * self.init_size**2)
        self.input_bn = nn.Sequential(nn.BatchNorm2d(h))
        self.block1 = nn.Sequential(
            nn.Conv2d(h, h, 3, 1, 1, bias=False), nn.BatchNorm2d(h),
            nn.LeakyReLU(0.2, inplace=True))
        self.block2 = nn.Sequential(
            nn.Conv2d(h, h // 2, 3, 1, 1, bias=False), nn.BatchNorm2d(h // 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(h // 2, out_channels, 3, 1, 1), nn.Sigmoid())

    def forward(self, z: torch.Tensor, targets=None) -> torch.Tensor:
        x = self.fc(z).view(-1, self.fc.out_features // self.init_size**2,
                            self.init_size, self.init_size)
        x = self.input_bn(x)
        x = F.interpolate(x, scale_factor=2)
        x = self.block1(x)
        x = F.interpolate(x, scale_factor=2)
        return self.block2(x)


class PlainNoisyLinear(nn.Module):
    """NAYER's K-to-1 noisy layer (Tran et al., CVPR 2024): K linear layers
    re-drawn from N(0, 1) with zero bias before every synthesised batch;
    chunk k of ``chunk_size`` consecutive samples goes through layer k.

    Args:
        in_features (int): Input size.
        out_features (int): Output size.
        num_layers (int): K.
        chunk_size (int, optional): Samples per layer; None: the whole
            batch goes through layer 0.
    """

    def __init__(self, in_features: int, out_features: int, num_layers: int,
                 chunk_size: int | None) -> None:
        super().__init__()
        self.chunk_size = chunk_size
        self.weight = nn.Parameter(
            torch.empty(num_layers, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(num_layers, out_features))
        self.redraw()

    @torch.no_grad()
    def redraw(self) -> None:
        self.weight.normal_(0.0, 1.0)
        self.bias.zero_()

    def reset_parameters(self) -> None:
        self.redraw()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.chunk_size is None:  # one layer for the whole batch
            return F.linear(x, self.weight[0], self.bias[0])
        # unbind: one backward op stacks the K layers' gradients (indexing
        # weight[k] would add a zero-padded (K, out, in) gradient per layer)
        weights, biases = self.weight.unbind(0), self.bias.unbind(0)
        return torch.cat([
            F.linear(chunk, weights[k], biases[k])
            for k, chunk in enumerate(torch.split(x, self.chunk_size))
        ])


class PlainNoisyLayerGenerator(nn.Module):
    """NAYER's generator (``NLGenerator`` of its code)::

        e_y (C x E table) -> BN1d(E) -> K-to-1 noisy layer (E -> noise_dim)
          -> Linear -> (2h @ S/4) -> BN2d -> x2 up -> Conv3x3 2h->2h (no
          bias) -> BN -> LReLU(0.2) -> x2 up -> Conv3x3 2h->h (no bias) -> BN
          -> LReLU(0.2) -> Conv3x3 h->C_out -> sigmoid

    Args:
        label_embeddings (Tensor): The (C, E) table e.
        num_layers (int): K, noisy layers.
        chunk_size (int, optional): Samples per noisy layer.
        img_size (int): S. Defaults to 32.
        out_channels (int): Image channels. Defaults to 1.
        hidden_channels (int): h. Defaults to 16.
        noise_dim (int): Output size of the noisy layers. Defaults to 1000.
    """

    def __init__(self,
                 label_embeddings: torch.Tensor,
                 num_layers: int,
                 chunk_size: int | None,
                 img_size: int = 32,
                 out_channels: int = 1,
                 hidden_channels: int = 16,
                 noise_dim: int = 1000) -> None:
        super().__init__()
        self.register_buffer('label_embeddings', label_embeddings.clone())
        embedding_dim = label_embeddings.shape[1]
        self.init_size = img_size // 4
        h = hidden_channels
        self.embedding_norm = nn.BatchNorm1d(embedding_dim)
        self.noisy_layer = PlainNoisyLinear(embedding_dim, noise_dim,
                                            num_layers, chunk_size)
        self.fc = nn.Linear(noise_dim, 2 * h * self.init_size**2)
        self.conv_blocks = nn.Sequential(
            nn.BatchNorm2d(2 * h),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(2 * h, 2 * h, 3, 1, 1, bias=False),
            nn.BatchNorm2d(2 * h),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(2 * h, h, 3, 1, 1, bias=False),
            nn.BatchNorm2d(h),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(h, out_channels, 3, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, latents, targets: torch.Tensor) -> torch.Tensor:
        """Images for ``targets``; ``latents`` are not used."""
        x = self.embedding_norm(self.label_embeddings[targets])
        x = self.fc(self.noisy_layer(x))
        return self.conv_blocks(x.view(len(x), -1, self.init_size,
                                       self.init_size))
