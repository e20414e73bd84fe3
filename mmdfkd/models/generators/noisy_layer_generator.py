import math
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.model import BaseModule
from torch import nn

from mmdfkd.registry import MODELS
from .label_embeddings import build_label_embeddings
from .noisy_layer import NoisyLinear


def load_label_embeddings(
        source: Union[str, dict, torch.Tensor, np.ndarray, Sequence]
) -> torch.Tensor:
    """Read a (num_classes, dim) table of label embeddings.

    ``source`` is a tensor/array/nested list, or a file:

    * ``.pth`` / ``.pt`` (``torch.save``): a float tensor (C, E), or a dict
      ``{'embeddings': Tensor(C, E), 'class_names': [str] * C (optional),
      'encoder': str (optional, e.g. the text model that produced them)}``.
      Read with ``torch.load(weights_only=True)``: a file that needs any
      other Python object is refused.
    * ``.npy``: a float array (C, E) (no pickle allowed).

    or a spec of a table built without any text model,
    ``dict(type='orthogonal', num_classes=C, dim=E, seed=S)`` (see
    :func:`orthogonal_label_embeddings`). Row c is the embedding of
    class c.
    """
    if isinstance(source, dict):
        return build_label_embeddings(source)
    if isinstance(source, str):
        if not osp.isfile(source):
            raise FileNotFoundError(f'label embedding file {source} not found')
        if source.endswith('.npy'):
            table = torch.from_numpy(np.load(source, allow_pickle=False))
        elif source.endswith(('.pth', '.pt')):
            table = torch.load(source, map_location='cpu', weights_only=True)
            if isinstance(table, dict):
                if 'embeddings' not in table:
                    raise KeyError(
                        f"{source} holds a dict without 'embeddings'; keys: "
                        f'{sorted(table)}')
                names = table.get('class_names')
                table = table['embeddings']
                if names is not None and len(names) != len(table):
                    raise ValueError(
                        f'{source}: {len(names)} class names for '
                        f'{len(table)} embeddings')
        else:
            raise ValueError(f'label embeddings must be a .pth/.pt or .npy '
                             f'file, got {source}')
    else:
        table = torch.as_tensor(np.asarray(source))
    if not isinstance(table, torch.Tensor) or table.dim() != 2:
        raise ValueError('label embeddings must form a (num_classes, dim) '
                         f'table, got {getattr(table, "shape", type(table))}')
    return table.float()


@MODELS.register_module()
class NoisyLayerGenerator(BaseModule):
    """The generator of NAYER (Tran et al., "NAYER: Noisy Layer Data
    Generation for Efficient and Effective Data-free Knowledge
    Distillation", CVPR 2024; ``NLGenerator`` of its code).

    There is no latent code: the input of sample i is the constant
    embedding e_{y_i} of its target class (NAYER: CLIP text features of
    "a image of {class}", 512-d), and the randomness comes from
    :class:`NoisyLinear` layers that the algorithm re-draws before every
    synthesised batch::

        e_y (C x E table, fixed) -> BatchNorm1d(E)
          -> K-to-1 NoisyLinear(E -> noise_dim), one layer per chunk of
             C samples, K = ceil(batch_size / C)
          -> Linear(noise_dim -> 2h * (S/4)^2) -> (2h @ S/4)
          -> BN2d -> x2 up -> Conv3x3 2h->2h (no bias) -> BN -> LReLU(0.2)
          -> x2 up -> Conv3x3 2h->h (no bias) -> BN -> LReLU(0.2)
          -> Conv3x3 h->C_out -> Sigmoid

    (the rest is Fast's DCGAN-style generator; outputs lie in [0, 1] and
    are normalised by the synthesis augmentation). NAYER uses h = 64,
    noise_dim = 1000, S = 32 (CIFAR) and PyTorch's default initialisation;
    the noisy layers are also trained during a batch's steps.

    Args:
        label_embeddings (str | Tensor | array | list): (C, E) class
            embeddings, or a file holding them (format:
            :func:`load_label_embeddings`).
        batch_size (int): Largest synthesis batch; sets K.
        img_size (int): Output height/width, a multiple of 4.
            Defaults to 32.
        out_channels (int): Image channels. Defaults to 3.
        hidden_channels (int): h. Defaults to 64.
        noise_dim (int): Output size of the noisy layers. Defaults to 1000.
        chunk_size (int, optional): Samples per noisy layer; defaults to the
            number of classes C.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 label_embeddings: Union[str, torch.Tensor, Sequence],
                 batch_size: int,
                 img_size: int = 32,
                 out_channels: int = 3,
                 hidden_channels: int = 64,
                 noise_dim: int = 1000,
                 chunk_size: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if img_size % 4 != 0:
            raise ValueError('NoisyLayerGenerator upsamples twice by 2, so '
                             f'img_size must be a multiple of 4; got '
                             f'{img_size}')
        if batch_size < 1:
            raise ValueError(f'batch_size must be positive, got {batch_size}')
        table = load_label_embeddings(label_embeddings)
        # constant, but saved with the weights trained on it
        self.register_buffer('label_embeddings', table)
        self.num_classes, self.embedding_dim = table.shape
        self.img_size = img_size
        self.out_channels = out_channels
        self.init_size = img_size // 4
        chunk_size = chunk_size or self.num_classes
        h = hidden_channels

        self.embedding_norm = nn.BatchNorm1d(self.embedding_dim)
        self.noisy_layer = NoisyLinear(
            self.embedding_dim,
            noise_dim,
            num_layers=math.ceil(batch_size / chunk_size),
            chunk_size=chunk_size)
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

    @property
    def image_shape(self):
        return (self.out_channels, self.img_size, self.img_size)

    def forward(self,
                latents: Optional[torch.Tensor] = None,
                targets: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Images (N, C_out, S, S) for ``targets`` (N, ); ``latents`` are
        accepted for the uniform generator interface and unused."""
        if targets is None:
            raise ValueError('NoisyLayerGenerator generates from class '
                             'labels: pass targets')
        if targets.min() < 0 or targets.max() >= self.num_classes:
            raise ValueError(
                f'targets must lie in [0, {self.num_classes}) (the rows of '
                'the label embedding table)')
        x = self.embedding_norm(self.label_embeddings[targets])
        x = self.fc(self.noisy_layer(x))
        x = x.view(len(x), -1, self.init_size, self.init_size)
        return self.conv_blocks(x)
