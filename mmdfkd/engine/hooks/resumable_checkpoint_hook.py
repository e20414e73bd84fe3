"""A CheckpointHook whose latest checkpoint can always be resumed."""
import logging
import os
import os.path as osp
from collections import OrderedDict
from typing import Callable, Dict, Mapping, Optional, Set

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn

from mmdfkd.fileio import atomic_write, stale_temporary_files
from mmdfkd.registry import HOOKS


def wrapped_children(model: nn.Module) -> Set[str]:
    """Names of the direct children of ``model`` that sit inside a model
    wrapper (``DataFreeDistributedDataParallel`` wraps the student and the
    generator in their own DDPs); their state-dict keys carry an extra
    ``<child>.module.`` level."""
    return {
        name
        for name, child in model._modules.items()
        if child is not None and (is_model_wrapper(child) or isinstance(
            child, nn.parallel.DistributedDataParallel))
    }


def _strip_wrapper_level(key: str, children: Set[str]) -> str:
    """``architecture.module.backbone.w`` -> ``architecture.backbone.w`` for
    a child in ``children``; other keys unchanged."""
    name, _, rest = key.partition('.')
    if name in children and rest.startswith('module.'):
        return f'{name}.{rest[len("module."):]}'
    return key


def _rename_keys(state_dict: Mapping, rename: Callable[[str], str]) -> dict:
    """Apply ``rename`` to the keys of a state dict and of its
    ``_metadata`` (the per-module versions ``load_state_dict`` reads)."""
    renamed = OrderedDict((rename(k), v) for k, v in state_dict.items())
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        # metadata keys are module prefixes without the trailing dot
        renamed._metadata = OrderedDict(
            (rename(f'{k}.')[:-1] if k else k, v)
            for k, v in metadata.items())
    return renamed


def portable_state_dict(state_dict: Mapping, model: nn.Module) -> dict:
    """The state dict with keys as if no child of ``model`` were wrapped,
    so that a checkpoint of an N-process run loads in 1 process and the
    other way round."""
    children = wrapped_children(model)
    if not children:
        return state_dict
    return _rename_keys(state_dict,
                        lambda k: _strip_wrapper_level(k, children))


def state_dict_for_model(state_dict: Mapping, model: nn.Module) -> dict:
    """Map the keys of a checkpoint written with or without wrapped
    children onto the wrapping of ``model`` (the inverse of
    :func:`portable_state_dict`, also accepting older wrapped keys)."""
    model_keys = set(model.state_dict().keys())
    children = wrapped_children(model)
    by_portable_key: Dict[str, str] = {
        _strip_wrapper_level(k, children): k
        for k in model_keys
    }
    all_children = set(model._modules)

    def rename(key: str) -> str:
        if key in model_keys:
            return key
        portable = _strip_wrapper_level(key, all_children)
        return by_portable_key.get(portable, key)

    return _rename_keys(state_dict, rename)


@HOOKS.register_module()
class ResumableCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` made safe to kill at any moment, with
    checkpoints that resume under any number of processes.

    What it changes, and why:

    * **Atomic files.** Checkpoints go through the ``atomic_local`` file
      backend (:class:`~mmdfkd.fileio.AtomicLocalBackend`: temporary file,
      fsync, rename) unless ``backend_args`` selects another backend, and
      ``last_checkpoint`` is replaced atomically too (mmengine writes it in
      place with ``open``). A process killed during a save leaves the
      previous checkpoint and a ``last_checkpoint`` naming it.
    * **Delete after write.** mmengine removes the oldest kept checkpoint
      (``max_keep_ckpts``) *before* writing the new one, so a kill during
      the write can leave no checkpoint at all; here it is removed only once
      the new one and ``last_checkpoint`` are on disk.
    * **Portable keys.** Under ``DataFreeDistributedDataParallel`` the
      student and the generator are DDP-wrapped children, and mmengine
      would save ``architecture.module.*`` keys that a 1-process run
      silently fails to load (a non-strict load only warns). Checkpoints are
      saved with unwrapped keys, and loaded ones are mapped onto the current
      wrapping.

    Leftover temporary files of a killed save are removed when training
    starts. Best checkpoints (``save_best``) are written atomically as well,
    but mmengine still replaces the previous best one before the write.

    Args:
        **kwargs: ``CheckpointHook`` arguments.
    """

    def before_train(self, runner) -> None:
        """Pick the atomic backend for local folders, then as
        ``CheckpointHook``; remove temporary files of a killed save."""
        out_dir = os.fspath(self.out_dir or runner.work_dir)
        if (self.backend_args is None and self.file_client_args is None
                and '://' not in out_dir):
            self.backend_args = dict(backend='atomic_local')
        super().before_train(runner)
        if is_main_process() and '://' not in str(self.out_dir):
            for path in stale_temporary_files(str(self.out_dir)):
                os.remove(path)
                print_log(
                    f'removed {path}, left by a save that was interrupted',
                    logger='current',
                    level=logging.WARNING)

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        """``CheckpointHook._save_checkpoint_with_step`` (mmengine 0.10.7),
        reordered: write, then point ``last_checkpoint`` at it, then delete
        the checkpoint that falls out of ``max_keep_ckpts``."""
        outdated: Optional[int] = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(self.last_ckpt, osp.join(runner.work_dir,
                                              'last_checkpoint'))
        if outdated is not None:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(outdated))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(path)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Save the model's weights with unwrapped (portable) keys."""
        if is_model_wrapper(runner.model):
            checkpoint['state_dict'] = portable_state_dict(
                checkpoint['state_dict'], runner.model.module)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Map the loaded weights' keys onto the current wrapping (this
        hook runs before the Runner copies them into the model)."""
        if 'state_dict' in checkpoint:
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            checkpoint['state_dict'] = state_dict_for_model(
                checkpoint['state_dict'], model)
