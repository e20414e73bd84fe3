import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class NoisyLinear(nn.Module):
    """The "K-to-1 noisy layer" of NAYER (Tran et al., "NAYER: Noisy Layer
    Data Generation for Efficient and Effective Data-free Knowledge
    Distillation", CVPR 2024).

    NAYER feeds its generator a *constant* input (label-text embeddings)
    and puts the randomness into layers instead of into a latent code: K
    linear layers whose weights are re-drawn from N(0, 1), with zero bias,
    before every synthesised batch (:meth:`redraw`), then trained with the
    rest of the generator during that batch's steps. The batch is cut into
    consecutive chunks of ``chunk_size`` samples (NAYER: the number of
    classes, with targets laid out as repeated blocks 0..C-1, so that one
    layer serves one sample of every class) and chunk k goes through layer
    k::

        y[k*c : (k+1)*c] = x[k*c : (k+1)*c] @ W_k^T + b_k,
        W_k ~ N(0, 1), b_k = 0 at every redraw

    Args:
        in_features (int): Input size (embedding size).
        out_features (int): Output size (NAYER: 1000).
        num_layers (int): K. Defaults to 1.
        chunk_size (int, optional): Samples per layer; required when
            ``num_layers > 1``. None: the whole batch uses layer 0.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 num_layers: int = 1,
                 chunk_size: Optional[int] = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        if num_layers > 1 and (chunk_size is None or chunk_size < 1):
            raise ValueError('NoisyLinear with several layers needs a '
                             f'positive chunk_size, got {chunk_size}')
        self.in_features = in_features
        self.out_features = out_features
        self.num_layers = num_layers
        self.chunk_size = chunk_size
        self.weight = nn.Parameter(
            torch.empty(num_layers, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(num_layers, out_features))
        self.redraw()

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, out_features='
                f'{self.out_features}, num_layers={self.num_layers}, '
                f'chunk_size={self.chunk_size}')

    @torch.no_grad()
    def redraw(self, generator: Optional[torch.Generator] = None) -> None:
        """Draw new weights from N(0, 1) and zero the biases."""
        self.weight.normal_(0.0, 1.0, generator=generator)
        self.bias.zero_()

    def reset_parameters(self) -> None:
        """Re-initialisation of the generator re-draws the noise too."""
        self.redraw()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.chunk_size is None:
            return F.linear(x, self.weight[0], self.bias[0])
        num_chunks = math.ceil(len(x) / self.chunk_size)
        if num_chunks > self.num_layers:
            raise ValueError(
                f'a batch of {len(x)} needs {num_chunks} noisy layers of '
                f'{self.chunk_size} samples each, but there are '
                f'{self.num_layers}; build the generator for this batch size')
        # unbind: one backward op stacks the K layers' gradients, where
        # indexing weight[k] added a zero-padded (K, out, in) gradient per
        # layer (same numbers, 6x faster on NAYER's 20 x 1000 x 384)
        weights, biases = self.weight.unbind(0), self.bias.unbind(0)
        return torch.cat([
            F.linear(chunk, weights[k], biases[k])
            for k, chunk in enumerate(torch.split(x, self.chunk_size))
        ])
