from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class DAFLGenerator(BaseModule):
    """The DCGAN-style generator of DAFL (Chen et al., ICCV 2019) and of the
    methods that reuse it with small changes, selected by arguments::

        z -> Linear -> (C_h @ img/4) -> BN [-> LReLU]
          -> x2 up -> Conv3x3 C_h->C_h -> BN(eps) -> LReLU(0.2)
          -> x2 up -> Conv3x3 C_h->C_h/2 -> BN(eps) -> LReLU(0.2)
          -> Conv3x3 C_h/2->C_out -> final activation -> final BN

    ===========  ==========  ======  ================  ===========  ======
    method       latent_dim  bn_eps  final_activation  final_norm   note
    ===========  ==========  ======  ================  ===========  ======
    DAFL         100 / 1000  0.8     tanh              non_affine
    DFAD         256         1e-5    tanh              non_affine   GeneratorA
    ZSKT         100         1e-5    None              affine
    TA-DFKD      1000        0.8     sigmoid           None         LReLU after input BN
    Fast / CMI   256         1e-5    sigmoid           None         no conv bias
    ===========  ==========  ======  ================  ===========  ======

    ``bn_eps=0.8`` reproduces a quirk of the DAFL code (0.8 passed as
    BatchNorm2d's second positional argument, which is eps, not momentum);
    TA-DFKD inherits it. A ``non_affine`` final BN batch-standardises the
    images, so they need no further normalisation before the networks;
    ``sigmoid`` outputs lie in [0, 1] and must be normalised by the caller.

    Args:
        img_size (int): Output height/width, a multiple of 4.
        latent_dim (int): Size of z.
        hidden_channels (int): C_h. Defaults to 128.
        out_channels (int): Image channels. Defaults to 3.
        bn_eps (float): eps of the two inner BatchNorms. Defaults to 0.8.
        final_activation (str, optional): 'tanh', 'sigmoid' or None.
        final_norm (str, optional): 'non_affine', 'affine' or None.
        act_after_input_bn (bool): LeakyReLU after the first BN (TA-DFKD).
        conv_bias (bool): Bias in the two inner convolutions.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 img_size: int,
                 latent_dim: int,
                 hidden_channels: int = 128,
                 out_channels: int = 3,
                 bn_eps: float = 0.8,
                 final_activation: Optional[str] = 'tanh',
                 final_norm: Optional[str] = 'non_affine',
                 act_after_input_bn: bool = False,
                 conv_bias: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if img_size % 4 != 0:
            raise ValueError(
                f'DAFLGenerator upsamples twice by 2, so img_size must be a '
                f'multiple of 4; got {img_size}')
        activations = {'tanh': nn.Tanh, 'sigmoid': nn.Sigmoid, None: None}
        if final_activation not in activations:
            raise ValueError(f'unknown final_activation {final_activation!r}')
        if final_norm not in ('non_affine', 'affine', None):
            raise ValueError(f'unknown final_norm {final_norm!r}')
        self.img_size = img_size
        self.latent_dim = latent_dim
        self.out_channels = out_channels
        self.init_size = img_size // 4
        h = hidden_channels

        self.fc = nn.Linear(latent_dim, h * self.init_size**2)
        input_bn = [nn.BatchNorm2d(h)]
        if act_after_input_bn:
            input_bn.append(nn.LeakyReLU(0.2, inplace=True))
        self.input_bn = nn.Sequential(*input_bn)
        self.block1 = nn.Sequential(
            nn.Conv2d(h, h, 3, 1, 1, bias=conv_bias),
            nn.BatchNorm2d(h, eps=bn_eps), nn.LeakyReLU(0.2, inplace=True))
        head = [
            nn.Conv2d(h, h // 2, 3, 1, 1, bias=conv_bias),
            nn.BatchNorm2d(h // 2, eps=bn_eps),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(h // 2, out_channels, 3, 1, 1)
        ]
        if final_activation is not None:
            head.append(activations[final_activation]())
        if final_norm is not None:
            head.append(
                nn.BatchNorm2d(
                    out_channels, affine=final_norm == 'affine'))
        self.block2 = nn.Sequential(*head)

    @property
    def image_shape(self):
        return (self.out_channels, self.img_size, self.img_size)

    def forward(self,
                latents: torch.Tensor,
                targets: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Map latents (N, latent_dim) to images (N, C, H, W); ``targets``
        are accepted for a uniform generator interface and unused."""
        if latents.dim() != 2 or latents.shape[1] != self.latent_dim:
            raise ValueError(
                f'expected latents of shape (N, {self.latent_dim}), got '
                f'{tuple(latents.shape)}; check latent_dim of the generator '
                'and of the latent dataset')
        x = self.fc(latents).view(-1, self.fc.out_features // self.init_size**
                                  2, self.init_size, self.init_size)
        x = self.input_bn(x)
        x = F.interpolate(x, scale_factor=2)
        x = self.block1(x)
        x = F.interpolate(x, scale_factor=2)
        return self.block2(x)
