"""Random number generator states in checkpoints, for exact resumption."""
import logging
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmdfkd.registry import HOOKS

CHECKPOINT_KEY = 'random_states'


def get_random_states() -> dict:
    """This process's python, numpy, torch CPU and CUDA generator states.

    Only plain containers, ints, floats and tensors are used, so that the
    states load with ``torch.load(weights_only=True)`` (a numpy state holds
    a ``uint32`` array, stored here as an int64 tensor).
    """
    bit_generator, keys, pos, has_gauss, cached_gaussian = \
        np.random.get_state()
    states = dict(
        python=random.getstate(),
        numpy=dict(
            bit_generator=bit_generator,
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached_gaussian)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict) -> None:
    """Restore states returned by :func:`get_random_states`."""
    version, internal_state, gauss_next = states['python']
    random.setstate((version, tuple(internal_state), gauss_next))
    numpy_state = states['numpy']
    np.random.set_state(
        (numpy_state['bit_generator'],
         numpy_state['keys'].numpy().astype(np.uint32), numpy_state['pos'],
         numpy_state['has_gauss'], numpy_state['cached_gaussian']))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        cuda_states = states['cuda']
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            print_log(
                f'the checkpoint holds {len(cuda_states)} CUDA generator '
                f'states but {torch.cuda.device_count()} devices are '
                'visible: CUDA random states are not restored',
                logger='current',
                level=logging.WARNING)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save every rank's random generator states in checkpoints and restore
    them when a run resumes, so that it continues with the random numbers
    the uninterrupted run would have drawn.

    mmengine checkpoints hold the model, optimisers, schedulers, message
    hub and iteration counter, but no generator state: a resumed run
    re-seeds and draws other random numbers (DeepInversion's jitter, the
    memory bank's sampling, dropout). This hook stores the python, numpy,
    torch CPU and CUDA states of every rank under
    ``checkpoint['random_states']``:

    * after each train iteration it records them (in a distributed run it
      gathers every rank's, as only rank 0 writes checkpoints), and writes
      the record into the checkpoint saved after that iteration;
    * a resumed run restores its rank's states just before its first
      iteration, i.e. after everything that differs between a fresh start
      and the uninterrupted run (model building, loading, data skipping);
    * validation draws (the val dataloader draws its base seed from
      torch's generator) are isolated: the states are put back after every
      validation, so an uninterrupted run and a run resumed from a
      checkpoint written before that validation stay in step.

    A checkpoint of N ranks resumed on another number of ranks restores the
    states of the ranks that exist, with a warning.

    The default priority ``LOW`` runs after hooks that may draw random
    numbers after an iteration (e.g. ``CollapseGuardHook`` re-initialising
    the generator) and before ``CheckpointHook`` (``VERY_LOW``).
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._recorded: Optional[List[dict]] = None
        self._to_restore: Optional[List[dict]] = None
        self._restore_at_iter: Optional[int] = None
        self._before_val: Optional[dict] = None

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Record every rank's states (a collective in distributed runs)."""
        states = get_random_states()
        self._recorded = (
            all_gather_object(states) if get_world_size() > 1 else [states])

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the states recorded after the last train iteration."""
        if self._recorded is not None:
            checkpoint[CHECKPOINT_KEY] = self._recorded

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the loaded states until the first resumed iteration (a
        ``load_from`` without resuming starts at iteration 0 and never
        reaches the checkpoint's iteration, so nothing is restored)."""
        states = checkpoint.get(CHECKPOINT_KEY)
        if states is None:
            print_log(
                'the checkpoint holds no random generator states (written '
                'without RandomStateHook): a resumed run draws other random '
                'numbers than the uninterrupted one would have',
                logger='current',
                level=logging.WARNING)
            return
        self._to_restore = states
        self._restore_at_iter = checkpoint.get('meta', {}).get('iter')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Restore this rank's states before the first resumed iteration."""
        if self._to_restore is None:
            return
        states, self._to_restore = self._to_restore, None
        if runner.iter != self._restore_at_iter:
            return  # loaded with load_from, not resumed
        rank, world_size = get_rank(), get_world_size()
        if len(states) != world_size:
            print_log(
                f'the checkpoint holds the random states of {len(states)} '
                f'rank(s) and this run has {world_size}: '
                + ('restoring those of the existing ranks'
                   if rank < len(states) else
                   f'rank {rank} keeps fresh states'),
                logger='current',
                level=logging.WARNING)
        if rank < len(states):
            set_random_states(states[rank])

    def before_val_epoch(self, runner) -> None:
        """Remember the training states before validation draws any."""
        self._before_val = get_random_states()

    def after_val_epoch(self, runner, metrics=None) -> None:
        """Put the training states back after validation."""
        if self._before_val is not None:
            set_random_states(self._before_val)
            self._before_val = None
