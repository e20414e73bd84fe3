"""A bounded, checkpointed ring buffer of instance features (CMI's bank of
negatives)."""
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_dist_info
from torch import nn

from mmdfkd.registry import MODELS

_DTYPES = {'float32': torch.float32, 'float16': torch.float16}


@MODELS.register_module()
class InstanceFeatureBank(nn.Module):
    """A ring buffer of feature vectors of past synthetic instances, from
    which contrastive losses draw their negatives (CMI, Fang et al., IJCAI
    2021: the raw [local || global] teacher features of past best batches).

    The newest entries overwrite the oldest once ``capacity`` rows are
    stored; a batch of any size can be added (the reference asserts
    ``capacity % batch == 0`` and returns an empty sample when exactly
    ``capacity`` entries were added). :meth:`sample` draws ``k`` distinct
    stored rows uniformly (fewer if fewer are stored).

    The rows and counters are buffers: they live on the training device
    (the reference keeps the bank on the CPU and copies 4096 rows to the GPU
    at every synthesis step) and travel with the model's ``state_dict``, so
    ``--resume`` restores the bank. Samples come from the bank's own random
    stream (numpy PCG64 seeded with ``(seed, rank, number of samples so
    far)``), so a resumed run draws what the uninterrupted one would have.
    Under DDP every rank keeps its own bank; a checkpoint holds rank 0's.

    Args:
        capacity (int): Maximum number of rows. Defaults to 40960 (CMI).
        feature_dim (int): Length of a row.
        dtype (str): ``'float32'`` or ``'float16'`` storage; samples are
            float32. Defaults to 'float32'.
        seed (int): Seed of the sampling stream. Defaults to 0.
    """

    def __init__(self,
                 feature_dim: int,
                 capacity: int = 40960,
                 dtype: str = 'float32',
                 seed: int = 0) -> None:
        super().__init__()
        if capacity <= 0 or feature_dim <= 0:
            raise ValueError('capacity and feature_dim must be positive, got '
                             f'{capacity} and {feature_dim}')
        if dtype not in _DTYPES:
            raise ValueError(
                f'dtype must be one of {sorted(_DTYPES)}, got {dtype!r}')
        self.capacity = capacity
        self.feature_dim = feature_dim
        self.dtype = dtype
        self.seed = seed
        self.rank = get_dist_info()[0]
        self.register_buffer(
            'features', torch.zeros(capacity, feature_dim,
                                    dtype=_DTYPES[dtype]))
        for name in ('num_stored', 'write_pos', 'num_added', 'num_samples'):
            self.register_buffer(name, torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return (f'capacity={self.capacity}, feature_dim={self.feature_dim}, '
                f'dtype={self.dtype!r}')

    def __len__(self) -> int:
        return int(self.num_stored)

    @torch.no_grad()
    def add(self, features: torch.Tensor) -> None:
        """Append rows (N, feature_dim); with N > capacity only the last
        ``capacity`` rows are kept."""
        if features.dim() != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(
                f'the feature bank stores rows of {self.feature_dim} values, '
                f'got a batch of shape {tuple(features.shape)}')
        n = len(features)
        if n == 0:
            return
        kept = features.detach()[-self.capacity:]
        start = (int(self.write_pos) + n - len(kept)) % self.capacity
        slots = (start + torch.arange(len(kept))) % self.capacity
        self.features[slots.to(self.features.device)] = kept.to(
            self.features.device, self.features.dtype)
        self.write_pos.fill_((int(self.write_pos) + n) % self.capacity)
        self.num_stored.fill_(min(int(self.num_stored) + n, self.capacity))
        self.num_added.add_(n)

    def sample(self, k: int) -> torch.Tensor:
        """``min(k, len(self))`` distinct stored rows, uniformly at random,
        as float32 on the bank's device ((0, feature_dim) while empty)."""
        if k < 0:
            raise ValueError(f'k must be non-negative, got {k}')
        stored = len(self)
        k = min(k, stored)
        if k == 0:
            return self.features.new_zeros((0, self.feature_dim),
                                           dtype=torch.float32)
        rng = np.random.default_rng(
            [self.seed, self.rank, int(self.num_samples)])
        self.num_samples.add_(1)
        index = rng.choice(stored, size=k, replace=False)
        index = torch.from_numpy(index).to(self.features.device)
        return self.features[index].float()

    def get_extra_state(self) -> dict:
        return dict(capacity=self.capacity, feature_dim=self.feature_dim,
                    dtype=self.dtype, seed=self.seed)

    def set_extra_state(self, state: Optional[dict]) -> None:
        expected = dict(capacity=self.capacity, feature_dim=self.feature_dim,
                        dtype=self.dtype)
        found = {k: (state or {}).get(k) for k in expected}
        if found != expected:
            raise RuntimeError(
                f'the checkpoint holds an instance feature bank with {found}, '
                f'but this one is configured with {expected} (the feature '
                'dimension follows the teacher and its feature layers)')
        self.seed = int(state['seed'])
