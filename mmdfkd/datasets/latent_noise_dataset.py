from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from mmdfkd.registry import DATASETS


@DATASETS.register_module()
class LatentNoiseDataset(Dataset):
    """The "training set" of a data-free run: latent noise and target labels,
    generated on the fly; no image is ever read.

    Item ``i`` is produced by a random generator seeded with
    ``(seed, i)`` only (numpy's SeedSequence), so it is the same in every process and every run:
    DDP ranks (which the sampler gives different indices) draw different
    noise, and a resumed run draws exactly the noise it would have drawn.
    Each item holds ``num_draws`` independent draws, one per generator or
    student step of an iteration::

        {'latents': Tensor(num_draws, latent_dim) ~ N(0, I),
         'targets': LongTensor(num_draws) ~ U{0..num_classes-1}}

    Args:
        latent_dim (int): Size of z (0 for methods without latents).
        num_classes (int): Number of classes to sample targets from.
        num_draws (int): Draws per item. Defaults to 1.
        length (int): Nominal dataset length; an ``InfiniteSampler`` cycles
            through it with a new permutation each epoch. Defaults to 2**20.
        seed (int): Base seed. Defaults to 0.
    """

    def __init__(self,
                 latent_dim: int,
                 num_classes: int,
                 num_draws: int = 1,
                 length: int = 2**20,
                 seed: int = 0,
                 metainfo: Optional[dict] = None) -> None:
        if latent_dim < 0 or num_classes < 1 or num_draws < 1 or length < 1:
            raise ValueError(
                'LatentNoiseDataset needs latent_dim >= 0, num_classes >= 1, '
                f'num_draws >= 1 and length >= 1; got latent_dim={latent_dim}'
                f', num_classes={num_classes}, num_draws={num_draws}, '
                f'length={length}')
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.num_draws = num_draws
        self.length = length
        self.seed = seed
        self.metainfo = dict(metainfo or {})

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f'index {index} out of range [0, {self.length})')
        # numpy's SeedSequence mixes (seed, index) into independent streams;
        # torch's CPU generator keeps only 32 bits of its seed, so packing
        # both into one torch seed would alias different seeds
        rng = np.random.default_rng([self.seed, index])
        latents = torch.from_numpy(
            rng.standard_normal((self.num_draws, self.latent_dim),
                                dtype=np.float32))
        targets = torch.from_numpy(
            rng.integers(self.num_classes, size=self.num_draws))
        return dict(latents=latents, targets=targets)
