"""CuDFKD: an easy-to-hard curriculum for the student and the generator."""
import torch

from mmdfkd.registry import MODELS, TASK_UTILS

from ..losses.self_paced_distillation_loss import SelfPacedDistillationLoss
from .data_free_distillation import DataFreeDistillation, SyntheticBatch


@MODELS.register_module()
class CuDFKDDistillation(DataFreeDistillation):
    """CuDFKD (Li et al., "Dynamic Data-Free Knowledge Distillation by
    Easy-to-Hard Learning Strategy", Information Sciences 2023, arXiv
    2208.13648): a persistent generator and a student that both follow an
    easy-to-hard curriculum. Per iteration (one of the reference's 40
    rounds per epoch)::

        generator_iter x (1): fresh z, x = norm(G(z)), teacher and student
            (eval mode, frozen) score x; minimise
            L_G = -20 H(mean_i softmax(t_i / T))        class balance
                  + CE(t, argmax t) + L_BN              one-hot, BN prior
                  - adv(t) * 9 * mean_i m_i KL(p_t^3 || p_s^3)
        student_iter x (10): fresh z, x = norm(G(z)) with G in eval mode;
            minimise the self-paced KD loss
            L_S = mean_i v(l_i; lambda_t) * l_i,  l_i = KD(s_i, t_i)

    with m_i = 1[student and teacher agree on x_i], T the KD temperature,
    v the self-paced weight of :class:`SelfPacedWeight` (lambda grows by
    alpha per student step) and adv(t) the adversarial-weight curriculum
    of :class:`LinearWeightCurriculum`. The losses and weights live in the
    config (``configs/_base_/algorithms/cudfkd.py``); this class only
    applies the loss-weight schedules and logs the curricula.

    ``loss_weight_schedules`` maps a loss of ``generator_distiller`` to a
    schedule (a ``TASK_UTILS`` callable of the iteration); before each
    generator phase the loss's weight becomes its configured
    ``loss_weight`` times the schedule's value, so a weight of -1 with a
    ramp from 0 to 62.5 is the reference's adversarial term. Logged:
    ``generator.weight_<loss>`` (the scheduled factor) and, for each
    :class:`SelfPacedDistillationLoss` of the student, ``student.<loss>_
    lambda`` and ``student.<loss>_weight`` (mean self-paced weight).

    Args:
        loss_weight_schedules (dict, optional): Generator-distiller loss
            name -> schedule config. Defaults to None (fixed weights).
        **kwargs: :class:`DataFreeDistillation` arguments.
    """

    def __init__(self,
                 loss_weight_schedules: dict | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        losses = self.generator_distiller.distill_losses
        schedules = dict(loss_weight_schedules or {})
        unknown = set(schedules) - set(losses)
        if unknown:
            raise KeyError(
                f'loss_weight_schedules names {sorted(unknown)}, which are '
                f'not losses of generator_distiller: {sorted(losses)}')
        for name in schedules:
            if not hasattr(losses[name], 'loss_weight'):
                raise TypeError(f'generator loss {name!r} has no loss_weight '
                                'to schedule')
        self.loss_weight_schedules = {
            name: TASK_UTILS.build(cfg)
            for name, cfg in schedules.items()
        }
        self._base_loss_weights = {
            name: float(losses[name].loss_weight)
            for name in self.loss_weight_schedules
        }

    def apply_loss_weight_schedules(self) -> dict[str, float]:
        """Set every scheduled generator loss weight for the current
        iteration; return the scheduled factors."""
        losses = self.generator_distiller.distill_losses
        factors = {}
        for name, schedule in self.loss_weight_schedules.items():
            factors[name] = float(schedule(int(self.train_iter)))
            losses[name].loss_weight = (
                self._base_loss_weights[name] * factors[name])
        return factors

    def generator_phase(self, optim_wrapper) -> dict[str, torch.Tensor]:
        factors = self.apply_loss_weight_schedules()
        log_vars = super().generator_phase(optim_wrapper)
        device = self.train_iter.device
        for name, factor in factors.items():
            log_vars[f'generator.weight_{name}'] = torch.tensor(
                factor, device=device)
        return log_vars

    def student_step(self, batch: SyntheticBatch,
                     optim_wrapper) -> dict[str, torch.Tensor]:
        log_vars = super().student_step(batch, optim_wrapper)
        device = self.train_iter.device
        for name, loss in self.distiller.distill_losses.items():
            if isinstance(loss, SelfPacedDistillationLoss):
                log_vars[f'student.{name}_lambda'] = torch.tensor(
                    loss.last_lambda, device=device)
                log_vars[f'student.{name}_weight'] = loss.last_weight.to(
                    device)
        return log_vars
