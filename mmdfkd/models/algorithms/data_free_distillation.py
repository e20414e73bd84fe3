"""The shared data-free distillation loop."""
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from torch import nn

from mmdfkd.registry import MODELS
from mmdfkd.utils.checkpoint import load_teacher_weights
from ..utils import (build_classifier, frozen_parameters, module_mode,
                     unwrap_model)

SyntheticBatch = Dict[str, torch.Tensor]


@MODELS.register_module()
class DataFreeDistillation(BaseModel):
    """Base algorithm of every data-free method: a generator synthesises
    images that frozen teachers score, and the student (``architecture``) is
    distilled on them. No real training data is read: the train dataloader
    yields latent noise and target labels (:class:`LatentNoiseDataset`).

    One ``train_step`` runs two phases in a configurable order::

        generator phase: generator_iter x generator_step()
            images = G(z, y); losses of ``generator_distiller`` on the
            teachers (and the student, frozen) -> update G
        student phase:   student_iter x student_step()
            images = sample_student_batch(); losses of ``distiller``
            -> update the student

    Methods change behaviour through configs (losses, weights, step counts)
    or by overriding the hook points :meth:`generator_phase`,
    :meth:`sample_student_batch`, :meth:`select_samples` and
    :meth:`update_memory`; none copies the loop. The keys follow MMRazor's
    ``DataFreeDistillation``: ``architecture``, ``teachers``, ``generator``,
    ``distiller``, ``generator_distiller``, ``student_iter``,
    ``student_train_first`` and optimiser wrappers named ``architecture`` and
    ``generator``.

    Differences from MMRazor, on purpose: the student's parameters are
    frozen during the generator step (MMRazor leaks those gradients into the
    next student update); no real-data loader is needed; teachers are kept
    out of checkpoints (they reload from ``ckpt_path``); the generator is
    unwrapped explicitly instead of assuming a DDP ``.module``.

    Args:
        architecture (dict): Student model config (or ``dict(cfg_path=...)``).
        teachers (dict): Teacher name -> ``dict(build_cfg=..., ckpt_path=...)``
            with ``ckpt_path`` a local path or URL. Teachers are frozen and
            always in eval mode.
        generator (dict): Generator config; called as ``G(latents, targets)``.
        distiller (dict): Distiller of the student phase.
        generator_distiller (dict): Distiller of the generator phase.
        student_iter (int): Student steps per iteration. Defaults to 1.
        generator_iter (int): Generator steps per iteration. Defaults to 1.
        student_train_first (bool): Run the student phase first.
        reuse_generator_batch (bool): The student learns on the (detached)
            images of the last generator step instead of fresh ones (DAFL).
        student_train_mode_in_generator_step (bool): Whether the student is
            in train mode while the generator is trained (its BN statistics
            then follow the synthetic batches, as in DFAD). Defaults to True.
        generator_train_mode_in_student_step (bool): Whether the generator
            runs in train mode (batch BN statistics) when it produces the
            student's batches. Defaults to True (DAFL, DFAD).
        predict_with_teacher (bool): In ``predict`` mode also run the first
            teacher and store ``teacher_pred_label`` for the ``Agreement``
            metric. Defaults to True.
        data_preprocessor (dict, optional): Pre-processes the real
            validation images (normalisation); on synthetic batches only
            moves them to the device.
    """

    def __init__(self,
                 architecture: dict,
                 teachers: Dict[str, dict],
                 generator: dict,
                 distiller: dict,
                 generator_distiller: dict,
                 student_iter: int = 1,
                 generator_iter: int = 1,
                 student_train_first: bool = False,
                 reuse_generator_batch: bool = False,
                 student_train_mode_in_generator_step: bool = True,
                 generator_train_mode_in_student_step: bool = True,
                 predict_with_teacher: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        for name, value in (('student_iter', student_iter),
                            ('generator_iter', generator_iter)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'{name} must be a non-negative int, got '
                                 f'{value!r}')
        if reuse_generator_batch and (student_train_first
                                      or generator_iter == 0):
            raise ValueError('reuse_generator_batch needs the generator phase '
                             'to run first (student_train_first=False, '
                             'generator_iter >= 1)')
        self.architecture = build_classifier(architecture)
        self.teachers = self._build_teachers(teachers)
        self.generator = MODELS.build(generator)
        self.distiller = MODELS.build(distiller)
        self.generator_distiller = MODELS.build(generator_distiller)
        for dist in (self.distiller, self.generator_distiller):
            dist.prepare_from_student(self.architecture)
            dist.prepare_from_teacher(self.teachers)

        self.student_iter = student_iter
        self.generator_iter = generator_iter
        self.student_train_first = student_train_first
        self.reuse_generator_batch = reuse_generator_batch
        self.student_train_mode_in_generator_step = \
            student_train_mode_in_generator_step
        self.generator_train_mode_in_student_step = \
            generator_train_mode_in_student_step
        self.predict_with_teacher = predict_with_teacher

        # the latest synthetic batch (detached), for visualisation hooks
        self.last_synthetic_batch: Optional[torch.Tensor] = None
        self._draws: Tuple[torch.Tensor, torch.Tensor] = None
        self._next_draw = 0
        self._last_generated: Optional[SyntheticBatch] = None

        self._register_state_dict_hook(self._drop_teachers_from_state_dict)
        self._register_load_state_dict_pre_hook(
            self._keep_teachers_on_load, with_module=True)

    # ------------------------------------------------------------ building
    @staticmethod
    def _build_teachers(teachers: Dict[str, dict]) -> nn.ModuleDict:
        if not teachers:
            raise ValueError('at least one teacher is required')
        built = nn.ModuleDict()
        logger = MMLogger.get_current_instance()
        for name, cfg in teachers.items():
            unknown = set(cfg) - {'build_cfg', 'ckpt_path'}
            if unknown or 'build_cfg' not in cfg:
                raise KeyError(
                    f'teacher {name!r} must be dict(build_cfg=..., '
                    f'ckpt_path=...); unknown keys: {sorted(unknown)}')
            teacher = build_classifier(cfg['build_cfg'])
            ckpt_path = cfg.get('ckpt_path')
            if ckpt_path:
                load_teacher_weights(teacher, ckpt_path)
                logger.info(f'teacher {name!r} loaded from {ckpt_path}')
            else:
                logger.warning(
                    f'teacher {name!r} has no ckpt_path: it keeps RANDOM '
                    'weights (only meaningful for smoke tests)')
            teacher.requires_grad_(False)
            teacher.eval()
            built[name] = teacher
        return built

    @property
    def student(self) -> nn.Module:
        return self.architecture

    def init_weights(self) -> None:
        """Initialise only the student and the generator: the teachers hold
        loaded weights that a generic ``init_weights`` would overwrite."""
        for module in (self.architecture, self.generator):
            if hasattr(module, 'init_weights'):
                module.init_weights()

    def train(self, mode: bool = True) -> 'DataFreeDistillation':
        super().train(mode)
        self.teachers.eval()  # teachers always use their running statistics
        return self

    @staticmethod
    def _drop_teachers_from_state_dict(module, state_dict, prefix, _meta):
        for key in [k for k in state_dict if k.startswith(prefix + 'teachers.')]:
            del state_dict[key]
        return state_dict

    def _keep_teachers_on_load(self, module, state_dict, prefix, *args):
        # teachers are not in our checkpoints; keep the loaded ones
        for key, value in self.teachers.state_dict().items():
            state_dict.setdefault(f'{prefix}teachers.{key}', value)

    # ------------------------------------------------------------ the loop
    def train_step(self, data: dict, optim_wrapper) -> Dict[str, torch.Tensor]:
        data = self.data_preprocessor.cast_data(data)
        self._set_draws(data)
        self.teachers.eval()
        phases = [self.generator_phase, self.student_phase]
        if self.student_train_first:
            phases.reverse()
        log_vars: Dict[str, torch.Tensor] = {}
        for phase in phases:
            log_vars.update(phase(optim_wrapper))
        return log_vars

    def _set_draws(self, data: dict) -> None:
        if not isinstance(data, dict) or 'latents' not in data:
            raise TypeError(
                'data-free training expects batches of latent noise '
                "(dict with 'latents' and 'targets', from LatentNoiseDataset)"
                f', got {type(data).__name__}: check train_dataloader')
        latents, targets = data['latents'], data['targets']
        if latents.dim() == 2:  # one draw per item
            latents, targets = latents[:, None], targets[:, None]
        self._draws = (latents, targets)
        self._next_draw = 0

    def next_draw(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The next (latents, targets) of this iteration's batch."""
        latents, targets = self._draws
        k = self._next_draw
        if k >= latents.shape[1]:
            raise RuntimeError(
                f'the latent batch holds {latents.shape[1]} draw(s) per '
                f'iteration but the algorithm needs at least {k + 1}; set '
                'num_draws of LatentNoiseDataset to '
                f'{self.draws_per_iteration}')
        self._next_draw += 1
        return latents[:, k], targets[:, k]

    @property
    def draws_per_iteration(self) -> int:
        """Latent draws one iteration consumes (LatentNoiseDataset's
        ``num_draws`` must be at least this)."""
        student = 0 if self.reuse_generator_batch else self.student_iter
        return self.generator_iter + student

    @staticmethod
    def mean_log_vars(
            step_logs: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """Average the logged values of several steps of one phase."""
        merged: Dict[str, List[torch.Tensor]] = defaultdict(list)
        for logs in step_logs:
            for key, value in logs.items():
                merged[key].append(value)
        return {k: sum(v) / len(v) for k, v in merged.items()}

    def generator_phase(self, optim_wrapper) -> Dict[str, torch.Tensor]:
        step_logs = []
        for _ in range(self.generator_iter):
            latents, targets = self.next_draw()
            step_logs.append(
                self.generator_step(latents, targets,
                                    optim_wrapper['generator']))
        return self.mean_log_vars(step_logs)

    def student_phase(self, optim_wrapper) -> Dict[str, torch.Tensor]:
        step_logs = [
            self.student_step(self.sample_student_batch(),
                              optim_wrapper['architecture'])
            for _ in range(self.student_iter)
        ]
        return self.mean_log_vars(step_logs)

    def forward_teachers(self, images: torch.Tensor) -> None:
        for teacher in self.teachers.values():
            teacher(images, mode='tensor')

    def generate(self, latents: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
        """Images the networks see. Subclasses may add augmentation."""
        return self.generator(latents, targets)

    def generator_step(self, latents: torch.Tensor, targets: torch.Tensor,
                       optim_wrapper) -> Dict[str, torch.Tensor]:
        """One update of the generator (or of learnable inputs)."""
        dist = self.generator_distiller
        student = unwrap_model(self.architecture)
        with optim_wrapper.optim_context(self.generator):
            images = self.generate(latents, targets)
            batch = self.select_samples(
                dict(images=images, targets=targets, latents=latents))
            with dist.teacher_recorders:
                self.forward_teachers(batch['images'])
            if dist.needs_student:
                with frozen_parameters(student), module_mode(
                        student, self.student_train_mode_in_generator_step), \
                        dist.student_recorders:
                    student(batch['images'], mode='tensor')
            losses = dist.compute_distill_losses(batch)
        loss, log_vars = self._parse_and_check(losses, 'generator')
        optim_wrapper.update_params(loss)
        detached = {k: v.detach() for k, v in batch.items()}
        self._last_generated = detached
        self.last_synthetic_batch = detached['images']
        self.update_memory(detached)
        return log_vars

    def sample_student_batch(self) -> SyntheticBatch:
        """The batch of the next student step: by default fresh images from
        the generator (no graph), or the last generator batch (DAFL)."""
        if self.reuse_generator_batch:
            return self._last_generated
        latents, targets = self.next_draw()
        generator = unwrap_model(self.generator)
        with torch.no_grad(), module_mode(
                generator, self.generator_train_mode_in_student_step):
            images = generator(latents, targets)
        batch = self.select_samples(
            dict(images=images, targets=targets, latents=latents))
        self.last_synthetic_batch = batch['images']
        return batch

    def student_step(self, batch: SyntheticBatch,
                     optim_wrapper) -> Dict[str, torch.Tensor]:
        """One distillation step of the student on ``batch``."""
        with optim_wrapper.optim_context(self.architecture):
            with torch.no_grad(), self.distiller.teacher_recorders:
                self.forward_teachers(batch['images'])
            with self.distiller.student_recorders:
                self.architecture(batch['images'], mode='tensor')
            losses = self.distiller.compute_distill_losses(batch)
        loss, log_vars = self._parse_and_check(losses, 'student')
        optim_wrapper.update_params(loss)
        return log_vars

    def select_samples(self, batch: SyntheticBatch) -> SyntheticBatch:
        """Hook: filter a synthetic batch (e.g. TA-DFKD's teacher-based
        selection). The default keeps every sample."""
        return batch

    def update_memory(self, batch: SyntheticBatch) -> None:
        """Hook: store a generated batch (methods with a memory bank)."""

    def _parse_and_check(self, losses: Dict[str, torch.Tensor],
                         phase: str) -> Tuple[torch.Tensor, dict]:
        loss, log_vars = self.parse_losses(losses)
        # detached: averaging over steps must not keep every step's graph
        log_vars = {k: v.detach() for k, v in log_vars.items()}
        if not torch.isfinite(loss):
            parts = {k: float(v) for k, v in log_vars.items()}
            raise FloatingPointError(
                f'the {phase} loss became {float(loss)} (components: {parts})'
                '; lower the learning rates or loss weights, or check the '
                'teacher checkpoint')
        return loss, {f'{phase}.{k}': v for k, v in log_vars.items()}

    # ------------------------------------------------------- val and test
    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            raise RuntimeError(
                'data-free algorithms have no supervised loss on real data; '
                'they train through train_step on latent batches')
        if mode == 'tensor':
            return self.architecture(inputs, mode='tensor')
        if mode != 'predict':
            raise ValueError(f'invalid mode {mode!r}')
        results = self.architecture(inputs, data_samples, mode='predict')
        if self.predict_with_teacher:
            teacher = next(iter(self.teachers.values()))
            teacher_labels = teacher(inputs, mode='tensor').argmax(dim=1)
            for sample, label in zip(results, teacher_labels):
                sample.set_field(label.view(1), 'teacher_pred_label')
        return results
