"""The shared data-free distillation loop."""
from collections import defaultdict
from contextlib import nullcontext
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.dist import broadcast, get_world_size
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from torch import nn

from mmdfkd.registry import MODELS
from mmdfkd.utils.checkpoint import load_teacher_weights
from ..generators.noisy_layer import NoisyLinear
from ..losses import BNStatisticsLoss
from ..utils import (build_classifier, frozen_parameters, module_mode,
                     unwrap_model)

SyntheticBatch = Dict[str, torch.Tensor]


class TeacherRecords(NamedTuple):
    """The student distiller's teacher records from the teacher forward of
    a generator step, kept for a student step on the same batch (DAFL).

    They are reused only for the very tensor ``images`` (the detached
    batch), unchanged since (``version``: its in-place version counter)
    and under the same autocast state: an augmented, re-sampled or
    modified batch runs the teachers again.
    """
    images: torch.Tensor
    version: int
    autocast: tuple
    records: dict[str, list[Any]]


def autocast_state(device_type: str) -> tuple:
    """(enabled, dtype) of ``torch.autocast`` on ``device_type`` here."""
    if not torch.is_autocast_enabled(device_type):
        return (False, None)
    return (True, torch.get_autocast_dtype(device_type))


def _compile_probe(x: torch.Tensor) -> torch.Tensor:
    """A function for checking that a torch.compile backend works."""
    return x * 2 + 1


def reinitialize_module(module: nn.Module) -> None:
    """Draw new weights for ``module`` as its construction did:
    ``reset_parameters()`` (PyTorch's default initialisation, which also
    resets BatchNorm running statistics and re-draws noisy layers) on every
    submodule that has it, ``reset()`` for learnable inputs, and the
    module's mmengine ``init_cfg`` on top when any submodule has one
    (mmengine runs ``init_weights`` once per module, so its flags are
    cleared first)."""
    for submodule in module.modules():
        if hasattr(submodule, 'reset_parameters'):
            submodule.reset_parameters()
    if hasattr(module, 'reset'):
        module.reset()
    if hasattr(module, 'init_weights') and any(
            getattr(m, 'init_cfg', None) for m in module.modules()):
        for submodule in module.modules():
            if hasattr(submodule, '_is_init'):
                submodule._is_init = False
        # mmengine writes a per-parameter initialisation report to the log
        # on every top-level init_weights(); useful once at build time, but
        # CMI re-draws its generator every iteration and the report would
        # then dominate the log. Silenced on this instance only.
        module._dump_init_info = _no_init_report
        try:
            module.init_weights()
        finally:
            del module._dump_init_info


def _no_init_report() -> None:
    """Stand-in for ``BaseModule._dump_init_info`` during a re-draw."""


def _broadcast_from_rank0(module: nn.Module) -> None:
    """Give every DDP rank rank 0's parameters and buffers of ``module``
    (re-drawn weights differ per rank; DDP only syncs them at wrapping)."""
    if get_world_size() > 1 and not getattr(module, 'rank_local', False):
        for tensor in (*module.parameters(), *module.buffers()):
            broadcast(tensor.data, src=0)


