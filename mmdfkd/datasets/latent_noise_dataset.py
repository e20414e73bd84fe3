import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mmdfkd.registry import DATASETS

# Philox4x32-10 (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2,
# 3", SC 2011): multipliers and Weyl key increments of Random123
_PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_PHILOX_ROUNDS = 10
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
# counter word 3 separates the two streams of an item
_LATENT_STREAM, _TARGET_STREAM = 0, 1


def philox4x32(counter: Sequence[np.ndarray],
               key: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Philox4x32-10 on arrays: the four 32-bit output words of every
    counter (c0, c1, c2, c3), the words broadcast against each other and
    held in ``uint64`` arrays (< 2**32), under the 2 x 32-bit ``key``.

    A counter-based generator: output ``i`` is a bijective function of
    counter ``i`` alone, so any set of counters is drawn in one vectorised
    pass and distinct counters never share a stream. Matches Random123's
    known-answer vectors (tests/test_speed_switches.py).
    """
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in counter)
    k0, k1 = key
    for _ in range(_PHILOX_ROUNDS):
        p0 = c0 * _PHILOX_M[0]  # 32 x 32 -> 64-bit products, exact
        p1 = c2 * _PHILOX_M[1]
        # the low halves p0, p1 pass on unmasked: their high bits are
        # cleared by the mask after the next round's xor (saves two ops)
        c0 = (p1 >> _SHIFT32) ^ c1
        c0 ^= np.uint64(k0)
        c0 &= _LOW32
        c2 = (p0 >> _SHIFT32) ^ c3
        c2 ^= np.uint64(k1)
        c2 &= _LOW32
        c1, c3 = p1, p0
        k0 = (k0 + _PHILOX_W[0]) & 0xFFFFFFFF
        k1 = (k1 + _PHILOX_W[1]) & 0xFFFFFFFF
    return tuple(np.broadcast_arrays(c0, c1 & _LOW32, c2, c3 & _LOW32))


def _item_words(index: np.ndarray, draws: int, stream: int, blocks: int,
                key: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """The four Philox words, each ``(len(index), draws, blocks)``, of the
    counters ``(block, index low, index high, 2 * draw + stream)``."""
    index = index[:, None, None]
    draw = np.arange(draws, dtype=np.uint64)[None, :, None]
    block = np.arange(blocks, dtype=np.uint64)[None, None, :]
    return philox4x32((block, index & _LOW32, index >> _SHIFT32,
                       draw * np.uint64(2) + np.uint64(stream)), key)


def _uniform24(words: np.ndarray) -> np.ndarray:
    """float32 ``k / 2**24`` from the top 24 bits k of 32-bit words (exact
    in float32)."""
    uniform = (words >> np.uint64(8)).astype(np.float32)
    uniform *= np.float32(2**-24)
    return uniform


def _box_muller(w0: np.ndarray, w1: np.ndarray, w2: np.ndarray,
                w3: np.ndarray) -> np.ndarray:
    """Standard normals from words of the same shape S: radii
    ``sqrt(-2 ln u)`` of w0, w1 with u in (0, 1] (so |z| <= 5.77), angles
    ``2 pi u`` of w2, w3; returns ``S[:-1] + (4 * S[-1], )``."""
    normal = np.empty(w0.shape[:-1] + (4, w0.shape[-1]), np.float32)
    for k, (radius_words, angle_words) in enumerate(((w0, w2), (w1, w3))):
        radius = _uniform24(radius_words)
        radius += np.float32(2**-24)
        np.log(radius, out=radius)
        radius *= np.float32(-2)
        np.sqrt(radius, out=radius)
        angle = _uniform24(angle_words)
        angle *= np.float32(2 * math.pi)
        np.multiply(radius, np.cos(angle), out=normal[..., 2 * k, :])
        np.multiply(radius, np.sin(angle), out=normal[..., 2 * k + 1, :])
    return normal.reshape(*w0.shape[:-1], -1)


@DATASETS.register_module()
class LatentNoiseDataset(Dataset):
    """The "training set" of a data-free run: latent noise and target labels,
    generated on the fly; no image is ever read.

    Item ``i`` is a function of ``(seed, i)`` only, so it is the same in
    every process and every run: DDP ranks (which the sampler gives
    different indices) draw different noise, a resumed run draws exactly
    the noise it would have drawn, and a batch of one process with the
    indices of two ranks' batches holds exactly their items. Each item
    holds ``num_draws`` independent draws, one per generator or student
    step of an iteration::

        {'latents': Tensor(num_draws, latent_dim) ~ N(0, I),
         'targets': LongTensor(num_draws) ~ U{0..num_classes-1}}

    The draws come from the counter-based generator Philox4x32-10 (Salmon
    et al., SC 2011) keyed by ``seed``, with counter ``(block, i, 2 * draw
    + stream)`` (stream 0: latents, 1: targets): a whole batch is drawn in one vectorised pass (``__getitems__``, which
    the DataLoader calls with a batch's indices) instead of one generator
    per item. Latents are Box-Muller normals from 24-bit uniforms (|z| <=
    5.77); targets are ``floor(w * num_classes / 2**32)`` of 32-bit words
    (bias < num_classes / 2**32). Draw ``d`` of an item does not depend on
    ``num_draws``. (Earlier versions drew each item with numpy's
    ``default_rng([seed, i])``: the same distributions, other numbers; see
    docs/benchmark.md.)

    Args:
        latent_dim (int): Size of z (0 for methods without latents).
        num_classes (int): Number of classes to sample targets from.
        num_draws (int): Draws per item. Defaults to 1.
        length (int): Nominal dataset length; an ``InfiniteSampler`` cycles
            through it with a new permutation each epoch. Defaults to 2**20.
        seed (int): Base seed, 0 <= seed < 2**64. Defaults to 0.
    """

    def __init__(self,
                 latent_dim: int,
                 num_classes: int,
                 num_draws: int = 1,
                 length: int = 2**20,
                 seed: int = 0,
                 metainfo: dict | None = None) -> None:
        if latent_dim < 0 or num_classes < 1 or num_draws < 1 or length < 1:
            raise ValueError(
                'LatentNoiseDataset needs latent_dim >= 0, num_classes >= 1, '
                f'num_draws >= 1 and length >= 1; got latent_dim={latent_dim}'
                f', num_classes={num_classes}, num_draws={num_draws}, '
                f'length={length}')
        if not 0 <= seed < 2**64:
            raise ValueError('LatentNoiseDataset needs 0 <= seed < 2**64 '
                             f'(the Philox key); got seed={seed}')
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.num_draws = num_draws
        self.length = length
        self.seed = seed
        self.metainfo = dict(metainfo or {})

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        """The items of ``indices``, drawn together (the DataLoader's batched
        fetch; its ``collate_fn`` then stacks them)."""
        index = np.array([int(i) for i in indices], dtype=np.int64)
        outside = (index < 0) | (index >= self.length)
        if outside.any():
            raise IndexError(f'index {index[outside][0]} out of range '
                             f'[0, {self.length})')
        index = index.astype(np.uint64)
        key = (self.seed & 0xFFFFFFFF, self.seed >> 32)
        blocks = -(-self.latent_dim // 4)
        latents = _box_muller(*_item_words(index, self.num_draws,
                                           _LATENT_STREAM, blocks, key))
        words = _item_words(index, self.num_draws, _TARGET_STREAM, 1, key)[0]
        targets = (words[..., 0] * np.uint64(self.num_classes)) >> _SHIFT32
        return [{
            'latents': z,
            'targets': y
        } for z, y in zip(
            torch.from_numpy(latents[..., :self.latent_dim]).unbind(0),
            torch.from_numpy(targets.astype(np.int64)).unbind(0),
            strict=True)]
