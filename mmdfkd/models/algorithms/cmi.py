from typing import Dict, List, Optional, Sequence

import torch
from mmengine.optim import AmpOptimWrapper
from torch.nn.modules.batchnorm import _BatchNorm

from mmdfkd.registry import MODELS
from ..recorders import RecorderManager
from ..utils import frozen_parameters, module_mode, unwrap_model
from .data_free_distillation import DataFreeDistillation, SyntheticBatch


@MODELS.register_module()
class CMIDistillation(DataFreeDistillation):
    """Contrastive Model Inversion (CMI), Fang et al., "Contrastive Model
    Inversion for Data-Free Knowledge Distillation", IJCAI 2021, arXiv
    2105.08584.

    Every iteration (one "epoch" of the reference) synthesises one batch
    with a freshly initialised generator, keeps it, and distils the student
    on the pool of all kept batches::

        G <- new weights; z ~ N(0, I) (trainable); y random, sorted
        generator_iter times (Adam over G and z):
            x = G(z) in [0, 1]
            x_g = global_view(x)   (crop with 4-px padding, flip)
            x_l = local_view(x)    (random resized crop of scale 0.25-1, flip)
            L = bn * L_BN(T(x_g)) + oh * CE(T(x_g), y)
                - adv * mean_i[ 1{argmax S(x_g)_i = argmax T(x_g)_i}
                                * KL(p_T(x_g)_i || p_S(x_g)_i) ]
                + cr * L_cr
            update G, z (generator optimiser) and the projection head h
            (its own optimiser, kept for the whole run)
        the iterate with the lowest L: images -> memory_bank,
            their [f(x_l) || f(x_g)] -> feature_bank
        student_iter times: KD (KL, tau 20) on memory_bank batches with the
            train augmentation (student_augmentation)

    The first three terms are ``generator_distiller`` losses on the global
    view (the student, frozen and in eval mode, scores it for the
    adversarial term). The contrastive term L_cr
    (:class:`InstanceContrastiveLoss`): the instance feature f(x) is the
    concatenated per-channel spatial mean of the inputs of the hooked
    teacher layers (``feature_layers``, by default every BatchNorm layer);
    with n negatives [f_l || f_g] drawn from the feature bank, anchors are
    h([f(x_l); f_l]), keys the detached h([f(x_g); f_g]), and instance i
    must pick its own key: CE over cosine similarities / tau.

    The generator outputs [0, 1] images; they enter the networks as the
    real validation images do: 255 x, normalised with the mean and std of
    ``data_preprocessor``. Differences from the reference code: the image
    pool is an in-memory :class:`SyntheticMemoryBank` with a capacity (no
    PNGs, no DataLoader rebuilt over a growing folder after every batch),
    the feature bank lives on the training device and in checkpoints, and
    both are restored by ``--resume``.

    Args:
        memory_bank (dict): :class:`SyntheticMemoryBank` config without
            ``image_shape`` (taken from the generator).
        feature_bank (dict): :class:`InstanceFeatureBank` config without
            ``feature_dim`` (twice the instance-feature size).
        contrastive_head (dict): Projection head h, called on a 1-tuple of
            (N, d) features and returning a 1-tuple, e.g. mmpretrain's
            ``dict(type='MoCoV2Neck', out_channels=256,
            with_avg_pool=False)`` (Linear(d, d), ReLU, Linear(d, 256));
            ``in_channels`` and ``hid_channels`` default to d. It needs an
            optimiser-wrapper entry named ``contrastive_head``.
        contrastive_loss (dict): :class:`InstanceContrastiveLoss` config
            (``loss_weight`` is CMI's ``cr``, ``temperature`` its ``cr_T``).
        global_view (dict): Augmentation of the global view
            (:class:`SynthesisAugmentation` without mean/std).
        local_view (dict): Augmentation of the local view.
        student_augmentation (dict, optional): Augmentation of the pool
            batches of the student phase; defaults to ``global_view`` (the
            same crop and flip as the reference's train transform).
        num_negatives (int): Feature-bank rows drawn per generator step
            (CMI's ``n_neg``). Defaults to 4096.
        feature_layers (Sequence[str], optional): Names of the teacher's
            modules whose inputs make the instance feature, e.g.
            ``['backbone.layer1', ..., 'backbone.layer4']`` (the reference's
            choice for ResNet-34). Defaults to every BatchNorm layer.
        feature_teacher (str, optional): Teacher whose features are used;
            defaults to the first.
        student_batch_size (int, optional): Student batch size; defaults to
            the synthesis batch size.
        optimize_latents (bool): Optimise z with the generator (CMI).
            Defaults to True.
        **kwargs: :class:`DataFreeDistillation` arguments. CMI's defaults:
            ``draw_per_synthesis_loop=True`` (required),
            ``reinit_generator_every_loop=True`` and
            ``student_train_mode_in_generator_step=False``.
    """

    def __init__(self,
                 memory_bank: dict,
                 feature_bank: dict,
                 contrastive_head: dict,
                 contrastive_loss: dict,
                 global_view: dict,
                 local_view: dict,
                 student_augmentation: Optional[dict] = None,
                 num_negatives: int = 4096,
                 feature_layers: Optional[Sequence[str]] = None,
                 feature_teacher: Optional[str] = None,
                 student_batch_size: Optional[int] = None,
                 optimize_latents: bool = True,
                 **kwargs) -> None:
        kwargs.setdefault('draw_per_synthesis_loop', True)
        kwargs.setdefault('reinit_generator_every_loop', True)
        kwargs.setdefault('student_train_mode_in_generator_step', False)
        if not kwargs['draw_per_synthesis_loop']:
            raise ValueError('CMIDistillation optimises one latent batch per '
                             'synthesis loop: draw_per_synthesis_loop must '
                             'be True')
        if kwargs.get('reuse_generator_batch'):
            raise ValueError('CMIDistillation distils from its memory bank; '
                             'reuse_generator_batch is not supported')
        super().__init__(**kwargs)
        if 'loss_cr' in self.generator_distiller.distill_losses:
            raise KeyError("'loss_cr' is the contrastive term of "
                           'CMIDistillation; rename that generator loss')
        if num_negatives < 0:
            raise ValueError(f'num_negatives must be non-negative, got '
                             f'{num_negatives}')
        generator = unwrap_model(self.generator)
        if not hasattr(generator, 'image_shape'):
            raise TypeError('CMIDistillation needs a generator with an '
                            '`image_shape` (C, H, W), e.g. DAFLGenerator')
        image_shape = tuple(generator.image_shape)
        self.memory_bank = MODELS.build(
            dict(memory_bank, image_shape=image_shape))
        self.global_view = MODELS.build(global_view)
        self.local_view = MODELS.build(local_view)
        self.student_augmentation = MODELS.build(student_augmentation
                                                 or global_view)
        self.num_negatives = num_negatives
        self.optimize_latents = optimize_latents
        self.student_batch_size = student_batch_size

        self.feature_teacher = feature_teacher or next(iter(self.teachers))
        if self.feature_teacher not in self.teachers:
            raise KeyError(f'feature_teacher {self.feature_teacher!r} is not '
                           f'a teacher; teachers: {list(self.teachers)}')
        self.instance_recorders = self._build_instance_recorders(
            feature_layers)
        dim = self._instance_feature_dim(image_shape)
        self.feature_bank = MODELS.build(
            dict(feature_bank, feature_dim=2 * dim))
        head = dict(contrastive_head)
        head.setdefault('in_channels', dim)
        head.setdefault('hid_channels', dim)
        self.contrastive_head = MODELS.build(head)
        self.contrastive_loss = MODELS.build(contrastive_loss)
        self._head_optim_wrapper = None
        self._step_record: Optional[SyntheticBatch] = None

    # ------------------------------------------------- instance features
    def _build_instance_recorders(
            self, feature_layers: Optional[Sequence[str]]) -> RecorderManager:
        teacher = self.teachers[self.feature_teacher]
        if feature_layers is None:
            feature_layers = [
                name for name, module in teacher.named_modules()
                if isinstance(module, _BatchNorm)
            ]
            if not feature_layers:
                raise ValueError(
                    f'teacher {self.feature_teacher!r} has no BatchNorm '
                    'layer: set feature_layers to the modules whose inputs '
                    'make the instance feature')
        recorders = RecorderManager({
            f'feature{i}': dict(type='ModuleInputs',
                                source=f'{self.feature_teacher}.{name}')
            for i, name in enumerate(feature_layers)
        })
        recorders.prepare_from_model(self.teachers)
        return recorders

    def instance_features(self, record_idx: int) -> torch.Tensor:
        """(N, d): per-channel means over all but the batch and channel
        dimensions of the recorded layer inputs of the ``record_idx``-th
        teacher forward, concatenated in layer order (a 2-D input, e.g. of
        a BatchNorm1d, is taken as it is)."""
        means = []
        for recorder in self.instance_recorders.recorders.values():
            x = recorder.get_record_data(record_idx)
            means.append(x.flatten(2).mean(dim=2) if x.dim() > 2 else x)
        return torch.cat(means, dim=1)

    @torch.no_grad()
    def _instance_feature_dim(self, image_shape: Sequence[int]) -> int:
        teacher = self.teachers[self.feature_teacher]
        with self.instance_recorders:
            teacher(torch.zeros(2, *image_shape), mode='tensor')
            return self.instance_features(0).shape[1]

    # ----------------------------------------------------------- the loop
    @property
    def draws_per_iteration(self) -> int:
        """One latent draw per synthesised batch; the student draws from
        the memory bank."""
        return max(self.synthesis_loops,
                   self.warmup_synthesis_loops if self.warmup_iters else 0)

    def generator_phase(self, optim_wrapper) -> Dict[str, torch.Tensor]:
        if 'contrastive_head' not in optim_wrapper:
            raise KeyError("CMIDistillation needs an optimiser wrapper named "
                           "'contrastive_head' for its projection head")
        if any(isinstance(optim_wrapper[k], AmpOptimWrapper)
               for k in ('generator', 'contrastive_head')):
            raise NotImplementedError(
                'CMIDistillation updates the generator and the projection '
                'head from one backward pass, which AmpOptimWrapper loss '
                'scaling does not support; train without --amp')
        self._head_optim_wrapper = optim_wrapper['contrastive_head']
        return super().generator_phase(optim_wrapper)

    def synthesis_loop(self, optim_wrapper) -> List[Dict[str, torch.Tensor]]:
        """Optimise one batch (G and z) for ``generator_iter`` steps and
        keep its best iterate (lowest total loss, measured on the images the
        step was computed on) in the memory and feature banks."""
        latents, targets = self.next_draw()
        targets = targets.sort().values  # sorted for readable image grids
        latents = latents.detach().clone().requires_grad_(
            self.optimize_latents)
        optimizer = optim_wrapper.optimizer
        if self.optimize_latents:
            # z joins the generator's optimiser for this loop only (the
            # reference builds Adam([G, z]) per batch); same hyper-parameters
            group = {k: v for k, v in optimizer.param_groups[0].items()
                     if k != 'params'}
            optimizer.add_param_group(dict(group, params=[latents]))
        step_logs, best_cost, best = [], None, None
        try:
            for _ in range(self.generator_iter):
                logs = self.generator_step(latents, targets, optim_wrapper)
                step_logs.append(logs)
                cost = float(logs['generator.loss'])
                if best_cost is None or cost < best_cost:
                    best_cost, best = cost, self._step_record
        finally:
            if self.optimize_latents:
                optimizer.param_groups.pop()
                optimizer.state.pop(latents, None)
            self._step_record = None
        if best is not None:
            self.update_memory(best)
        return step_logs

    def generator_step(self, latents: torch.Tensor, targets: torch.Tensor,
                       optim_wrapper) -> Dict[str, torch.Tensor]:
        """One update of G, z and the projection head on both views."""
        dist = self.generator_distiller
        student = unwrap_model(self.architecture)
        with optim_wrapper.optim_context(self.generator):
            images = self.generator(latents, targets)
            global_view = self.normalize(self.global_view(images))
            local_view = self.normalize(self.local_view(images))
            batch = dict(images=global_view, targets=targets, latents=latents)
            with self.instance_recorders:
                with dist.teacher_recorders:
                    self.forward_teachers(global_view)
                self.teachers[self.feature_teacher](local_view, mode='tensor')
                global_features = self.instance_features(0)
                local_features = self.instance_features(1)
            if dist.needs_student:
                train_mode = (self.student_train_mode_in_generator_step
                              and not self.in_warmup)
                with frozen_parameters(student), module_mode(
                        student, train_mode), dist.student_recorders:
                    student(global_view, mode='tensor')
            losses = dist.compute_distill_losses(batch)
            if self.in_warmup:
                for name in self.warmup_disabled_losses:
                    losses.pop(name)
            losses['loss_cr'] = self.contrastive_term(local_features,
                                                      global_features)
        loss, log_vars = self._parse_and_check(losses, 'generator')
        optim_wrapper.update_params(loss)
        self._head_optim_wrapper.step()
        self._head_optim_wrapper.zero_grad()
        self._step_record = dict(
            images=images.detach(),
            targets=targets,
            features=torch.cat([local_features, global_features],
                               dim=1).detach())
        self.last_synthetic_batch = global_view.detach()
        return log_vars

    def contrastive_term(self, local_features: torch.Tensor,
                         global_features: torch.Tensor) -> torch.Tensor:
        """L_cr over the current batch and ``num_negatives`` bank rows."""
        negatives = self.feature_bank.sample(self.num_negatives)
        cached_local, cached_global = negatives.chunk(2, dim=1)
        features = torch.cat(
            [local_features, cached_local, global_features, cached_global])
        projections = self.contrastive_head((features, ))[0]
        anchors, keys = projections.chunk(2)
        return self.contrastive_loss(
            anchors, keys, num_current=len(local_features))

    def update_memory(self, batch: SyntheticBatch) -> None:
        """Keep a synthesised batch: its [0, 1] images (with their target
        labels) for the student, its instance features as negatives."""
        self.memory_bank.add(batch['images'], batch['targets'])
        self.feature_bank.add(batch['features'])
        self.last_synthetic_batch = self.normalize(batch['images'])

    def sample_student_batch(self) -> SyntheticBatch:
        images, targets = self.memory_bank.sample(
            self.student_batch_size or self._draws[1].shape[0],
            replacement=False)
        with torch.no_grad():
            images = self.normalize(self.student_augmentation(images))
        self.last_synthetic_batch = images
        return dict(images=images, targets=targets)