@MODELS.register_module()
class DataFreeDistillation(BaseModel):
    """Base algorithm of every data-free method: a generator synthesises
    images that frozen teachers score, and the student (``architecture``) is
    distilled on them. No real training data is read: the train dataloader
    yields latent noise and target labels (:class:`LatentNoiseDataset`).

    One ``train_step`` runs two phases in a configurable order::

        generator phase: synthesis_loops x (one synthesis loop:
                             generator_iter x generator_step())
            images = G(z, y); losses of ``generator_distiller`` on the
            teachers (and the student, frozen) -> update G
        student phase:   student_iter x student_step()
            images = sample_student_batch(); losses of ``distiller``
            -> update the student

    **Schedule controls** (Fast, Fang et al. AAAI 2022; NAYER, Tran et al.
    CVPR 2024; CMI, Fang et al. IJCAI 2021). One iteration here is one
    "epoch" of those references (one synthesis round, then ``kd_steps``
    student steps), so their epoch counts become iteration counts:

    * ``warmup_iters``: the first iterations only synthesise (no student
      step), and the generator losses named in ``warmup_disabled_losses``
      (the adversarial term) are left out meanwhile. The student is left
      untouched: if a generator loss reads it, it runs in eval mode.
    * ``synthesis_loops`` (``warmup_synthesis_loops`` during warm-up):
      synthesised batches per iteration (NAYER's ``g_loops`` /
      ``gwp_loops``). With ``draw_per_synthesis_loop`` a loop takes one
      (latents, targets) draw that all its ``generator_iter`` steps optimise
      (a synthesised *batch*); otherwise every step draws afresh.
    * Before each loop: the generator is re-initialised
      (``reinit_generator_every_loop``, CMI), or only its optimiser state is
      cleared (``reset_generator_optimizer_every_loop``, NAYER's new Adam per
      batch), and the generator's :class:`NoisyLinear` layers are re-drawn
      from N(0, 1) (``redraw_noisy_layers``, NAYER). After each loop the
      running averages of momentum :class:`BNStatisticsLoss` terms take in
      the loop's last batch statistics.
    * ``generator_reinit_interval`` (NAYER's ``g_life``): the generator is
      re-initialised at the start of iteration t > 0 when
      ``t % g_life == 0`` or ``(t - warmup_iters) % g_life == 0`` (NAYER's
      rule). :meth:`reinitialize_generator` draws new weights, clears the
      generator optimiser's state and, with ``reset_bn_history_on_reinit``,
      the BN-loss running averages.
    * ``student_iter_increment`` (GapSSG): the student phase grows by this
      many steps per iteration, ``student_iter + student_iter_increment * t``
      at iteration t; for students that read a memory bank.

    The iteration counter ``train_iter`` is a buffer, so a resumed run
    continues the schedule where its checkpoint left it.

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
        student_iter_increment (int): Student steps added per iteration:
            iteration t (0-based, warm-up included) runs ``student_iter +
            student_iter_increment * t`` of them (GapSSG: 4 + 4t). Only for
            students that read a memory bank or the generator batch, since
            the latent batch holds a fixed number of draws. Defaults to 0.
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
        warmup_iters (int): Iterations without student steps. Defaults to 0.
        warmup_disabled_losses (Sequence[str]): Generator-distiller losses
            left out during warm-up (Fast/NAYER: the adversarial term).
        synthesis_loops (int): Synthesis loops per iteration. Defaults to 1.
        warmup_synthesis_loops (int, optional): Synthesis loops per warm-up
            iteration; defaults to ``synthesis_loops``.
        draw_per_synthesis_loop (bool): One latent draw per synthesis loop,
            shared by its ``generator_iter`` steps. Defaults to False (one
            draw per step, as in DAFL/DFAD/ZSKT).
        generator_reinit_interval (int, optional): NAYER's ``g_life`` in
            iterations; None: never. Defaults to None.
        reinit_generator_every_loop (bool): Re-initialise the generator
            before every synthesis loop (CMI). Defaults to False.
        reset_generator_optimizer_every_loop (bool): Clear the generator
            optimiser's state before every synthesis loop. Defaults to False.
        redraw_noisy_layers (bool): Re-draw the generator's noisy layers
            before every synthesis loop. Defaults to True (a no-op for
            generators without them).
        reset_bn_history_on_reinit (bool): Whether a generator
            re-initialisation also clears the running averages of momentum
            BN-statistics losses. Defaults to False: in the Fast/NAYER code
            they persist for the whole run, so that the pool of images kept
            from all generators matches the teacher's statistics.
        channels_last (bool): Store the 4-D weights of the student, the
            teachers and the generator in channels-last (NHWC) memory
            format, so that their convolutions run in it. A speed switch
            (results agree with float32 NCHW to float rounding). Defaults to
            False.
        autocast_dtype (str, optional): ``'bfloat16'``: run the training
            forward passes (generator, teachers, student and losses) under
            ``torch.autocast`` on the model's device; backward passes and
            optimiser steps stay float32 and, unlike float16, bfloat16
            needs no loss scaling. Synthetic batches are stored in float32.
            ``tools/train.py --amp`` sets it on CPU. Defaults to None
            (float32).
        compile_networks (bool | dict): Compile the student, the teachers
            and the generator with ``torch.compile`` (in place, by
            ``nn.Module.compile``: parameter names and checkpoints do not
            change); a dict is passed on as its keyword arguments, e.g.
            ``dict(backend='inductor', dynamic=False)``. Defaults to False.
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
                 student_iter_increment: int = 0,
                 generator_iter: int = 1,
                 student_train_first: bool = False,
                 reuse_generator_batch: bool = False,
                 student_train_mode_in_generator_step: bool = True,
                 generator_train_mode_in_student_step: bool = True,
                 predict_with_teacher: bool = True,
                 warmup_iters: int = 0,
                 warmup_disabled_losses: Sequence[str] = (),
                 synthesis_loops: int = 1,
                 warmup_synthesis_loops: Optional[int] = None,
                 draw_per_synthesis_loop: bool = False,
                 generator_reinit_interval: Optional[int] = None,
                 reinit_generator_every_loop: bool = False,
                 reset_generator_optimizer_every_loop: bool = False,
                 redraw_noisy_layers: bool = True,
                 reset_bn_history_on_reinit: bool = False,
                 channels_last: bool = False,
                 autocast_dtype: str | None = None,
                 compile_networks: bool | dict = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if warmup_synthesis_loops is None:
            warmup_synthesis_loops = synthesis_loops
        for name, value in (('student_iter', student_iter),
                            ('student_iter_increment',
                             student_iter_increment),
                            ('generator_iter', generator_iter),
                            ('warmup_iters', warmup_iters),
                            ('synthesis_loops', synthesis_loops),
                            ('warmup_synthesis_loops',
                             warmup_synthesis_loops)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'{name} must be a non-negative int, got '
                                 f'{value!r}')
        if generator_reinit_interval is not None and (
                not isinstance(generator_reinit_interval, int)
                or generator_reinit_interval < 1):
            raise ValueError('generator_reinit_interval must be a positive '
                             f'int or None, got {generator_reinit_interval!r}')
        if reuse_generator_batch and (student_train_first
                                      or generator_iter == 0
                                      or synthesis_loops == 0):
            raise ValueError('reuse_generator_batch needs the generator phase '
                             'to run first (student_train_first=False, '
                             'generator_iter >= 1, synthesis_loops >= 1)')
        self.architecture = build_classifier(architecture)
        self.teachers = self._build_teachers(teachers)
        self.generator = MODELS.build(generator)
        self.distiller = MODELS.build(distiller)
        self.generator_distiller = MODELS.build(generator_distiller)
        for dist in (self.distiller, self.generator_distiller):
            dist.prepare_from_student(self.architecture)
            dist.prepare_from_teacher(self.teachers)
        self.autocast_dtype = self._check_autocast_dtype(autocast_dtype)
        self._apply_speed_switches(channels_last, compile_networks)
        unknown = set(warmup_disabled_losses) - set(
            self.generator_distiller.distill_losses)
        if unknown:
            raise KeyError(
                f'warmup_disabled_losses names {sorted(unknown)}, which are '
                'not losses of generator_distiller: '
                f'{sorted(self.generator_distiller.distill_losses)}')
        if warmup_iters and set(warmup_disabled_losses) == set(
                self.generator_distiller.distill_losses):
            raise ValueError('warmup_disabled_losses disables every '
                             'generator loss: nothing to synthesise with')

        self.student_iter = student_iter
        self.student_iter_increment = student_iter_increment
        self.generator_iter = generator_iter
        self.student_train_first = student_train_first
        self.reuse_generator_batch = reuse_generator_batch
        self.student_train_mode_in_generator_step = \
            student_train_mode_in_generator_step
        self.generator_train_mode_in_student_step = \
            generator_train_mode_in_student_step
        self.predict_with_teacher = predict_with_teacher
        self.warmup_iters = warmup_iters
        self.warmup_disabled_losses = tuple(warmup_disabled_losses)
        self.synthesis_loops = synthesis_loops
        self.warmup_synthesis_loops = warmup_synthesis_loops
        self.draw_per_synthesis_loop = draw_per_synthesis_loop
        self.generator_reinit_interval = generator_reinit_interval
        self.reinit_generator_every_loop = reinit_generator_every_loop
        self.reset_generator_optimizer_every_loop = \
            reset_generator_optimizer_every_loop
        self.redraw_noisy_layers = redraw_noisy_layers
        self.reset_bn_history_on_reinit = reset_bn_history_on_reinit
        # iterations run so far (a buffer: resumed with the checkpoint)
        self.register_buffer('train_iter', torch.zeros((), dtype=torch.long))

        # the latest synthetic batch (detached), for visualisation hooks
        self.last_synthetic_batch: Optional[torch.Tensor] = None
        self._draws: Tuple[torch.Tensor, torch.Tensor] = None
        self._next_draw = 0
        self._last_generated: Optional[SyntheticBatch] = None
        self._teacher_records: TeacherRecords | None = None

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

    @staticmethod
    def _check_autocast_dtype(name: str | None) -> torch.dtype | None:
        if name is None:
            return None
        if name != 'bfloat16':
            raise ValueError(
                f'autocast_dtype must be None or \'bfloat16\', got {name!r}'
                '; float16 needs loss scaling: use mmengine\'s '
                'AmpOptimWrapper (tools/train.py --amp on CUDA)')
        return torch.bfloat16

    def _apply_speed_switches(self, channels_last: bool,
                              compile_networks: bool | dict) -> None:
        """channels_last weights and ``torch.compile``, after the recorders'
        hooks are in place (compiled code runs them)."""
        networks = [self.architecture, self.generator,
                    *self.teachers.values()]
        if channels_last:
            for network in networks:
                network.to(memory_format=torch.channels_last)
        if compile_networks is False:
            return
        if compile_networks is True:
            compile_networks = {}
        if not isinstance(compile_networks, dict):
            raise TypeError('compile_networks must be a bool or a dict of '
                            'torch.compile arguments, got '
                            f'{compile_networks!r}')
        try:  # a backend that cannot run here fails now, with the reason
            torch.compile(_compile_probe, **compile_networks)(torch.ones(2))
        except Exception as error:
            raise RuntimeError(
                f'compile_networks={compile_networks!r}: torch.compile does '
                f'not work here ({type(error).__name__}: {error}). Its '
                'default backend, inductor, needs a C++ compiler on CPU (and '
                'triton on CUDA); pick another backend, e.g. '
                "compile_networks=dict(backend='aot_eager'), or set "
                'compile_networks=False') from error
        for network in networks:
            network.compile(**compile_networks)

    def training_autocast(self):
        """The autocast context of the training forward passes
        (``autocast_dtype``), or a no-op."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.train_iter.device.type,
                              dtype=self.autocast_dtype)

    def _stored_precision(self, images: torch.Tensor) -> torch.Tensor:
        # synthetic batches stay float32 under autocast (memory banks and
        # hooks use them outside it); the networks cast them again
        return images if self.autocast_dtype is None else images.float()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Map [0, 1] synthetic pixels to the networks' input space, as the
        data preprocessor maps real images: 255 x, then (x - mean) / std
        when it normalises."""
        images = images * 255
        mean = getattr(self.data_preprocessor, 'mean', None)
        std = getattr(self.data_preprocessor, 'std', None)
        if mean is not None and std is not None:
            images = (images - mean) / std
        return images

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
    # Set by CollapseGuardHook: a non-finite loss then ends the iteration
    # (the step that produced it makes no update) and its message is left
    # in ``last_nonfinite_loss`` for the hook to act on, instead of raised.
    catch_nonfinite_loss = False
    last_nonfinite_loss: Optional[str] = None

    def train_step(self, data: dict, optim_wrapper) -> Dict[str, torch.Tensor]:
        data = self.data_preprocessor.cast_data(data)
        self._set_draws(data)
        self.teachers.eval()
        if self._generator_reinit_due():
            self.reinitialize_generator(optim_wrapper['generator'])
        phases = [self.generator_phase]
        if not self.in_warmup:  # warm-up: synthesis only
            phases.append(self.student_phase)
        if self.student_train_first:
            phases.reverse()
        log_vars: Dict[str, torch.Tensor] = {}
        try:
            for phase in phases:
                log_vars.update(phase(optim_wrapper))
        except FloatingPointError as error:
            if not self.catch_nonfinite_loss:
                raise
            self.last_nonfinite_loss = str(error)
        self.train_iter.add_(1)
        return log_vars

    # ---------------------------------------------------- schedule controls
    @property
    def in_warmup(self) -> bool:
        """Whether the current iteration is a warm-up (synthesis-only) one."""
        return int(self.train_iter) < self.warmup_iters

    @property
    def current_student_iter(self) -> int:
        """Student steps of the current iteration."""
        return (self.student_iter
                + self.student_iter_increment * int(self.train_iter))

    @property
    def current_synthesis_loops(self) -> int:
        return (self.warmup_synthesis_loops
                if self.in_warmup else self.synthesis_loops)

    def _generator_reinit_due(self) -> bool:
        t, life = int(self.train_iter), self.generator_reinit_interval
        return life is not None and t > 0 and (
            t % life == 0 or (t - self.warmup_iters) % life == 0)

    def reinitialize_generator(self,
                               optim_wrapper=None,
                               reset_bn_history: Optional[bool] = None
                               ) -> None:
        """Draw new generator weights as its construction did (see
        :func:`reinitialize_module`), identical on every DDP rank, clear the
        state of the generator's optimiser (``optim_wrapper``, if given)
        and, if ``reset_bn_history`` (default:
        ``reset_bn_history_on_reinit``), the running averages of the
        momentum BN-statistics losses."""
        generator = unwrap_model(self.generator)
        reinitialize_module(generator)
        _broadcast_from_rank0(generator)
        if optim_wrapper is not None:
            optim_wrapper.optimizer.state.clear()
        if reset_bn_history is None:
            reset_bn_history = self.reset_bn_history_on_reinit
        if reset_bn_history:
            for loss in self.bn_momentum_losses():
                loss.reset_history()

    def redraw_generator_noise(self) -> None:
        """Re-draw every :class:`NoisyLinear` layer of the generator from
        N(0, 1) with zero bias (NAYER), identical on every DDP rank."""
        layers = [
            m for m in unwrap_model(self.generator).modules()
            if isinstance(m, NoisyLinear)
        ]
        for layer in layers:
            layer.redraw()
            _broadcast_from_rank0(layer)

    def bn_momentum_losses(self) -> List[BNStatisticsLoss]:
        """The generator losses that keep running BN statistics."""
        return [
            m for m in self.generator_distiller.modules()
            if isinstance(m, BNStatisticsLoss) and m.momentum is not None
        ]

    def begin_synthesis_loop(self, optim_wrapper) -> None:
        """Hook run before each synthesis loop (one synthesised batch)."""
        if self.reinit_generator_every_loop:
            self.reinitialize_generator(optim_wrapper)
        elif self.reset_generator_optimizer_every_loop:
            optim_wrapper.optimizer.state.clear()
        if self.redraw_noisy_layers:
            self.redraw_generator_noise()

    def end_synthesis_loop(self) -> None:
        """Hook run after each synthesis loop: the momentum BN losses fold
        the loop's last batch statistics into their running averages."""
        for loss in self.bn_momentum_losses():
            loss.update_history()

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
        """Latent draws one iteration consumes at most (LatentNoiseDataset's
        ``num_draws`` must be at least this)."""
        per_loop = 1 if self.draw_per_synthesis_loop else self.generator_iter
        if self.student_iter_increment and not self.reuse_generator_batch:
            raise ValueError(
                'student_iter_increment grows the student steps, but each of '
                'them draws fresh latents and the latent batch holds a fixed '
                'number of draws: use it with a student that reads a memory '
                'bank (e.g. FastDistillation) or reuse_generator_batch')
        student = 0 if self.reuse_generator_batch else self.student_iter
        draws = self.synthesis_loops * per_loop + student
        if self.warmup_iters:  # no student draws during warm-up
            draws = max(draws, self.warmup_synthesis_loops * per_loop)
        return draws

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
        wrapper = optim_wrapper['generator']
        step_logs = []
        for _ in range(self.current_synthesis_loops):
            self.begin_synthesis_loop(wrapper)
            step_logs.extend(self.synthesis_loop(wrapper))
            self.end_synthesis_loop()
        return self.mean_log_vars(step_logs)

    def synthesis_loop(self, optim_wrapper) -> List[Dict[str, torch.Tensor]]:
        """``generator_iter`` generator steps: on one shared draw with
        ``draw_per_synthesis_loop``, else on a fresh draw each."""
        draw = self.next_draw() if self.draw_per_synthesis_loop else None
        step_logs = []
        for _ in range(self.generator_iter):
            latents, targets = draw or self.next_draw()
            step_logs.append(
                self.generator_step(latents, targets, optim_wrapper))
        return step_logs

    def student_phase(self, optim_wrapper) -> Dict[str, torch.Tensor]:
        step_logs = [
            self.student_step(self.sample_student_batch(),
                              optim_wrapper['architecture'])
            for _ in range(self.current_student_iter)
        ]
        return self.mean_log_vars(step_logs)

    def forward_teachers(self, images: torch.Tensor) -> None:
        """Run every teacher on ``images`` (their recorders capture what the
        losses need). Must depend on ``images`` only: a student step on a
        generator step's batch reuses the records of that step's call."""
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
        with optim_wrapper.optim_context(
                self.generator), self.training_autocast():
            images = self._stored_precision(self.generate(latents, targets))
            batch = self.select_samples(
                dict(images=images, targets=targets, latents=latents))
            # a student step on this batch (reuse_generator_batch) needs the
            # same teacher outputs: record them for its distiller as well
            student_records = (self.distiller.teacher_recorders
                               if self.reuse_generator_batch else nullcontext())
            with dist.teacher_recorders, student_records:
                self.forward_teachers(batch['images'])
            teacher_autocast = autocast_state(batch['images'].device.type)
            if dist.needs_student:
                # warm-up leaves the student untouched: no BN-statistics
                # updates from synthesis batches before it is trained
                train_mode = (self.student_train_mode_in_generator_step
                              and not self.in_warmup)
                with frozen_parameters(student), module_mode(
                        student, train_mode), dist.student_recorders:
                    student(batch['images'], mode='tensor')
            losses = dist.compute_distill_losses(batch)
            if self.in_warmup:
                for name in self.warmup_disabled_losses:
                    losses.pop(name)
        loss, log_vars = self._parse_and_check(losses, 'generator')
        optim_wrapper.update_params(loss)
        detached = {k: v.detach() for k, v in batch.items()}
        self._last_generated = detached
        if self.reuse_generator_batch:
            images = detached['images']
            self._teacher_records = TeacherRecords(
                images, images._version, teacher_autocast,
                self.distiller.detach_teacher_records())
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
        with torch.no_grad(), self.training_autocast(), module_mode(
                generator, self.generator_train_mode_in_student_step):
            images = self._stored_precision(generator(latents, targets))
        batch = self.select_samples(
            dict(images=images, targets=targets, latents=latents))
        self.last_synthetic_batch = batch['images']
        return batch

    def student_step(self, batch: SyntheticBatch,
                     optim_wrapper) -> Dict[str, torch.Tensor]:
        """One distillation step of the student on ``batch``."""
        with optim_wrapper.optim_context(
                self.architecture), self.training_autocast():
            if not self.reuse_teacher_records(batch['images']):
                with torch.no_grad(), self.distiller.teacher_recorders:
                    self.forward_teachers(batch['images'])
            with self.distiller.student_recorders:
                self.architecture(batch['images'], mode='tensor')
            losses = self.distiller.compute_distill_losses(batch)
        loss, log_vars = self._parse_and_check(losses, 'student')
        optim_wrapper.update_params(loss)
        return log_vars

    def reuse_teacher_records(self, images: torch.Tensor) -> bool:
        """Load the distiller's teacher records of the generator step that
        produced ``images`` (the teachers are frozen and in eval mode, so a
        second forward would return the same numbers) and return True; or
        return False if ``images`` are not that step's batch as it was
        recorded (other tensor, modified in place, other autocast state),
        and the teachers must run."""
        cached = self._teacher_records
        if (cached is None or images is not cached.images
                or images._version != cached.version
                or autocast_state(images.device.type) != cached.autocast):
            return False
        self.distiller.load_teacher_records(cached.records)
        return True

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
            for sample, label in zip(results, teacher_labels, strict=True):
                sample.set_field(label.view(1), 'teacher_pred_label')
        return results
