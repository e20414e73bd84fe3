from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmdfkd.registry import MODELS


@MODELS.register_module()
class BNStatisticsLoss(nn.Module):
    """Feature-distribution regulariser of DeepInversion (Yin et al., CVPR
    2020, Eq. 4): the batch statistics of every teacher BatchNorm input
    should match the statistics the teacher stored from its training data::

        L = w * sum_l ( ||mu_l - running_mean_l||_2
                      + ||sigma^2_l - running_var_l||_2 )

    with plain (not squared) L2 norms, as in the DeepInversion, CMI and Fast
    references. Fed by :class:`BNStatisticsRecorder`.

    ``momentum=None`` (default): mu_l, sigma^2_l are the statistics of the
    current batch x (DeepInversion, CMI).

    ``momentum=m`` (Fast, Fang et al., AAAI 2022; NAYER, Tran et al., CVPR
    2024; m = 0.9): the statistics are those of a running average over the
    synthesised batches, so that the *pool* of synthetic images, not each
    batch alone, matches the teacher::

        mu_l      = (1 - m) * mu_l(x)      + m * mu_bar_l        (detached)
        sigma^2_l = (1 - m) * sigma^2_l(x) + m * sigma^2_bar_l   (detached)

    where the gradient flows through the current-batch term only. Until a
    history exists, mu_l = mu_l(x). After each synthesised batch the
    algorithm calls :meth:`update_history`, which folds the statistics of
    the last forward pass into the history (first call: copies them)::

        mu_bar_l <- m * mu_bar_l + (1 - m) * mu_l(x_last)

    and likewise for the variance. This is the reference code's
    ``DeepInversionHook`` with ``bn_mmt``: the loss blends the history as
    it *would be* with the current batch folded in, and the fold-in uses the
    same weights, so the two are consistent. Note that the variance is
    blended linearly: the history is the running mean of per-batch
    variances, which is smaller than the variance of the pooled images by
    the spread of the batch means; we keep the reference's (and the
    papers') definition. The history is kept in buffers (per BN layer, in
    module order), so it is saved in checkpoints; :meth:`reset_history`
    clears it.

    Args:
        loss_weight (float): Weight w. Defaults to 1.
        momentum (float, optional): m in [0, 1), or None for the plain
            per-batch loss. Defaults to None.
    """

    # the history buffers are registered on first use (their shapes are the
    # teacher's BN widths): checkpoint checks accept them on a fresh model
    lazy_state_prefixes = ('history_', )

    def __init__(self,
                 loss_weight: float = 1.0,
                 momentum: Optional[float] = None) -> None:
        super().__init__()
        if momentum is not None and not 0.0 <= momentum < 1.0:
            raise ValueError(f'momentum must be in [0, 1) or None, got '
                             f'{momentum}')
        self.loss_weight = loss_weight
        self.momentum = momentum
        self._last_batch_stats: Optional[List[Tuple[torch.Tensor,
                                                    torch.Tensor]]] = None
        if momentum is not None:
            self.register_buffer('num_history_updates',
                                 torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------ history
    @property
    def num_history_layers(self) -> int:
        return sum(1 for name in self._buffers
                   if name.startswith('history_mean_'))

    def history(self) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """The (mean, variance) history of every BN layer; empty before the
        first :meth:`update_history`."""
        return [(self._buffers[f'history_mean_{i}'],
                 self._buffers[f'history_var_{i}'])
                for i in range(self.num_history_layers)]

    @torch.no_grad()
    def update_history(self) -> None:
        """Fold the batch statistics of the last forward pass into the
        history (call once per synthesised batch). Does nothing without
        momentum or if the loss has not run since the last update."""
        if self.momentum is None or self._last_batch_stats is None:
            return
        history = self.history()
        m = self.momentum
        for i, (mean, var) in enumerate(self._last_batch_stats):
            if not history:
                self.register_buffer(f'history_mean_{i}', mean.clone())
                self.register_buffer(f'history_var_{i}', var.clone())
            else:
                history[i][0].mul_(m).add_(mean, alpha=1 - m)
                history[i][1].mul_(m).add_(var, alpha=1 - m)
        self.num_history_updates.add_(1)
        # the same batch must not be folded in twice
        self._last_batch_stats = None

    def reset_history(self) -> None:
        """Forget the running averages (back to the per-batch loss until
        the next :meth:`update_history`)."""
        for name in [n for n in self._buffers if n.startswith('history_')]:
            del self._buffers[name]
        if self.momentum is not None:
            self.num_history_updates.zero_()
        self._last_batch_stats = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the history buffers are created lazily: create the ones the
        # checkpoint holds (and drop ours if it holds none) before loading
        self.reset_history()
        for key, value in state_dict.items():
            name = key[len(prefix):]
            if key.startswith(prefix) and name.startswith('history_'):
                self.register_buffer(name, torch.empty_like(value))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------ forward
    def forward(self, bn_stats: Sequence) -> torch.Tensor:
        if not bn_stats:
            raise ValueError('BNStatisticsLoss got no BatchNorm statistics; '
                             'did the teacher run inside the recorder?')
        means = [s.batch_mean for s in bn_stats]
        variances = [s.batch_var for s in bn_stats]
        if self.momentum is not None:
            self._last_batch_stats = [(mean.detach().float(),
                                       var.detach().float())
                                      for mean, var in zip(
                                          means, variances, strict=True)]
            history = self.history()
            if history:
                if len(history) != len(bn_stats):
                    raise ValueError(
                        f'BNStatisticsLoss holds a history of {len(history)} '
                        f'BN layers but got statistics of {len(bn_stats)}; '
                        'one loss instance must watch one fixed set of '
                        'layers')
                m = self.momentum
                means = [(1 - m) * mean + m * hist_mean
                         for mean, (hist_mean, _) in zip(
                             means, history, strict=True)]
                variances = [(1 - m) * var + m * hist_var
                             for var, (_, hist_var) in zip(
                                 variances, history, strict=True)]
        loss = sum(
            torch.linalg.vector_norm(mean - s.running_mean) +
            torch.linalg.vector_norm(var - s.running_var)
            for mean, var, s in zip(means, variances, bn_stats, strict=True))
        return self.loss_weight * loss
