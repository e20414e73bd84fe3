"""Detect collapsed or diverged data-free training and act on it."""
import logging
import math
import os.path as osp
from collections import deque
from typing import Deque, List, Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn

from mmdfkd.models.utils import module_mode, unwrap_model
from mmdfkd.registry import HOOKS
from mmdfkd.utils.checkpoint import load_checkpoint_file
from .resumable_checkpoint_hook import state_dict_for_model

CHECKPOINT_KEY = 'collapse_guard'
ACTIONS = ('warn', 'reinit_generator', 'rollback', 'stop')
# when several metrics fail at once, the most drastic action is taken
_SEVERITY = {action: i for i, action in enumerate(ACTIONS)}


class TrainingCollapseError(RuntimeError):
    """Raised by :class:`CollapseGuardHook` to stop a collapsed run."""


def _nonfinite_tensors(module: nn.Module) -> List[str]:
    """Names of the parameters and buffers of ``module`` holding NaN/Inf."""
    return [
        name for name, tensor in (*module.named_parameters(),
                                  *module.named_buffers())
        if tensor.is_floating_point() and not torch.isfinite(tensor).all()
    ]


@HOOKS.register_module()
class CollapseGuardHook(Hook):
    """Watch a data-free run for divergence and mode collapse, log what it
    watches, and act per metric: ``'warn'``, ``'reinit_generator'``,
    ``'rollback'`` or ``'stop'``.

    A data-free run has no training data to validate on, and its failures
    can look like normal training (TA-DFKD, "Teacher as a Lenient Expert",
    AAAI 2024, documents DAFL/DFAD/CMI runs collapsing with some
    teachers). Watched:

    * **non-finite loss** (every iteration): a NaN/Inf loss of the
      generator or student phase. The hook sets the algorithm's
      ``catch_nonfinite_loss``, so the step that produced it makes no
      update and the iteration ends; the hook then acts.
    * **class entropy** (every ``interval`` iterations): the teacher's
      predicted classes on the latest synthetic batch
      (``last_synthetic_batch``) are counted over the last ``window``
      checked batches; with ``p_c`` the share of class ``c`` among ``C``
      classes the metric is the normalised entropy
      ``H = -sum_c p_c log p_c / log C`` in [0, 1]: 1 for balanced
      classes, 0 when the generator only produces one class.
    * **agreement** (every ``interval`` iterations): the share of the latest
      synthetic batch on which the student's top-1 class equals the
      teacher's. A student that stops following the teacher (divergence)
      drops towards chance.

    Both networks score the batch in eval mode without gradients, so the
    check changes neither weights, BN statistics nor random states. The
    metrics are logged as ``collapse_guard/class_entropy``,
    ``collapse_guard/agreement`` and ``collapse_guard/nonfinite_loss``.

    Actions:

    * ``'warn'``: log a warning and go on.
    * ``'reinit_generator'``: draw new generator weights and clear its
      optimiser state (e.g. Adam moments that keep pushing into the
      collapsed mode), with the algorithm's ``reinitialize_generator``.
    * ``'rollback'``: load model and optimiser states from the last
      checkpoint saved while every check passed (the iteration counter and
      schedules go on). Needs a checkpoint hook; every rank reads the file.
    * ``'stop'``: raise :class:`TrainingCollapseError` naming the metric,
      its value, the threshold and the iteration.

    After ``max_recoveries`` re-initialisations or rollbacks the next one
    stops the run instead: a run that keeps collapsing needs another
    recipe. If a non-finite loss has already corrupted the student (its BN
    statistics see the images before the loss is computed), ``'warn'`` and
    ``'reinit_generator'`` cannot help and the run stops.

    In distributed runs the metrics are reduced over all ranks, so every
    rank takes the same action. A non-finite loss is not caught there (one
    rank skipping an update would desynchronise DDP): it still stops the
    run through the algorithm's ``FloatingPointError``.

    Example:
        >>> default_hooks = dict(collapse_guard=dict(
        ...     type='CollapseGuardHook', interval=10, window=10,
        ...     nonfinite_action='rollback',
        ...     min_class_entropy=0.3, class_entropy_action='reinit_generator',
        ...     min_agreement=0.2, agreement_action='warn', begin=500))

    Args:
        interval (int): Check diversity and agreement every ``interval``
            iterations. Defaults to 1.
        window (int): Number of recent checked batches the class histogram
            covers. Defaults to 10.
        begin (int): No diversity/agreement action before this many
            iterations (metrics are still logged): a fresh student agrees
            with the teacher only by chance. Defaults to 0.
        nonfinite_action (str): Action on a non-finite loss. Defaults to
            ``'stop'``.
        min_class_entropy (float, optional): Act when the normalised class
            entropy is below this. None: only log it.
        class_entropy_action (str): Defaults to ``'warn'``.
        min_agreement (float, optional): Act when the agreement is below
            this. None: only log it.
        agreement_action (str): Defaults to ``'warn'``.
        max_recoveries (int): Re-initialisations plus rollbacks allowed in
            a run. Defaults to 3.
        teacher (str, optional): Name of the teacher that scores the
            batches. Defaults to the first one.
    """

    priority = 'ABOVE_NORMAL'  # acts before logging and checkpointing

    def __init__(self,
                 interval: int = 1,
                 window: int = 10,
                 begin: int = 0,
                 nonfinite_action: str = 'stop',
                 min_class_entropy: Optional[float] = None,
                 class_entropy_action: str = 'warn',
                 min_agreement: Optional[float] = None,
                 agreement_action: str = 'warn',
                 max_recoveries: int = 3,
                 teacher: Optional[str] = None) -> None:
        for name, value in (('interval', interval), ('window', window)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f'{name} must be a positive int, got {value!r}')
        if not isinstance(begin, int) or begin < 0:
            raise ValueError(
                f'begin must be a non-negative int, got {begin!r}')
        if not isinstance(max_recoveries, int) or max_recoveries < 0:
            raise ValueError('max_recoveries must be a non-negative int, got '
                             f'{max_recoveries!r}')
        for name, action in (('nonfinite_action', nonfinite_action),
                             ('class_entropy_action', class_entropy_action),
                             ('agreement_action', agreement_action)):
            if action not in ACTIONS:
                raise ValueError(
                    f'{name} must be one of {ACTIONS}, got {action!r}')
        for name, threshold in (('min_class_entropy', min_class_entropy),
                                ('min_agreement', min_agreement)):
            if threshold is not None and not 0 <= threshold <= 1:
                raise ValueError(
                    f'{name} must lie in [0, 1], got {threshold!r}')
        self.interval = interval
        self.window = window
        self.begin = begin
        self.nonfinite_action = nonfinite_action
        self.min_class_entropy = min_class_entropy
        self.class_entropy_action = class_entropy_action
        self.min_agreement = min_agreement
        self.agreement_action = agreement_action
        self.max_recoveries = max_recoveries
        self.teacher = teacher

        self.histograms: Deque[torch.Tensor] = deque(maxlen=window)
        self.recoveries = 0
        # (iteration, metric, value, action) of every triggered check
        self.events: List[Tuple[int, str, float, str]] = []
        self.good_checkpoint: Optional[str] = None
        self._healthy = True  # state after this iteration may be saved
        self._seen_checkpoint: Optional[str] = None
        self._loaded: Optional[dict] = None

    # ------------------------------------------------------------ set-up
    @staticmethod
    def _algorithm(runner) -> nn.Module:
        return runner.model.module if is_model_wrapper(
            runner.model) else runner.model

    def before_train(self, runner) -> None:
        """Let the algorithm hand non-finite losses over (single process),
        and take the guard's state over from a resumed checkpoint."""
        model = self._algorithm(runner)
        if not hasattr(model, 'last_synthetic_batch'):
            raise TypeError(
                f'{type(self).__name__} watches data-free distillation '
                f'algorithms; {type(model).__name__} has no '
                '`last_synthetic_batch`')
        if hasattr(model, 'catch_nonfinite_loss'):
            # a rank that skipped its update would leave the others waiting
            # in DDP's gradient all-reduce: with several processes a
            # non-finite loss raises, and torchrun stops every rank
            model.catch_nonfinite_loss = get_world_size() == 1
        self._seen_checkpoint = runner.message_hub.get_info('last_ckpt')
        loaded, self._loaded = self._loaded, None
        if loaded is not None and loaded['iter'] == runner.iter:
            self.histograms.extend(loaded['histograms'])
            self.recoveries = loaded['recoveries']
            self.good_checkpoint = loaded['good_checkpoint']
            if loaded['healthy'] and self._seen_checkpoint:
                self.good_checkpoint = self._seen_checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(
            histograms=list(self.histograms),
            recoveries=self.recoveries,
            good_checkpoint=self.good_checkpoint,
            healthy=self._healthy)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the saved guard state; it is taken over in ``before_train``
        if the run resumes at the checkpoint's iteration."""
        if CHECKPOINT_KEY in checkpoint:
            self._loaded = dict(
                checkpoint[CHECKPOINT_KEY],
                iter=checkpoint.get('meta', {}).get('iter'))

    # ------------------------------------------------------------ checks
    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        model = self._algorithm(runner)
        iteration = runner.iter + 1
        self._track_good_checkpoint(runner)
        triggered = []  # (metric, value, threshold, action, cause)

        nonfinite = model.last_nonfinite_loss
        runner.message_hub.update_scalar('train/collapse_guard/nonfinite_loss',
                                         float(nonfinite is not None))
        if nonfinite is not None:
            model.last_nonfinite_loss = None
            triggered.append(('loss', math.nan, 'a finite value',
                              self.nonfinite_action, nonfinite))

        # a batch from an iteration that hit a NaN loss is not measured
        if (self.every_n_train_iters(runner, self.interval)
                and nonfinite is None
                and model.last_synthetic_batch is not None):
            entropy, agreement = self._measure(model)
            runner.message_hub.update_scalar(
                'train/collapse_guard/class_entropy', entropy)
            runner.message_hub.update_scalar('train/collapse_guard/agreement',
                                             agreement)
            if iteration > self.begin:
                if (self.min_class_entropy is not None
                        and entropy < self.min_class_entropy):
                    triggered.append(
                        ('class_entropy', entropy, self.min_class_entropy,
                         self.class_entropy_action,
                         ('the generator produces too few classes (mode '
                          'collapse)')))
                if (self.min_agreement is not None
                        and agreement < self.min_agreement):
                    triggered.append(
                        ('agreement', agreement, self.min_agreement,
                         self.agreement_action,
                         ('the student no longer follows the teacher on '
                          'synthetic batches')))
            self._healthy = not triggered
        elif triggered:
            self._healthy = False
        if triggered:
            self._act(runner, model, iteration, triggered)

    @torch.no_grad()
    def _measure(self, model: nn.Module) -> Tuple[float, float]:
        """Normalised class entropy over the window and the top-1
        agreement on the latest synthetic batch (reduced over ranks)."""
        images = model.last_synthetic_batch
        teachers = model.teachers
        if self.teacher is not None and self.teacher not in teachers:
            raise KeyError(f'{type(self).__name__}: no teacher named '
                           f'{self.teacher!r}; teachers: {list(teachers)}')
        teacher = teachers[self.teacher or next(iter(teachers))]
        student = unwrap_model(model.architecture)
        with module_mode(teacher, False), module_mode(student, False):
            teacher_logits = teacher(images, mode='tensor')
            student_pred = student(images, mode='tensor').argmax(dim=1)
        num_classes = teacher_logits.shape[1]
        teacher_pred = teacher_logits.argmax(dim=1)
        histogram = torch.bincount(
            teacher_pred, minlength=num_classes).double()
        agreement = torch.stack([
            (student_pred == teacher_pred).sum().double(),
            torch.tensor(float(len(images)), device=images.device,
                         dtype=torch.double)
        ])
        if get_world_size() > 1:
            all_reduce(histogram)
            all_reduce(agreement)
        self.histograms.append(histogram.cpu())
        counts = torch.stack(list(self.histograms)).sum(dim=0)
        shares = counts / counts.sum()
        shares = shares[shares > 0]
        entropy = float(-(shares * shares.log()).sum() / math.log(num_classes))
        # max(0.0, -0.0) is 0.0: one class must not log as "-0.0000"
        return max(0.0, entropy), float(agreement[0] / agreement[1])

    def _track_good_checkpoint(self, runner) -> None:
        """A checkpoint written since the previous iteration holds the
        state that iteration's checks judged; remember it if they passed."""
        latest = runner.message_hub.get_info('last_ckpt')
        if latest != self._seen_checkpoint:
            self._seen_checkpoint = latest
            if self._healthy:
                self.good_checkpoint = latest

    # ------------------------------------------------------------ actions
    def _act(self, runner, model: nn.Module, iteration: int,
             triggered: list) -> None:
        for metric, value, threshold, action, cause in triggered:
            self.events.append((iteration, metric, value, action))
            description = self._describe(metric, value, threshold, iteration)
            print_log(
                f'{type(self).__name__}: {description} ({cause}); action: '
                f'{action}',
                logger='current',
                level=logging.WARNING)
        metric, value, threshold, action, cause = max(
            triggered, key=lambda t: _SEVERITY[t[3]])
        if action == 'stop':
            raise TrainingCollapseError(
                f'{self._describe(metric, value, threshold, iteration)} '
                f'({cause}): training stopped by {type(self).__name__} '
                "(action 'stop')")
        if action in ('reinit_generator', 'rollback'):
            if self.recoveries >= self.max_recoveries:
                raise TrainingCollapseError(
                    f'{self._describe(metric, value, threshold, iteration)} '
                    f'({cause}) again after {self.recoveries} recoveries '
                    f'(max_recoveries={self.max_recoveries}): training '
                    f'stopped by {type(self).__name__}')
            self.recoveries += 1
            if action == 'reinit_generator':
                self._reinit_generator(runner, model)
            else:
                self._rollback(runner, model, metric, iteration)
            self.histograms.clear()
            model.last_synthetic_batch = None
            self._healthy = True  # the recovered state may be saved
        corrupted = _nonfinite_tensors(unwrap_model(model.architecture))
        if corrupted:
            raise TrainingCollapseError(
                f'{self._describe(metric, value, threshold, iteration)}: the '
                f'student holds non-finite values ({", ".join(corrupted[:5])}'
                f") that action {action!r} cannot repair; use 'rollback'")

    @staticmethod
    def _describe(metric: str, value: float, threshold, iteration: int) -> str:
        if metric == 'loss':
            return (f'non-finite loss at iteration {iteration} (must be '
                    f'{threshold})')
        return (f'{metric} = {value:.4f} is below the threshold {threshold} '
                f'at iteration {iteration}')

    def _reinit_generator(self, runner, model: nn.Module) -> None:
        # the algorithm's own re-initialisation (also used by its g_life
        # schedule): construction-time init, identical on every rank
        model.reinitialize_generator(runner.optim_wrapper['generator'])
        print_log(
            f'{type(self).__name__}: generator re-initialised and its '
            'optimiser state cleared',
            logger='current',
            level=logging.WARNING)

    def _rollback(self, runner, model: nn.Module, metric: str,
                  iteration: int) -> None:
        path = self.good_checkpoint
        if path is None or not osp.isfile(path):
            raise TrainingCollapseError(
                f'{type(self).__name__} cannot roll back at iteration '
                f'{iteration} ({metric}): '
                + ('no checkpoint was saved while every check passed'
                   if path is None else f'the last good checkpoint {path} '
                   'no longer exists (raise max_keep_ckpts)'))
        checkpoint = load_checkpoint_file(path)
        model.load_state_dict(
            state_dict_for_model(checkpoint['state_dict'], model))
        if 'optimizer' in checkpoint:
            runner.optim_wrapper.load_state_dict(checkpoint['optimizer'])
        print_log(
            f'{type(self).__name__}: rolled back model and optimiser states '
            f'to {path} (iteration {checkpoint["meta"]["iter"]})',
            logger='current',
            level=logging.WARNING)
