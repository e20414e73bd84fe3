"""A bounded, checkpointed pool of synthetic images for the student phase."""
import logging
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from torch import nn

from mmdfkd.registry import MODELS
from .disk_shard_storage import COUNTER_NAMES, DiskShardStorage

# independent random streams of a bank (mixed with seed, rank and a counter)
_RESERVOIR_STREAM = 1
_SAMPLE_STREAM = 2
_DTYPES = {'float32': torch.float32, 'float16': torch.float16}
_STATE_FORMAT = 1


@MODELS.register_module()
class SyntheticMemoryBank(nn.Module):
    """A bounded pool of synthetic images (and their target labels) from
    which the student samples its batches.

    DeepInversion, CMI, Fast and NAYER store every synthesised image as a
    PNG and rebuild a DataLoader over the whole folder after each batch: the
    pool grows without bound, every rebuild is slower than the last, images
    are quantised to uint8 and stale files of an earlier run in the same
    folder leak into the new one. This bank keeps tensors instead, with a
    bounded ``capacity`` and a replacement policy:

    * ``'fifo'``: a ring buffer, the oldest entry is overwritten first.
    * ``'reservoir'``: reservoir sampling (Vitter's algorithm R): the n-th
      image ever added (0-based) takes a free slot while there is one, and
      afterwards replaces slot j ~ U{0..n} if j < capacity, so every image
      added so far is in the pool with the same probability
      ``capacity / num_seen``.

    Within one :meth:`add` entries are processed in order (a later image
    overwriting the same slot wins). :meth:`sample` draws uniformly from the
    stored entries.

    **Randomness.** Reservoir decisions and samples come from the bank's own
    random streams (numpy PCG64 seeded with ``(seed, rank, stream,
    counter)``, where the counter is the number of adds / sample calls so
    far), not from the global RNG. The counters are buffers, so a resumed run
    continues both streams exactly where the checkpoint left them.

    **Checkpoints.** The counters (``num_stored``, ``write_pos``,
    ``num_seen``, ``num_adds``, ``num_samples``) are buffers of the module and
    the configuration (policy, storage, shard layout, rank) is its extra
    state, so both travel with the model's ``state_dict`` and mmengine's
    ``--resume`` restores them.

    * ``storage='memory'``: the images and targets are buffers too, saved in
      every checkpoint and moved to the model's device.
    * ``storage='disk'``: for pools larger than RAM, the images live in
      memory-mapped ``.npy`` shards of ``shard_size`` slots under
      ``storage_dir`` (see :class:`DiskShardStorage`), and the checkpoint
      carries only the counters and the shard metadata. Shards are written
      in place behind a write-ahead undo log, so resuming from a checkpoint
      rolls back whatever was added after it and the resumed run samples
      exactly the checkpoint's pool. A fresh run (nothing resumed) deletes
      the bank files it finds in its folder before its first add. Files are
      touched lazily, on the first :meth:`add`/:meth:`sample` after
      construction or loading, so merely loading a checkpoint for testing
      never modifies them.

    **DDP.** Every rank keeps its own part of the pool (``capacity`` entries
    per rank), fills it with the batches it synthesised and samples only
    from it; the random streams include the rank. With ``storage='disk'``
    each rank writes under ``storage_dir/rank<r>of<world_size>/`` and on
    resume each rank rewinds its own files to the checkpoint's add count (the
    ranks add in lock step), so every rank gets its own pool back. With
    ``storage='memory'`` the checkpoint (written by rank 0 only, as mmengine
    does) holds rank 0's part: on resume every rank restarts from rank 0's
    pool and diverges again with its next adds; a warning says so. Use disk
    storage when per-rank pools must resume exactly.

    Args:
        capacity (int): Maximum number of entries (per rank).
        image_shape (Sequence[int]): (C, H, W) of the stored images.
        policy (str): ``'fifo'`` or ``'reservoir'``. Defaults to 'fifo'.
        storage (str): ``'memory'`` or ``'disk'``. Defaults to 'memory'.
        storage_dir (str, optional): Folder of the shards (disk storage),
            e.g. ``'work_dirs/<config>/memory_bank'``.
        shard_size (int): Slots per shard file (disk storage).
            Defaults to 4096.
        dtype (str): ``'float32'`` or ``'float16'`` for the stored images
            (sampled batches are float32). Defaults to 'float32'.
        seed (int): Seed of the bank's random streams. Defaults to 0.
        undo_capacity (int, optional): Rows the on-disk undo log keeps, i.e.
            how far back a checkpoint can be restored. Defaults to
            ``capacity``.
        rank (int, optional): DDP rank; defaults to the current one.
        world_size (int, optional): DDP world size; defaults to the current
            one.
    """

    def __init__(self,
                 capacity: int,
                 image_shape: Sequence[int],
                 policy: str = 'fifo',
                 storage: str = 'memory',
                 storage_dir: Optional[str] = None,
                 shard_size: int = 4096,
                 dtype: str = 'float32',
                 seed: int = 0,
                 undo_capacity: Optional[int] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        super().__init__()
        if capacity <= 0:
            raise ValueError(f'capacity must be positive, got {capacity}')
        if policy not in ('fifo', 'reservoir'):
            raise ValueError(
                f"policy must be 'fifo' or 'reservoir', got {policy!r}")
        if storage not in ('memory', 'disk'):
            raise ValueError(
                f"storage must be 'memory' or 'disk', got {storage!r}")
        if dtype not in _DTYPES:
            raise ValueError(
                f'dtype must be one of {sorted(_DTYPES)}, got {dtype!r}')
        if seed < 0:
            raise ValueError(f'seed must be non-negative, got {seed}')
        if storage == 'disk' and not storage_dir:
            raise ValueError(
                "storage='disk' needs a storage_dir, e.g. "
                "'{work_dir}/memory_bank'")
        if storage_dir and '{work_dir}' in storage_dir:
            # tools/train.py and tools/test.py expand it
            # (mmdfkd.utils.config_checks.expand_work_dir); a model built
            # elsewhere would otherwise write to a folder named {work_dir}
            raise ValueError(
                f'storage_dir {storage_dir!r} still holds the {{work_dir}} '
                'placeholder: build the model through tools/train.py, or '
                'call mmdfkd.utils.config_checks.expand_work_dir(cfg) '
                'after setting cfg.work_dir')
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = (
            dist_world_size if world_size is None else world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f'rank {self.rank} is not in [0, world_size='
                             f'{self.world_size})')
        self.capacity = capacity
        self.image_shape = tuple(int(s) for s in image_shape)
        self.policy = policy
        self.storage = storage
        self.dtype = dtype
        self.seed = seed

        if storage == 'memory':
            self.register_buffer(
                'images',
                torch.zeros(capacity, *self.image_shape,
                            dtype=_DTYPES[dtype]))
            self.register_buffer('targets',
                                 torch.zeros(capacity, dtype=torch.long))
            self.disk: Optional[DiskShardStorage] = None
        else:
            self.disk = DiskShardStorage(
                osp.join(storage_dir,
                         f'rank{self.rank}of{self.world_size}'),
                capacity=capacity,
                image_shape=self.image_shape,
                dtype=dtype,
                shard_size=shard_size,
                undo_capacity=(capacity
                               if undo_capacity is None else undo_capacity))
        for name in COUNTER_NAMES + ('num_samples', ):
            self.register_buffer(name, torch.zeros((), dtype=torch.long))
        # disk storage: files are reconciled with the counters on first use
        self._disk_ready = False
        self._restored_rank: Optional[int] = None

    def extra_repr(self) -> str:
        return (f'capacity={self.capacity}, image_shape={self.image_shape}, '
                f'policy={self.policy!r}, storage={self.storage!r}, '
                f'rank={self.rank}/{self.world_size}')

    def __len__(self) -> int:
        self._prepare_disk()
        return int(self.num_stored)

    # ----------------------------------------------------------- counters
    def _counters(self) -> Dict[str, int]:
        return {name: int(getattr(self, name)) for name in COUNTER_NAMES}

    def _set_counters(self, counters: Dict[str, int]) -> None:
        for name in COUNTER_NAMES:
            getattr(self, name).fill_(int(counters[name]))

    def _rng(self, stream: int, counter: int) -> np.random.Generator:
        return np.random.default_rng(
            [self.seed, self.rank, stream, counter])

    @property
    def device(self) -> torch.device:
        return self.num_stored.device

    # ------------------------------------------------------------ storage
    def _prepare_disk(self) -> None:
        if self.disk is None or self._disk_ready:
            return
        if self._restored_rank is None:  # a fresh run
            removed = self.disk.clear()
            if removed:
                print_log(
                    f'SyntheticMemoryBank: removed {removed} file(s) of an '
                    f'earlier run from {self.disk.root}', logger='current')
        else:
            counters = self.disk.restore(int(self.num_adds))
            if (self._restored_rank == self.rank
                    and counters != self._counters()):
                raise RuntimeError(
                    f'the memory bank files in {self.disk.root} give '
                    f'{counters} after rewinding, but the checkpoint says '
                    f'{self._counters()}: they belong to another run')
            # other ranks take their own counters from their own files
            self._set_counters(counters)
        self._disk_ready = True

    def _plan_add(self, n: int) -> Tuple[np.ndarray, np.ndarray, Dict]:
        """Slots of ``n`` new entries: (indices of the kept new entries,
        their slots, counters after the add)."""
        c = self._counters()
        order = np.arange(n)
        if self.policy == 'fifo':
            slots = (c['write_pos'] + order) % self.capacity
            after = dict(
                num_stored=min(c['num_stored'] + n, self.capacity),
                write_pos=(c['write_pos'] + n) % self.capacity)
        else:
            seen = c['num_seen'] + order
            draws = self._rng(_RESERVOIR_STREAM,
                              c['num_adds']).integers(0, seen + 1)
            slots = np.where(seen < self.capacity, seen, draws)
            after = dict(
                num_stored=min(c['num_seen'] + n, self.capacity),
                write_pos=c['write_pos'])
        after.update(num_seen=c['num_seen'] + n, num_adds=c['num_adds'] + 1)
        kept = slots < self.capacity
        order, slots = order[kept], slots[kept]
        # the last entry written to a slot wins
        _, last = np.unique(slots[::-1], return_index=True)
        last = len(slots) - 1 - last
        return order[last], slots[last], after

    @torch.no_grad()
    def add(self,
            images: torch.Tensor,
            targets: Optional[torch.Tensor] = None) -> None:
        """Add a batch of images (N, C, H, W) and their targets (N, ), or
        -1 targets if ``targets`` is None (e.g. Fast stores images only)."""
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f'the memory bank stores images of shape {self.image_shape}'
                f', got a batch of shape {tuple(images.shape)}')
        n = len(images)
        if targets is None:
            targets = torch.full((n, ), -1, dtype=torch.long)
        if len(targets) != n:
            raise ValueError(f'{n} images but {len(targets)} targets')
        if n == 0:
            return
        self._prepare_disk()
        before = self._counters()
        entries, slots, after = self._plan_add(n)
        if self.disk is None:
            index = torch.from_numpy(slots).to(self.images.device)
            entries = torch.from_numpy(entries).to(images.device)
            self.images[index] = images.detach()[entries].to(
                self.images.device, self.images.dtype)
            self.targets[index] = targets.detach()[entries.to(
                targets.device)].to(self.targets.device, torch.long)
        else:
            entries_t = torch.from_numpy(entries)
            self.disk.write(
                slots,
                images.detach()[entries_t.to(images.device)].to(
                    'cpu', _DTYPES[self.dtype]).numpy(),
                targets.detach()[entries_t.to(targets.device)].to(
                    'cpu', torch.long).numpy(),
                before=before,
                after=after)
        self._set_counters(after)

    def sample(
        self,
        batch_size: int,
        return_targets: bool = True,
        replacement: bool = True
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Draw ``batch_size`` stored entries uniformly at random.

        Args:
            batch_size (int): Number of entries.
            return_targets (bool): Return ``(images, targets)`` instead of
                the images only. Defaults to True.
            replacement (bool): Draw with replacement (default); without,
                the entries of one batch are distinct as long as the pool
                holds at least ``batch_size`` of them.

        Returns:
            Tensor | tuple: float32 images (and long targets) on the bank's
            device.
        """
        stored = len(self)
        if stored == 0:
            raise RuntimeError(
                'the synthetic memory bank is empty: the student cannot '
                'sample before any synthesis step has added images (check '
                'the phase order / warm-up settings)')
        rng = self._rng(_SAMPLE_STREAM, int(self.num_samples))
        self.num_samples.add_(1)
        if replacement:
            slots = rng.integers(0, stored, size=batch_size)
        else:
            rounds = -(-batch_size // stored)
            slots = np.concatenate(
                [rng.permutation(stored) for _ in range(rounds)])[:batch_size]
        if self.disk is None:
            index = torch.from_numpy(slots).to(self.images.device)
            images, targets = self.images[index], self.targets[index]
        else:
            images, targets = (torch.from_numpy(a).to(self.device)
                               for a in self.disk.read(slots))
        images = images.float()
        return (images, targets) if return_targets else images

    # -------------------------------------------------------- state dict
    def get_extra_state(self) -> dict:
        state = dict(
            format=_STATE_FORMAT,
            capacity=self.capacity,
            image_shape=list(self.image_shape),
            policy=self.policy,
            storage=self.storage,
            dtype=self.dtype,
            seed=self.seed,
            rank=self.rank,
            world_size=self.world_size)
        if self.disk is not None:
            state.update(
                storage_dir=self.disk.root,
                shard_size=self.disk.shard_size,
                num_shards=self.disk.num_shards,
                undo_capacity=self.disk.undo_capacity,
                # before a fresh run's first add the folder may still hold
                # an earlier run's files, which are not this bank's
                shards=(self.disk.files() if self._disk_ready
                        or self._restored_rank is not None else []))
        return state

    def set_extra_state(self, state: dict) -> None:
        # called after the buffers (counters, in-memory pool) were loaded
        expected = dict(
            capacity=self.capacity,
            image_shape=list(self.image_shape),
            policy=self.policy,
            storage=self.storage,
            dtype=self.dtype)
        found = {k: state.get(k) for k in expected}
        if found != expected:
            raise RuntimeError(
                f'the checkpoint holds a memory bank with {found}, but this '
                f'one is configured with {expected}')
        self.seed = int(state['seed'])
        saved_rank = int(state['rank'])
        if self.disk is not None:
            if state.get('shard_size') != self.disk.shard_size:
                raise RuntimeError(
                    'the checkpoint memory bank used shard_size '
                    f"{state.get('shard_size')}, this one "
                    f'{self.disk.shard_size}')
            if osp.dirname(state['storage_dir']) != osp.dirname(
                    self.disk.root):
                print_log(
                    'SyntheticMemoryBank: the checkpoint stored its shards '
                    f"under {osp.dirname(state['storage_dir'])}; reading "
                    f'them from {osp.dirname(self.disk.root)}',
                    logger='current', level=logging.WARNING)
            self._restored_rank = saved_rank
            self._disk_ready = False
        elif saved_rank != self.rank:
            print_log(
                f'SyntheticMemoryBank on rank {self.rank}: the checkpoint '
                f'holds the in-memory pool of rank {saved_rank}, which this '
                "rank now starts from; use storage='disk' to resume every "
                "rank's own pool", logger='current', level=logging.WARNING)
