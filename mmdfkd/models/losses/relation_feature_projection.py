"""A fixed semi-orthogonal map between student and teacher feature spaces,
for AdaDFKD's relation terms."""
import torch
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class RelationFeatureProjection(nn.Module):
    """Map student features (N, d_s) into the teacher's feature space (N,
    d_t) with a fixed, seeded semi-orthogonal matrix W (d_t x d_s)::

        P(x) = x W^T,   W^T W = I  if d_s <= d_t   (an isometry),
                        W W^T = I  if d_s >  d_t   (an orthogonal projection)

    and the identity when d_s = d_t. The relation terms of AdaDFKD (Li et
    al., Neural Networks 2024) compare a teacher feature with student
    features by cosine similarity and need them in one space when the
    widths differ (e.g. WRN-40-2 -> WRN-40-1: 128 vs 64). The reference code
    creates a *new random* ``nn.Linear`` at every call for this, so the
    similarities change from step to step and the queued keys were
    projected by other maps. Here the map is built once: with d_s <= d_t
    (every pair of the paper) it preserves the student's inner products, so
    cosine similarities among student keys are those of the raw features;
    the student's in-batch InfoNCE term trains the student to align P f_s
    with f_t. It has no parameters (nothing for an optimiser, nothing to
    average across DDP ranks) and is not stored in checkpoints: ``seed``
    and the two widths determine it, on every rank and after a resume.

    W is the Q factor of a QR decomposition of a seeded N(0, 1) matrix
    (computed in float64 on the CPU, columns signed so that diag(R) > 0).

    Args:
        in_dim (int): Student feature width d_s.
        out_dim (int): Teacher feature width d_t.
        seed (int): Seed of W. Defaults to 0.
    """

    def __init__(self, in_dim: int, out_dim: int, seed: int = 0) -> None:
        super().__init__()
        if in_dim <= 0 or out_dim <= 0:
            raise ValueError('feature widths must be positive, got '
                             f'in_dim={in_dim}, out_dim={out_dim}')
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.seed = seed
        if in_dim == out_dim:
            self.register_buffer('weight', None, persistent=False)
            return
        generator = torch.Generator().manual_seed(seed)
        tall = torch.randn(
            max(in_dim, out_dim), min(in_dim, out_dim),
            generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(tall)
        q = q * torch.sign(torch.diagonal(r))
        weight = q if in_dim < out_dim else q.t()  # (out_dim, in_dim)
        self.register_buffer('weight', weight.float(), persistent=False)

    def extra_repr(self) -> str:
        return f'in_dim={self.in_dim}, out_dim={self.out_dim}, ' \
               f'seed={self.seed}'

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() != 2 or features.shape[1] != self.in_dim:
            raise ValueError(
                f'expected student features of shape (N, {self.in_dim}), got '
                f'{tuple(features.shape)}: set the student feature width of '
                'the AdaDFKD loss to the width of its recorded feature')
        if self.weight is None:
            return features
        return features @ self.weight.to(features.dtype).t()
