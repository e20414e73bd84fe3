"""AdaDFKD's relationship-refinement (R2M) generator term."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS

from ..memory.feature_queue import FeatureQueue
from .relation_feature_projection import RelationFeatureProjection


@MODELS.register_module()
class RelationRefinementLoss(nn.Module):
    """The relationship refinement module (R2M) of AdaDFKD (Li et al.,
    "Exploring Adaptive Inter-Sample Relationship in Data-Free Knowledge
    Distillation", Neural Networks 2024, doi 10.1016/j.neunet.2024.106386):
    a contrastive term of the generator whose negatives move from easy to
    hard over training, so that the synthetic samples' relations grow
    progressively harder to discriminate.

    For a synthetic batch with teacher features f_t (the query, with
    gradient through the frozen teacher into the generator) and student
    features f_s (the positive key, detached), and a queue of K keys
    n_1..n_K of past batches (:class:`FeatureQueue`)::

        q_i = f_t,i / ||f_t,i||,    k_i = P f_s,i / ||P f_s,i||
        s_i(1) <= ... <= s_i(K)     the similarities q_i . n_j, sorted
        a = floor(h K),  b = floor((h + length) K)
        L = w * 1/N sum_i -log( exp(q_i . k_i / tau) /
              (exp(q_i . k_i / tau) + sum_{a < r <= b} exp(s_i(r) / tau)) )

    after which the keys k_i are enqueued (training mode only). The window
    of kept negatives covers the fraction ``window_length`` of the queue
    and starts at h = ``window_start``: h = 0 keeps the least similar
    (easiest) negatives, h = 1 - length drops the easiest 1 - length and
    keeps the hardest. The algorithm sets h every iteration from the
    reference's curriculum (``AdaDFKDDistillation.negative_window_schedules``)::

        h(epoch) = clip((1 - length) (epoch - bE) / ((e - b) E), 0, 1 - length)

    P is the fixed :class:`RelationFeatureProjection` from the student's
    width to the teacher's (the identity when they agree). Differences from
    the reference code: the projection is built once instead of as a new
    random ``nn.Linear`` per call; the queue takes batches of any size,
    lives on the training device and in checkpoints.

    Args:
        feature_dim (int): Teacher feature width d_t (the queue's keys).
        student_feature_dim (int, optional): Student feature width d_s;
            defaults to ``feature_dim``.
        queue_size (int): K, the reference's ``N_neg``. Defaults to 4096.
        temperature (float): tau (the reference's ``--tau``). Defaults to
            0.07.
        window_length (float): Fraction of the queue kept per query, in
            (0, 1] (the reference's ``--length``). Defaults to 1.
        loss_weight (float): w (the reference's ``--hard``). Defaults to 1.
        projection_seed (int): Seed of P. Defaults to 0.
        queue_seed (int): Seed of the queue's initial random keys.
            Defaults to 0.
    """

    def __init__(self,
                 feature_dim: int,
                 student_feature_dim: int | None = None,
                 queue_size: int = 4096,
                 temperature: float = 0.07,
                 window_length: float = 1.0,
                 loss_weight: float = 1.0,
                 projection_seed: int = 0,
                 queue_seed: int = 0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be positive, got '
                             f'{temperature}')
        if not 0 < window_length <= 1:
            raise ValueError('window_length must be in (0, 1], got '
                             f'{window_length}')
        self.feature_dim = feature_dim
        self.temperature = temperature
        self.window_length = window_length
        self.loss_weight = loss_weight
        self.window_start = 0.0
        self.queue = FeatureQueue(
            feature_dim, capacity=queue_size, seed=queue_seed)
        self.projection = RelationFeatureProjection(
            student_feature_dim or feature_dim, feature_dim,
            seed=projection_seed)

    def extra_repr(self) -> str:
        return (f'temperature={self.temperature}, window_length='
                f'{self.window_length}, loss_weight={self.loss_weight}')

    def negative_window(self) -> tuple[int, int]:
        """(a, b): the ranks a < r <= b (0-based slice [a, b) of the
        ascending similarities) kept at the current ``window_start``."""
        size = self.queue.capacity
        # a small tolerance: (h + length) K is an integer in exact
        # arithmetic when the window reaches the end of the queue
        start = math.floor(self.window_start * size + 1e-6)
        end = math.floor(
            (self.window_start + self.window_length) * size + 1e-6)
        start = min(max(start, 0), size)
        return start, min(max(end, start), size)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """
        Args:
            query (Tensor): (N, d_t) teacher features of the batch.
            key (Tensor): (N, d_s) student features of the same batch
                (detached here).
        """
        if query.dim() != 2 or query.shape[1] != self.feature_dim:
            raise ValueError(
                f'RelationRefinementLoss expects (N, {self.feature_dim}) '
                f'teacher features, got {tuple(query.shape)}: set '
                'feature_dim to the width of the recorded teacher feature')
        if len(key) != len(query):
            raise ValueError(f'{len(query)} queries but {len(key)} keys')
        query = F.normalize(query, dim=1)
        with torch.no_grad():
            key = F.normalize(self.projection(key.detach().float()), dim=1)
        positive = (query * key.to(query.dtype)).sum(dim=1, keepdim=True)
        negatives = query @ self.queue.keys().to(query.dtype).t()
        start, end = self.negative_window()
        kept = negatives.sort(dim=1).values[:, start:end]
        logits = torch.cat([positive, kept], dim=1) / self.temperature
        labels = torch.zeros(len(logits), dtype=torch.long,
                             device=logits.device)
        loss = F.cross_entropy(logits.float(), labels)
        if self.training:
            self.queue.enqueue(key)
        return self.loss_weight * loss
