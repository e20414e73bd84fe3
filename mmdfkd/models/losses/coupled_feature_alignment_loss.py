from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class CoupledFeatureAlignmentLoss(nn.Module):
    """Feature-distribution alignment of CPNet (Chen et al., "Coupling the
    Generator with Teacher for Effective Data-Free Knowledge Distillation",
    ICCV 2025; ``loss_xn`` of its code): every block input h_i of the
    :class:`CoupledGenerator` should look like the teacher's input x_i at the
    BN layer it mirrors, *re-normalised* to the statistics that BN layer
    stored from the real training data::

        phi_i = (x_i - mu_i) / sqrt(sigma^2_i + eps)
                * sqrt(running_var_i) + running_mean_i      (per channel)
        L     = w * sum_i MSE(h_i, phi_i)     (mean over all elements)

    phi_i is a target: no gradient flows through it (the generator learns
    from h_i, as the teacher's features only say where h_i should go). The
    batch statistics mu_i, sigma^2_i are those of x_i (mean and *unbiased*
    variance over N, H, W), blended, as the reference does, with the
    running averages of the momentum BN-statistics loss (Fast/NAYER,
    :class:`BNStatisticsLoss`, m = 0.9) once they exist::

        mu_i      = (1 - m) * mean(x_i)       + m * mu_bar_i
        sigma^2_i = (1 - m) * var_unb(x_i)    + m * var_bar_i

    where mu_bar, var_bar are running averages of the batch mean and the
    *biased* batch variance, folded in by :meth:`update_history` once per
    synthesised batch with the statistics of the last forward pass
    (mu_bar <- m * mu_bar + (1 - m) * mean(x_last); first call: copies).
    In the reference both losses share one hook and hence one history; this
    loss keeps an identical copy. ``momentum=None``: batch statistics only.

    Args:
        num_channels (Sequence[int]): Channels of the mirrored BN layers, in
            the order of the features (sizes the history buffers).
        momentum (float, optional): m in [0, 1), or None. Defaults to 0.9.
        eps (float): Added to the variance before the square root. The
            reference adds none (``eps=0`` restores it); a constant channel
            would then give NaN. Defaults to 1e-5.
        loss_weight (float): Weight w (the reference's weight is 1, not a
            hyper-parameter). Defaults to 1.
    """

    def __init__(self,
                 num_channels: Sequence[int],
                 momentum: float | None = 0.9,
                 eps: float = 1e-5,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if momentum is not None and not 0.0 <= momentum < 1.0:
            raise ValueError(f'momentum must be in [0, 1) or None, got '
                             f'{momentum}')
        if not num_channels:
            raise ValueError('CoupledFeatureAlignmentLoss needs the channels '
                             'of at least one BN node')
        self.num_channels = tuple(int(c) for c in num_channels)
        self.momentum = momentum
        self.eps = eps
        self.loss_weight = loss_weight
        for i, c in enumerate(self.num_channels):
            self.register_buffer(f'history_mean_{i}', torch.zeros(c))
            self.register_buffer(f'history_var_{i}', torch.zeros(c))
        # 0: no history yet (batch statistics only)
        self.register_buffer('num_history_updates',
                             torch.zeros((), dtype=torch.long))
        self._last_batch_stats: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    # ------------------------------------------------------------ history
    def history(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(mean, biased variance) running averages per node; empty before
        the first :meth:`update_history`."""
        if int(self.num_history_updates) == 0:
            return []
        return [(self._buffers[f'history_mean_{i}'],
                 self._buffers[f'history_var_{i}'])
                for i in range(len(self.num_channels))]

    @torch.no_grad()
    def update_history(self) -> None:
        """Fold the batch statistics of the last forward pass into the
        running averages (once per synthesised batch). Does nothing without
        momentum or if the loss has not run since the last update."""
        if self.momentum is None or self._last_batch_stats is None:
            return
        first, m = int(self.num_history_updates) == 0, self.momentum
        for i, (mean, var) in enumerate(self._last_batch_stats):
            hist_mean = self._buffers[f'history_mean_{i}']
            hist_var = self._buffers[f'history_var_{i}']
            if first:
                hist_mean.copy_(mean)
                hist_var.copy_(var)
            else:
                hist_mean.mul_(m).add_(mean, alpha=1 - m)
                hist_var.mul_(m).add_(var, alpha=1 - m)
        self.num_history_updates.add_(1)
        self._last_batch_stats = None

    def reset_history(self) -> None:
        """Forget the running averages."""
        for name, buffer in self._buffers.items():
            if name.startswith('history_'):
                buffer.zero_()
        self.num_history_updates.zero_()
        self._last_batch_stats = None

    # ------------------------------------------------------------ forward
    @torch.no_grad()
    def renormalized_targets(
            self, teacher_features: Sequence[torch.Tensor],
            running_means: Sequence[torch.Tensor],
            running_vars: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """phi_i for every node (and the batch statistics for the next
        :meth:`update_history`)."""
        history = self.history() if self.momentum is not None else []
        targets, batch_stats = [], []
        for i, (x, r_mean, r_var) in enumerate(
                zip(teacher_features, running_means, running_vars,
                    strict=True)):
            x = x.detach().float()
            count = x.numel() // x.shape[1]
            var_biased, mean = torch.var_mean(x, dim=(0, 2, 3),
                                              correction=0)
            var = var_biased * count / max(count - 1, 1)  # unbiased
            batch_stats.append((mean, var_biased))
            if history:
                m = self.momentum
                mean = (1 - m) * mean + m * history[i][0]
                var = (1 - m) * var + m * history[i][1]
            scale = torch.sqrt(r_var.float()) / torch.sqrt(var + self.eps)
            targets.append((x - mean[:, None, None]) * scale[:, None, None]
                           + r_mean.float()[:, None, None])
        if self.momentum is not None:
            self._last_batch_stats = batch_stats
        return targets

    def forward(self, generator_features: Sequence[torch.Tensor],
                teacher_features: Sequence[torch.Tensor],
                running_means: Sequence[torch.Tensor],
                running_vars: Sequence[torch.Tensor]) -> torch.Tensor:
        """
        Args:
            generator_features: h_i, (N, C_i, H_i, W_i) each, in node order.
            teacher_features: x_i, the teacher's BN inputs at the nodes.
            running_means / running_vars: those BN layers' statistics.
        """
        n = len(self.num_channels)
        if not (len(generator_features) == len(teacher_features) == n):
            raise ValueError(
                f'CoupledFeatureAlignmentLoss is built for {n} nodes, got '
                f'{len(generator_features)} generator and '
                f'{len(teacher_features)} teacher features')
        for i, (h, x, c) in enumerate(zip(generator_features,
                                          teacher_features,
                                          self.num_channels, strict=True)):
            if h.shape != x.shape or x.dim() != 4 or x.shape[1] != c:
                raise ValueError(
                    f'node {i}: generator feature {tuple(h.shape)} and '
                    f'teacher BN input {tuple(x.shape)} must have the same '
                    f'(N, {c}, H, W) shape; was the generator built for '
                    'this teacher and image size?')
        targets = self.renormalized_targets(teacher_features, running_means,
                                            running_vars)
        loss = sum(
            F.mse_loss(h, phi.to(h.dtype))
            for h, phi in zip(generator_features, targets, strict=True))
        return self.loss_weight * loss
