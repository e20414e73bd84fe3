"""AdaDFKD: CuDFKD plus adaptive inter-sample relations."""
import torch

from mmdfkd.registry import MODELS, TASK_UTILS

from ..losses.self_paced_info_nce_distillation_loss import (
    SelfPacedInfoNCEDistillationLoss,
)
from .cudfkd import CuDFKDDistillation
from .data_free_distillation import SyntheticBatch


@MODELS.register_module()
class AdaDFKDDistillation(CuDFKDDistillation):
    """AdaDFKD (Li et al., "Exploring Adaptive Inter-Sample Relationship in
    Data-Free Knowledge Distillation", Neural Networks 2024, doi
    10.1016/j.neunet.2024.106386): CuDFKD's persistent generator and
    self-paced student (:class:`CuDFKDDistillation`) with two relation
    terms on the penultimate features f_t, f_s. Per iteration (one of the
    reference's 40 rounds per epoch)::

        1 generator step: fresh z, x = norm(G(z)), teacher and student
            (eval mode, frozen) score x; minimise
            L_G = -20 H(mean_i softmax(t_i / T)) + CE(t, argmax t) + L_BN
                  - adv * 9 * mean_i m_i KL(p_t^3 || p_s^3)
                  + hard * L_R2M(f_t, f_s; queue, h(epoch))
            then enqueue the normalised student keys
        10 student steps: fresh z, G in eval mode; minimise
            L_S = mean_i v(l_i; lambda_t) * l_i,
            l_i = KD(s_i, t_i) + s_nce * InfoNCE_i(f_t, f_s)

    L_R2M is :class:`RelationRefinementLoss` (the relationship refinement
    module: a MoCo queue of past student features whose sorted negatives are
    kept in a window that slides from the easiest toward the hardest), the
    student's term :class:`SelfPacedInfoNCEDistillationLoss`. The losses and
    weights live in the config (``configs/_base_/algorithms/adadfkd.py``);
    this class adds to CuDFKD only the curriculum of the window:

    ``negative_window_schedules`` maps a loss of ``generator_distiller``
    that has a ``window_start`` (h) to a schedule (a ``TASK_UTILS``
    callable of the iteration, e.g. :class:`LinearWeightCurriculum`);
    before each generator phase h becomes the schedule's value. The
    reference's h(epoch) = clip((1 - length)(epoch - bE) / ((e - b)E), 0,
    1 - length) is ``LinearWeightCurriculum(start=0, slope=(1 - length) /
    int((e - b)E), begin=int(bE), end=int(bE) + int((e - b)E),
    iters_per_epoch=40)`` (the code truncates both products to integers).
    Logged: ``generator.<loss>_window_start`` (h) and, for the student's
    :class:`SelfPacedInfoNCEDistillationLoss`, ``student.<loss>_distance``
    (the KD term) and ``student.<loss>_info_nce`` (batch means, unweighted)
    besides CuDFKD's lambda and mean self-paced weight.

    Args:
        negative_window_schedules (dict, optional): Generator-distiller
            loss name -> schedule config. Defaults to None (h stays 0).
        **kwargs: :class:`CuDFKDDistillation` arguments.
    """

    def __init__(self,
                 negative_window_schedules: dict | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        losses = self.generator_distiller.distill_losses
        schedules = dict(negative_window_schedules or {})
        unknown = set(schedules) - set(losses)
        if unknown:
            raise KeyError(
                f'negative_window_schedules names {sorted(unknown)}, which '
                'are not losses of generator_distiller: '
                f'{sorted(losses)}')
        for name in schedules:
            if not hasattr(losses[name], 'window_start'):
                raise TypeError(f'generator loss {name!r} has no '
                                'window_start to schedule (expected a '
                                'RelationRefinementLoss)')
        self.negative_window_schedules = {
            name: TASK_UTILS.build(cfg)
            for name, cfg in schedules.items()
        }

    def apply_negative_window_schedules(self) -> dict[str, float]:
        """Set the window start h of every scheduled generator loss for the
        current iteration; return them."""
        losses = self.generator_distiller.distill_losses
        starts = {}
        for name, schedule in self.negative_window_schedules.items():
            starts[name] = float(schedule(int(self.train_iter)))
            losses[name].window_start = starts[name]
        return starts

    def generator_phase(self, optim_wrapper) -> dict[str, torch.Tensor]:
        starts = self.apply_negative_window_schedules()
        log_vars = super().generator_phase(optim_wrapper)
        device = self.train_iter.device
        for name, start in starts.items():
            log_vars[f'generator.{name}_window_start'] = torch.tensor(
                start, device=device)
        return log_vars

    def student_step(self, batch: SyntheticBatch,
                     optim_wrapper) -> dict[str, torch.Tensor]:
        log_vars = super().student_step(batch, optim_wrapper)
        for name, loss in self.distiller.distill_losses.items():
            if isinstance(loss, SelfPacedInfoNCEDistillationLoss):
                log_vars[f'student.{name}_distance'] = loss.last_kd
                log_vars[f'student.{name}_info_nce'] = loss.last_info_nce
        return log_vars
