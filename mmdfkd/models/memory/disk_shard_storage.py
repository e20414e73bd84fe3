"""On-disk storage of one rank's part of a :class:`SyntheticMemoryBank`."""
import glob
import json
import math
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

# the counters of the bank that an undo record restores, in this order
COUNTER_NAMES = ('num_stored', 'write_pos', 'num_seen', 'num_adds')
_UNDO_PATTERN = re.compile(r'^undo_(\d{9})_(\d+)\.npz$')
_FORMAT_VERSION = 1


class DiskShardStorage:
    """Slots of a memory bank kept in memory-mapped ``.npy`` shard files,
    with a write-ahead undo log so that a resumed run gets back exactly the
    pool of its checkpoint.

    Layout of ``root`` (one directory per DDP rank)::

        shard_00000_images.npy   (shard_size, C, H, W) slots 0 .. shard_size-1
        shard_00000_targets.npy  (shard_size,) int64
        shard_00001_...          the next shard_size slots, and so on
        undo_<add>_<rows>.npz    old content of the slots add number <add>
                                 overwrote, and the bank counters before it
        head.json                counters after the last completed add

    Shards are written in place, so the disk use is bounded by the capacity
    (plus the undo log). A checkpoint only records how many adds the pool
    had seen (``num_adds``); adds made after it (the run went on, then
    crashed or was stopped) are rolled back on resume by applying their undo
    records newest first. An undo record is written (atomically) before the
    slots it describes are touched, so a crash in the middle of an add is
    rolled back too. The log keeps the newest records while they hold at
    most ``undo_capacity`` rows; a checkpoint older than that cannot be
    restored and the error says so.

    Args:
        root (str): Directory of this rank's files.
        capacity (int): Number of slots.
        image_shape (Sequence[int]): (C, H, W).
        dtype (str): numpy dtype of the stored images.
        shard_size (int): Slots per shard file.
        undo_capacity (int): Rows the undo log may hold.
    """

    def __init__(self, root: str, capacity: int, image_shape: Sequence[int],
                 dtype: str, shard_size: int, undo_capacity: int) -> None:
        if shard_size <= 0:
            raise ValueError(f'shard_size must be positive, got {shard_size}')
        if undo_capacity < 0:
            raise ValueError(
                f'undo_capacity must be >= 0, got {undo_capacity}')
        self.root = osp.abspath(root)
        self.capacity = capacity
        self.image_shape = tuple(int(s) for s in image_shape)
        self.dtype = np.dtype(dtype)
        self.shard_size = shard_size
        self.undo_capacity = undo_capacity
        self.num_shards = math.ceil(capacity / shard_size)
        self._images: Dict[int, np.ndarray] = {}
        self._targets: Dict[int, np.ndarray] = {}

    # ------------------------------------------------------------- files
    def shard_files(self, shard: int) -> Tuple[str, str]:
        """Names (relative to ``root``) of a shard's image and target file."""
        return (f'shard_{shard:05d}_images.npy',
                f'shard_{shard:05d}_targets.npy')

    def _shard_rows(self, shard: int) -> int:
        return min(self.shard_size, self.capacity - shard * self.shard_size)

    def _open_shard(self, shard: int) -> Tuple[np.ndarray, np.ndarray]:
        if shard not in self._images:
            os.makedirs(self.root, exist_ok=True)
            rows = self._shard_rows(shard)
            paths = [osp.join(self.root, f) for f in self.shard_files(shard)]
            shapes = [(rows, *self.image_shape), (rows, )]
            dtypes = [self.dtype, np.dtype(np.int64)]
            arrays = []
            for path, shape, dtype in zip(paths, shapes, dtypes, strict=True):
                if osp.exists(path):
                    array = np.load(path, mmap_mode='r+')
                    if array.shape != shape or array.dtype != dtype:
                        raise RuntimeError(
                            f'memory-bank shard {path} holds {array.dtype} '
                            f'{array.shape}, expected {dtype} {shape}: it '
                            'belongs to a bank with another capacity, '
                            'image shape, dtype or shard_size')
                else:
                    # a sparse file: untouched slots take no disk space
                    array = np.lib.format.open_memmap(
                        path, mode='w+', dtype=dtype, shape=shape)
                arrays.append(array)
            self._images[shard], self._targets[shard] = arrays
        return self._images[shard], self._targets[shard]

    def _close(self) -> None:
        self._images.clear()
        self._targets.clear()

    def _undo_records(self) -> Dict[int, Tuple[str, int]]:
        """add number -> (path, rows) of every undo record on disk."""
        records = {}
        if osp.isdir(self.root):
            for name in os.listdir(self.root):
                match = _UNDO_PATTERN.match(name)
                if match:
                    records[int(match.group(1))] = (osp.join(self.root, name),
                                                    int(match.group(2)))
        return records

    def _atomic_write(self, path: str, write) -> None:
        tmp = path + '.tmp'
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _write_head(self, counters: Dict[str, int]) -> None:
        head = dict(
            format=_FORMAT_VERSION,
            capacity=self.capacity,
            image_shape=list(self.image_shape),
            dtype=self.dtype.name,
            shard_size=self.shard_size,
            counters={k: int(counters[k]) for k in COUNTER_NAMES})
        self._atomic_write(
            osp.join(self.root, 'head.json'),
            lambda f: f.write(json.dumps(head).encode()))

    def _read_head(self) -> Optional[dict]:
        path = osp.join(self.root, 'head.json')
        if not osp.isfile(path):
            return None
        with open(path) as f:
            head = json.load(f)
        layout = dict(
            capacity=self.capacity,
            image_shape=list(self.image_shape),
            dtype=self.dtype.name,
            shard_size=self.shard_size)
        found = {k: head.get(k) for k in layout}
        if found != layout:
            raise RuntimeError(
                f'the memory bank files in {self.root} were written with '
                f'{found}, but the bank is configured with {layout}')
        return head

    def clear(self) -> int:
        """Delete this rank's bank files (a fresh run must not read the
        images of an earlier run in the same folder); returns how many."""
        self._close()
        patterns = ('shard_*_images.npy', 'shard_*_targets.npy',
                    'undo_*.npz', 'undo_*.npz.tmp', 'head.json',
                    'head.json.tmp')
        removed = 0
        for pattern in patterns:
            for path in glob.glob(osp.join(self.root, pattern)):
                os.remove(path)
                removed += 1
        return removed

    # ------------------------------------------------------- read / write
    def _locate(self, slots: np.ndarray) -> List[Tuple[int, np.ndarray,
                                                       np.ndarray]]:
        """Group slots by shard: [(shard, positions in slots, rows)]."""
        shards = slots // self.shard_size
        groups = []
        for shard in np.unique(shards):
            where = np.nonzero(shards == shard)[0]
            groups.append(
                (int(shard), where, slots[where] - shard * self.shard_size))
        return groups

    def read(self, slots: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Images and targets of ``slots`` (in that order)."""
        slots = np.asarray(slots, dtype=np.int64)
        images = np.empty((len(slots), *self.image_shape), dtype=self.dtype)
        targets = np.empty(len(slots), dtype=np.int64)
        for shard, where, rows in self._locate(slots):
            shard_images, shard_targets = self._open_shard(shard)
            order = np.argsort(rows)  # sequential reads in each shard
            images[where[order]] = shard_images[rows[order]]
            targets[where[order]] = shard_targets[rows[order]]
        return images, targets

    def _write_slots(self, slots: np.ndarray, images: np.ndarray,
                     targets: np.ndarray) -> None:
        for shard, where, rows in self._locate(slots):
            shard_images, shard_targets = self._open_shard(shard)
            shard_images[rows] = images[where]
            shard_targets[rows] = targets[where]
            shard_images.flush()
            shard_targets.flush()

    def write(self, slots: np.ndarray, images: np.ndarray,
              targets: np.ndarray, before: Dict[str, int],
              after: Dict[str, int]) -> None:
        """Store ``images``/``targets`` in ``slots`` as add number
        ``before['num_adds']``, with the counters ``before`` and ``after``
        that add."""
        slots = np.asarray(slots, dtype=np.int64)
        seq = int(before['num_adds'])
        # only slots that held an entry have content worth restoring
        filled = slots[slots < int(before['num_stored'])]
        old_images, old_targets = self.read(filled)
        counters = np.array([before[k] for k in COUNTER_NAMES],
                            dtype=np.int64)
        undo_path = osp.join(self.root, f'undo_{seq:09d}_{len(filled)}.npz')
        os.makedirs(self.root, exist_ok=True)
        self._atomic_write(
            undo_path, lambda f: np.savez(
                f, slots=filled, images=old_images, targets=old_targets,
                counters=counters))
        self._write_slots(slots, images, targets)
        self._write_head(after)
        self._prune_undo_log()

    def _prune_undo_log(self) -> None:
        # keep the newest records while they fit in undo_capacity rows (and
        # always the newest one: it covers a crash before the next add)
        records = sorted(self._undo_records().items(), reverse=True)
        kept_rows = 0
        for i, (_, (path, rows)) in enumerate(records):
            kept_rows += rows
            if i > 0 and kept_rows > self.undo_capacity:
                os.remove(path)

    # ------------------------------------------------------------ resume
    def restore(self, num_adds: int) -> Dict[str, int]:
        """Roll the files back to the state after add number ``num_adds``
        and return the bank counters of that state."""
        self._close()
        if num_adds == 0:  # an empty pool: nothing to rewind
            self.clear()
            return {k: 0 for k in COUNTER_NAMES}
        head = self._read_head()
        if head is None:
            raise RuntimeError(
                f'the checkpoint holds a memory bank after {num_adds} adds, '
                f'but {self.root} has no bank files (head.json): on-disk '
                'pools are not stored in checkpoints; resume with the same '
                'storage_dir and DDP world size as the interrupted run')
        current = int(head['counters']['num_adds'])
        if current < num_adds:
            raise RuntimeError(
                f'the memory bank files in {self.root} stop after {current} '
                f'adds but the checkpoint was saved after {num_adds}: they '
                'belong to another run')
        records = self._undo_records()
        missing = [k for k in range(num_adds, current) if k not in records]
        if missing:
            raise RuntimeError(
                f'cannot rewind the on-disk memory bank in {self.root} from '
                f'{current} to {num_adds} adds: the undo records of adds '
                f'{missing[:5]}... were pruned (undo_capacity '
                f'{self.undo_capacity} rows); resume from a later checkpoint '
                'or raise undo_capacity')
        counters = {k: int(v) for k, v in head['counters'].items()}
        # newest first; a record of add number `current` exists when a crash
        # hit that add after its undo record was written
        for seq in sorted((k for k in records if k >= num_adds),
                          reverse=True):
            path = records[seq][0]
            with np.load(path) as undo:
                self._write_slots(undo['slots'], undo['images'],
                                  undo['targets'])
                counters = dict(
                    zip(COUNTER_NAMES, undo['counters'].tolist(),
                        strict=True))
            os.remove(path)
        self._write_head(counters)
        return counters

    def files(self) -> List[str]:
        """Names of the shard files that exist, relative to ``root``."""
        return sorted(
            osp.basename(p)
            for p in glob.glob(osp.join(self.root, 'shard_*.npy')))
