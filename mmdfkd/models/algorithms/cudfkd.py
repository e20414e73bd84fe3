"""CuDFKD: an easy-to-hard curriculum for the student and the generator."""
import torch

from mmdfkd.registry import MODELS, TASK_UTILS
from ..losses.self_paced_distillation_loss import SelfPacedDistillationLoss
from ..utils import unwrap_model
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

    **Memory mode** (``memory_bank`` set; the code's ``--memory``, which
    its CIFAR-10 WRN-40-2 -> WRN-40-1 and CIFAR-100 ResNet-34 -> ResNet-18
    scripts pass): every round's batch (one generator step per round, so
    it is the round's best) joins a :class:`SyntheticMemoryBank` as [0, 1]
    pixels, and each student step draws its batch from the bank instead of
    the generator, in the train view of the code's loader::

        x = normalise(student_augmentation(bank.sample(B)))

    (crop with 4-pixel padding + flip by default). The code's pool is
    unbounded and sampled uniformly; a ``'reservoir'`` bank keeps a uniform
    sample of every batch ever made within its capacity.

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
        memory_bank (dict, optional): :class:`SyntheticMemoryBank` config
            without ``image_shape`` (memory mode). The generator must
            normalise its own outputs (``output_normalization``), which the
            bank undoes to store pixels. Defaults to None (every student
            step draws a fresh generator batch).
        student_augmentation (dict, optional): Augmentation of the bank's
            [0, 1] images for the student (memory mode). Defaults to
            ``dict(type='SynthesisAugmentation', crop_padding=4,
            flip=True)``, the code's CIFAR train transform.
        student_batch_size (int, optional): Batch size of the student's bank
            samples. Defaults to the latent batch size.
        **kwargs: :class:`DataFreeDistillation` arguments.
    """

    def __init__(self,
                 loss_weight_schedules: dict | None = None,
                 memory_bank: dict | None = None,
                 student_augmentation: dict | None = None,
                 student_batch_size: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.memory_bank = None
        if memory_bank is not None:
            self._build_memory_mode(memory_bank, student_augmentation)
        elif student_augmentation is not None:
            raise ValueError('student_augmentation applies to the memory '
                             'bank\'s images: set memory_bank as well')
        self.student_batch_size = student_batch_size
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

    def _build_memory_mode(self, memory_bank: dict,
                           student_augmentation: dict | None) -> None:
        if self.generator_iter != 1 or self.synthesis_loops != 1:
            raise ValueError(
                'CuDFKD\'s memory mode stores every round\'s batch, which '
                'is its best only with one generator step per round: set '
                'generator_iter=1 and synthesis_loops=1')
        if self.reuse_generator_batch:
            raise ValueError('memory mode trains the student on the bank: '
                             'reuse_generator_batch must be False')
        generator = unwrap_model(self.generator)
        if getattr(generator, 'output_normalization', None) is None:
            raise ValueError(
                'CuDFKD\'s memory mode stores [0, 1] pixels and normalises '
                'them after augmentation, so the generator must normalise '
                'its own outputs: set generator.output_normalization='
                'dict(mean=..., std=...) (the data preprocessor\'s)')
        preprocessor = self.data_preprocessor
        for key in ('mean', 'std'):
            expected = getattr(preprocessor, key, None)
            actual = getattr(generator, f'output_{key}')
            if expected is None or not torch.allclose(
                    actual.flatten(), expected.flatten().to(actual)):
                raise ValueError(
                    f'memory mode normalises the bank\'s views with the data '
                    f'preprocessor\'s {key} ({expected}), which must equal '
                    f'the generator\'s output_normalization {key} '
                    f'({actual.flatten().tolist()})')
        self.memory_bank = MODELS.build(
            dict(memory_bank, image_shape=generator.image_shape))
        self.student_augmentation = MODELS.build(
            student_augmentation
            or dict(type='SynthesisAugmentation', crop_padding=4, flip=True))

    @property
    def draws_per_iteration(self) -> int:
        if self.memory_bank is None:
            return super().draws_per_iteration
        return 1  # the round's batch; the student samples the bank

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """Undo the generator's output normalisation: its images in the
        networks' input space -> [0, 1] pixels."""
        generator = unwrap_model(self.generator)
        return (images * generator.output_std + generator.output_mean) / 255

    def update_memory(self, batch) -> None:
        if self.memory_bank is not None:
            self.memory_bank.add(
                self.pixels(batch['images']), batch['targets'])

    @torch.no_grad()
    def sample_student_batch(self) -> SyntheticBatch:
        if self.memory_bank is None:
            return super().sample_student_batch()
        images, targets = self.memory_bank.sample(
            self.student_batch_size or self._draws[1].shape[0],
            replacement=False)
        images = self.normalize(self.student_augmentation(images))
        self.last_synthetic_batch = images
        return dict(images=images, targets=targets)

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
        if self.memory_bank is not None:
            log_vars['memory_bank.size'] = torch.tensor(
                float(len(self.memory_bank)), device=device)
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
