"""Fast's synthesis tasks (and NAYER's, which share them): a few generator
steps per synthesised batch, the lowest-loss iterate into a memory bank,
student steps on batches of the bank."""
import math
from collections.abc import Sequence

import torch
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from torch import nn

from mmdfkd.registry import MODELS, OPTIMIZERS, TASK_UTILS

from ..utils import frozen_parameters, module_mode, unwrap_model
from .data_free_distillation import (
    DataFreeDistillation,
    SyntheticBatch,
    _broadcast_from_rank0,
)

TARGET_LAYOUTS = ('random', 'balanced')


@MODELS.register_module()
class FastDistillation(DataFreeDistillation):
    """Fast (Fang et al., "Up to 100x Faster Data-free Knowledge
    Distillation", AAAI 2022): a meta-learned generator, few-step synthesis
    tasks and a memory bank of their results. With ``meta_update=None``
    the same loop is NAYER's (Tran et al., "NAYER: Noisy Layer Data
    Generation for Efficient and Effective Data-free Knowledge
    Distillation", CVPR 2024), whose code is a fork of Fast's.

    One iteration is one "epoch" of the references::

        [iteration layer_reset_iter: re-draw the first layers of G]
        synthesis_loops x (one synthesis task):
            y = targets ('random', or NAYER's class-balanced blocks), z the
                latents of the draw (trained by latent_optimizer, if set)
            G' = copy of the meta-generator G (Fast, ``meta_update``), or G
            generator_iter x:
                x = G'(z, y);  v = normalise(aug(x))  (per-image crop/flip)
                L = bn * L_BN^m(T(v)) + oh * CE(T(v), y)
                    + adv * L_adv(S(v), T(v))     (not during warm-up)
                keep x if L is the lowest of the task so far
                one step of G' (inner_optimizer) and of z
            Fast: one outer step of G (``meta_update``: first-order MAML,
                the sum of the inner gradients, or Reptile) with the
                ``generator`` optimiser (lr = lr_g * generator_iter)
            bank <- the kept x (in [0, 1], before augmentation) with y
        student_iter x (not during warm-up):
            x ~ bank, v = normalise(aug(x)); KL_tau(T(v) || S(v)) -> S

    with L_adv = -1/N sum_i m_i KL(p_T(v_i) || p_S(v_i)), m_i =
    1[argmax S(v_i) = argmax T(v_i)] (:class:`AgreementMaskedKLDivergence`)
    and L_BN^m the momentum BN-statistics loss (:class:`BNStatisticsLoss`,
    m = 0.9). The losses and weights are those of ``generator_distiller``
    and ``distiller``; the schedule (warm-up, synthesis loops, NAYER's
    ``g_life`` re-initialisation, new Adam and re-drawn noisy layers per
    batch) is :class:`DataFreeDistillation`'s.

    Departures from the references, on purpose:

    * The bank keeps float images in memory (or in disk shards), bounded
      by ``memory_bank.capacity``, instead of a folder of uint8 PNGs that
      grows without bound and is re-scanned after every batch.
    * Warm-up leaves the student untouched (the adversarial term is off,
      so nothing reads it). NAYER's code switches the student to train mode
      after the first synthesis loop of an epoch, so the adversarial forward
      of the later loops updates its BN statistics on half-finished
      synthetic images; here it stays in eval mode
      (``student_train_mode_in_generator_step=False`` in the configs).
    * The BN statistics of the teacher are recorded during synthesis only.

    Args:
        memory_bank (dict): :class:`SyntheticMemoryBank` config without
            ``image_shape`` (taken from the generator).
        synthesis_augmentation (dict, optional): :class:`SynthesisAugmentation`
            of the synthesis views. Defaults to a random crop with 4-pixel
            padding and a horizontal flip (the references').
        student_augmentation (dict, optional): Augmentation of the bank
            batches (the references' dataset train transform). Defaults to
            ``synthesis_augmentation``. Both are normalised with the data
            preprocessor's mean and std unless their config sets its own.
        meta_update (dict, optional): :class:`MetaGeneratorUpdate` config:
            every task adapts a copy of the generator, and the generator
            itself (the meta-generator) only takes the outer step with the
            ``generator`` optimiser. None: the generator is trained in place
            by the ``generator`` optimiser (NAYER; Fast's non-meta
            ``fast`` variant). Defaults to None.
        inner_optimizer (dict, optional): Optimiser of the task's copy of the
            generator (Fast: ``dict(type='Adam', lr=lr_g, betas=(0.5,
            0.999))``), built afresh for every task. Required with
            ``meta_update``, refused without.
        latent_optimizer (dict, optional): Optimiser of the task's latent
            codes, built afresh for every task (Fast: Adam with lr_z and
            betas (0.5, 0.999); Adam acts per element, so a separate Adam
            equals the reference's parameter group). None: the latents stay
            as drawn (NAYER has none). Defaults to None.
        target_layout (str): ``'random'`` (the drawn targets, Fast) or
            ``'balanced'`` (NAYER: ``B // C`` blocks 0..C-1, then ``B % C``
            of the drawn targets, so that every noisy layer of a
            :class:`NoisyLayerGenerator` sees one sample of each class).
            Defaults to 'random'.
        num_classes (int, optional): C of the balanced layout; defaults to
            the generator's ``num_classes``.
        layer_reset_iter (int, optional): At the start of this iteration
            (0-based) the ``layer_reset_modules`` of the generator get
            weights ~ N(0, layer_reset_std^2) and zero biases (Fast's
            ``reset_l0`` at its 140th synthesis call, 120 + warm-up 20, i.e.
            iteration 139). None: never. Defaults to None.
        layer_reset_modules (Sequence[str]): Generator submodules reset by
            ``layer_reset_iter``. Defaults to ``('fc', 'input_bn.0')``, the
            first Linear and the first BatchNorm of :class:`DAFLGenerator`.
        layer_reset_std (float): Defaults to 0.02 (the reference's).
        student_batch_size (int, optional): Student batch size; defaults to
            the synthesis batch size.
        student_sample_replacement (bool): Draw the entries of a student
            batch with replacement. Defaults to False (distinct entries, as
            a shuffled loader over the pool gives).
        **kwargs: :class:`DataFreeDistillation` arguments. A synthesis loop
            always optimises one draw (``draw_per_synthesis_loop=True``)
            and the student never samples the generator directly.
    """

    def __init__(self,
                 memory_bank: dict,
                 synthesis_augmentation: dict | None = None,
                 student_augmentation: dict | None = None,
                 meta_update: dict | None = None,
                 inner_optimizer: dict | None = None,
                 latent_optimizer: dict | None = None,
                 target_layout: str = 'random',
                 num_classes: int | None = None,
                 layer_reset_iter: int | None = None,
                 layer_reset_modules: Sequence[str] = ('fc', 'input_bn.0'),
                 layer_reset_std: float = 0.02,
                 student_batch_size: int | None = None,
                 student_sample_replacement: bool = False,
                 **kwargs) -> None:
        if not kwargs.setdefault('draw_per_synthesis_loop', True):
            raise ValueError('FastDistillation optimises one draw per '
                             'synthesis loop: draw_per_synthesis_loop must '
                             'be True')
        if kwargs.get('reuse_generator_batch') or kwargs.get(
                'student_train_first'):
            raise ValueError(
                'FastDistillation trains the student on its memory bank, '
                'which the synthesis phase fills first: reuse_generator_batch'
                ' and student_train_first must be False')
        super().__init__(**kwargs)
        if (meta_update is None) != (inner_optimizer is None):
            raise ValueError(
                'inner_optimizer is the optimiser of the meta-generator\'s '
                'per-task copy: set it together with meta_update (Fast), or '
                'neither (the generator is then trained in place by the '
                "'generator' optimiser)")
        if target_layout not in TARGET_LAYOUTS:
            raise ValueError(f'target_layout must be one of {TARGET_LAYOUTS}'
                             f', got {target_layout!r}')
        generator = unwrap_model(self.generator)
        self.meta_update = (None if meta_update is None else
                            TASK_UTILS.build(meta_update))
        self.inner_optimizer_cfg = inner_optimizer
        self.latent_optimizer_cfg = latent_optimizer
        self.target_layout = target_layout
        self.num_classes = num_classes or getattr(generator, 'num_classes',
                                                  None)
        if target_layout == 'balanced' and not self.num_classes:
            raise ValueError("target_layout='balanced' needs num_classes "
                             '(the generator has no num_classes attribute)')
        self.layer_reset_iter = layer_reset_iter
        self.layer_reset_modules = tuple(layer_reset_modules)
        self.layer_reset_std = layer_reset_std
        if layer_reset_iter is not None:
            self._layers_to_reset(generator)  # fail at build time

        self.memory_bank = MODELS.build(
            dict(memory_bank, image_shape=generator.image_shape))
        self.synthesis_augmentation = self._build_augmentation(
            synthesis_augmentation or {'type': 'SynthesisAugmentation'})
        self.student_augmentation = self._build_augmentation(
            student_augmentation or synthesis_augmentation
            or {'type': 'SynthesisAugmentation'})
        self.student_batch_size = student_batch_size
        self.student_sample_replacement = student_sample_replacement

    # ------------------------------------------------------------ building
    def _build_augmentation(self, cfg: dict) -> nn.Module:
        """Build a synthesis augmentation; without mean/std of its own it
        normalises with the data preprocessor's (0-255 units -> [0, 1])."""
        cfg = dict(cfg)
        preprocessor = self.data_preprocessor
        if ('mean' not in cfg and 'std' not in cfg
                and getattr(preprocessor, '_enable_normalize', False)):
            cfg['mean'] = (preprocessor.mean / 255).flatten().tolist()
            cfg['std'] = (preprocessor.std / 255).flatten().tolist()
        return MODELS.build(cfg)

    def _layers_to_reset(self, generator: nn.Module) -> list[nn.Module]:
        layers = []
        for name in self.layer_reset_modules:
            try:
                layer = generator.get_submodule(name)
            except AttributeError:
                raise KeyError(
                    f'layer_reset_modules names {name!r}, which is not a '
                    f'submodule of the generator {type(generator).__name__}'
                    ) from None
            if not (isinstance(getattr(layer, 'weight', None), nn.Parameter)
                    and isinstance(getattr(layer, 'bias', None),
                                   nn.Parameter)):
                raise TypeError(f'generator layer {name!r} has no weight and '
                                'bias to reset')
            layers.append(layer)
        return layers

    # ------------------------------------------------------ schedule hooks
    @property
    def draws_per_iteration(self) -> int:
        """One draw per synthesis loop; the student reads the bank."""
        loops = self.synthesis_loops
        if self.warmup_iters:
            loops = max(loops, self.warmup_synthesis_loops)
        return loops

    @torch.no_grad()
    def reset_generator_layers(self) -> None:
        """Fast's ``reset_l0``: weights ~ N(0, std^2), zero biases for the
        ``layer_reset_modules``, identical on every DDP rank. The optimiser
        state is kept, as in the reference."""
        generator = unwrap_model(self.generator)
        for layer in self._layers_to_reset(generator):
            nn.init.normal_(layer.weight, 0.0, self.layer_reset_std)
            nn.init.zeros_(layer.bias)
        _broadcast_from_rank0(generator)
        MMLogger.get_current_instance().info(
            f'iteration {int(self.train_iter)}: generator layers '
            f'{list(self.layer_reset_modules)} re-initialised')

    def arrange_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """The targets of a synthesis task: the drawn ones ('random'), or
        NAYER's ``B // C`` blocks of 0..C-1 followed by the first ``B % C``
        drawn targets ('balanced')."""
        if self.target_layout == 'random':
            return targets
        c, n = self.num_classes, len(targets)
        blocks = torch.arange(c, device=targets.device).repeat(n // c)
        return torch.cat([blocks, targets[:n % c]])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> the networks' input space (no augmentation)."""
        aug = self.synthesis_augmentation
        if aug.mean is None:
            return images
        return (images - aug.mean.to(images.dtype)) / aug.std.to(images.dtype)

    # ------------------------------------------------------------ the loop
    def generator_phase(self, optim_wrapper) -> dict[str, torch.Tensor]:
        if (self.layer_reset_iter is not None
                and int(self.train_iter) == self.layer_reset_iter):
            self.reset_generator_layers()
        log_vars = super().generator_phase(optim_wrapper)
        log_vars['memory_bank.size'] = torch.tensor(
            float(len(self.memory_bank)), device=self.train_iter.device)
        return log_vars

    def synthesis_loop(self, optim_wrapper) -> list[dict[str, torch.Tensor]]:
        """One synthesis task (see the class docstring): ``generator_iter``
        steps on one draw, the lowest-loss images into the bank."""
        latents, targets = self.next_draw()
        targets = self.arrange_targets(targets)
        meta_generator = unwrap_model(self.generator)
        if self.meta_update is not None:
            generator = self.meta_update.begin(meta_generator)
            generator_optim = OptimWrapper(
                OPTIMIZERS.build(
                    dict(self.inner_optimizer_cfg,
                         params=generator.parameters())))
        else:
            generator, generator_optim = self.generator, optim_wrapper
        latents = latents.detach().clone()
        latent_optim = None
        if self.latent_optimizer_cfg is not None:
            latents.requires_grad_(True)
            latent_optim = OPTIMIZERS.build(
                dict(self.latent_optimizer_cfg, params=[latents]))

        best_loss, best_images, step_logs = math.inf, None, []
        for _ in range(self.generator_iter):
            with generator_optim.optim_context(
                    generator), self.training_autocast():
                images = self._stored_precision(generator(latents, targets))
                loss, log_vars = self.synthesis_loss(images, targets, latents)
            # the iterate is judged before its own update, as in the code
            # of Fast and NAYER
            value = float(loss.detach())
            if best_images is None or value < best_loss:
                best_loss, best_images = value, images.detach()
            generator_optim.backward(loss)
            if self.meta_update is not None:
                self.meta_update.accumulate(meta_generator, generator)
            generator_optim.step()
            generator_optim.zero_grad()
            if latent_optim is not None:
                latent_optim.step()
                latent_optim.zero_grad()
            step_logs.append(log_vars)
        if self.meta_update is not None:
            self.meta_update.step(meta_generator, generator, optim_wrapper)
        if best_images is not None:
            self.memory_bank.add(best_images, targets)
            self.last_synthetic_batch = self.normalize(best_images)
            step_logs[-1]['generator.best_loss'] = torch.tensor(
                best_loss, device=best_images.device)
        return step_logs

    def synthesis_loss(self, images: torch.Tensor, targets: torch.Tensor,
                       latents: torch.Tensor
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted generator loss of one synthesis step on the
        augmented, normalised view of ``images`` (in [0, 1])."""
        views = self.synthesis_augmentation(images)
        batch = {'images': views, 'targets': targets, 'latents': latents}
        dist = self.generator_distiller
        with dist.teacher_recorders:
            self.forward_teachers(views)
        if dist.needs_student:
            student = unwrap_model(self.architecture)
            train_mode = (self.student_train_mode_in_generator_step
                          and not self.in_warmup)
            with frozen_parameters(student), module_mode(
                    student, train_mode), dist.student_recorders:
                student(views, mode='tensor')
        losses = dist.compute_distill_losses(batch)
        if self.in_warmup:
            for name in self.warmup_disabled_losses:
                losses.pop(name)
        return self._parse_and_check(losses, 'generator')

    def update_memory(self, batch: SyntheticBatch) -> None:
        """Only the lowest-loss iterate of a task is stored (in
        :meth:`synthesis_loop`)."""

    @torch.no_grad()
    def sample_student_batch(self) -> SyntheticBatch:
        """A batch of the bank in its augmented, normalised view."""
        batch_size = self.student_batch_size or len(self._draws[1])
        images, targets = self.memory_bank.sample(
            batch_size, replacement=self.student_sample_replacement)
        views = self.student_augmentation(images)
        self.last_synthetic_batch = views
        return {'images': views, 'targets': targets}
