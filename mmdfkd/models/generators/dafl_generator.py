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
    DFQ (CMI)    256         1e-5    sigmoid           None         no conv bias
    CuDFKD       512         1e-5    sigmoid           None         C_h 256, halving
    ===========  ==========  ======  ================  ===========  ======

``halve_channels=True`` halves the width at each upsampling stage instead
(C_h -> C_h/2 -> C_h/4 -> C_out), the ``DCGAN_Generator_CIFAR10`` (depth 2,
ngf 64, so C_h = 256) of CuDFKD and AdaDFKD (Li et al.).

    ``bn_eps=0.8`` reproduces a quirk of the DAFL code (0.8 passed as
    BatchNorm2d's second positional argument, which is eps, not momentum);
    TA-DFKD inherits it. A ``non_affine`` final BN batch-standardises the
    images, so they need no further normalisation before the networks;
    ``sigmoid`` outputs lie in [0, 1] and must be normalised by the caller,
    or by the generator itself with ``output_normalization`` (the
    ``Normalizer`` the CMI-lineage code applies after its generators).

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
        halve_channels (bool): Stage widths C_h/2 and C_h/4 instead of C_h
            and C_h/2. Defaults to False.
        output_normalization (dict, optional): ``dict(mean=[...],
            std=[...])`` per channel in 0-255 pixel units, as in
            ``ClsDataPreprocessor``: the output x in [0, 1] becomes
            (255 x - mean) / std, the networks' input space. Defaults to
            None (no normalisation).
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
                 halve_channels: bool = False,
                 output_normalization: dict | None = None,
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
        # widths after the first and second upsampling stage
        c1, c2 = (h // 2, h // 4) if halve_channels else (h, h // 2)

        self.fc = nn.Linear(latent_dim, h * self.init_size**2)
        input_bn = [nn.BatchNorm2d(h)]
        if act_after_input_bn:
            input_bn.append(nn.LeakyReLU(0.2, inplace=True))
        self.input_bn = nn.Sequential(*input_bn)
        self.block1 = nn.Sequential(
            nn.Conv2d(h, c1, 3, 1, 1, bias=conv_bias),
            nn.BatchNorm2d(c1, eps=bn_eps), nn.LeakyReLU(0.2, inplace=True))
        head = [
            nn.Conv2d(c1, c2, 3, 1, 1, bias=conv_bias),
            nn.BatchNorm2d(c2, eps=bn_eps),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c2, out_channels, 3, 1, 1)
        ]
        if final_activation is not None:
            head.append(activations[final_activation]())
        if final_norm is not None:
            head.append(
                nn.BatchNorm2d(
                    out_channels, affine=final_norm == 'affine'))
        self.block2 = nn.Sequential(*head)
        self.output_normalization = None
        if output_normalization is not None:
            self._set_output_normalization(output_normalization)

    def _set_output_normalization(self, cfg: dict) -> None:
        if set(cfg) != {'mean', 'std'}:
            raise KeyError('output_normalization must be dict(mean=[...], '
                           f'std=[...]), got keys {sorted(cfg)}')
        mean, std = (torch.tensor(cfg[k], dtype=torch.float32).flatten()
                     for k in ('mean', 'std'))
        if not len(mean) == len(std) == self.out_channels:
            raise ValueError(
                'output_normalization needs one mean and one std per output '
                f'channel ({self.out_channels}), got {len(mean)} and '
                f'{len(std)}')
        if not bool((std > 0).all()):
            raise ValueError(f'output_normalization std must be > 0, got '
                             f'{std.tolist()}')
        self.output_normalization = dict(cfg)
        # constants, not state: kept out of checkpoints
        self.register_buffer(
            'output_mean', mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer(
            'output_std', std.view(1, -1, 1, 1), persistent=False)

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
        x = self.block2(x)
        if self.output_normalization is not None:
            x = (x * 255 - self.output_mean) / self.output_std
        return x
