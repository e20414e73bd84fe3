"""Unit tests of ``SyntheticMemoryBank``: capacity, FIFO and reservoir
replacement, sampling, state_dict round trips (also through a saved and
re-loaded model), on-disk shards with rewind on resume, and per-rank parts
under (simulated) DDP."""
import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import load_state_dict as mmengine_load
from torch import nn

from mmdfkd.models.memory import DiskShardStorage, SyntheticMemoryBank
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()

SHAPE = (1, 2, 2)


def _imgs(values, shape=SHAPE):
    """Images filled with the given constants, so each image is
    identifiable by its value."""
    return torch.stack([torch.full(shape, float(v)) for v in values])


def _stored(bank):
    return bank.images[:, 0, 0, 0].tolist(), bank.targets.tolist()


def _snapshot(bank):
    """A copy of the state (a state_dict holds the live buffers; a saved
    checkpoint is a copy)."""
    return copy.deepcopy(bank.state_dict())


def _add_range(bank, start, stop):
    values = list(range(start, stop))
    bank.add(_imgs(values), torch.tensor(values))


def _pool(bank):
    """The stored (value, target) pairs, as a sorted list."""
    n = len(bank)
    slots = np.arange(n)
    if bank.disk is None:
        values, targets = bank.images[:n, 0, 0, 0], bank.targets[:n]
    else:
        values, targets = bank.disk.read(slots)
        values = torch.from_numpy(values[:, 0, 0, 0].astype(np.float32))
        targets = torch.from_numpy(targets)
    return sorted(zip(values.tolist(), targets.tolist(), strict=True))


# --------------------------------------------------------------------------
# arguments and registry
# --------------------------------------------------------------------------
@pytest.mark.parametrize('kwargs, match', [
    (dict(capacity=0), 'capacity'),
    (dict(policy='lifo'), 'policy'),
    (dict(storage='ram'), 'storage'),
    (dict(dtype='int8'), 'dtype'),
    (dict(seed=-1), 'seed'),
    (dict(storage='disk'), 'storage_dir'),
    (dict(rank=2, world_size=2), 'rank'),
])
def test_invalid_args(kwargs, match):
    cfg = dict(capacity=4, image_shape=SHAPE)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SyntheticMemoryBank(**cfg)


def test_buildable_from_registry():
    bank = MODELS.build(
        dict(type='SyntheticMemoryBank', capacity=5, image_shape=(3, 2, 2),
             policy='reservoir'))
    assert isinstance(bank, SyntheticMemoryBank)
    assert bank.images.shape == (5, 3, 2, 2)
    assert bank.policy == 'reservoir'


def test_add_checks_shapes():
    bank = SyntheticMemoryBank(4, SHAPE)
    with pytest.raises(ValueError, match='shape'):
        bank.add(torch.zeros(2, 1, 3, 3), torch.zeros(2))
    with pytest.raises(ValueError, match='targets'):
        bank.add(torch.zeros(2, *SHAPE), torch.zeros(3))


# --------------------------------------------------------------------------
# FIFO
# --------------------------------------------------------------------------
def test_fifo_capacity_bound_and_overwrite_order():
    bank = SyntheticMemoryBank(capacity=4, image_shape=SHAPE)
    assert len(bank) == 0
    bank.add(_imgs([1, 2, 3]), torch.tensor([1, 2, 3]))
    assert len(bank) == 3 and int(bank.write_pos) == 3
    assert _stored(bank) == ([1, 2, 3, 0], [1, 2, 3, 0])
    bank.add(_imgs([4, 5]), torch.tensor([4, 5]))
    # full: 5 overwrote the oldest entry, 1
    assert len(bank) == 4 and int(bank.write_pos) == 1
    assert _stored(bank) == ([5, 2, 3, 4], [5, 2, 3, 4])
    bank.add(_imgs([6, 7, 8]), torch.tensor([6, 7, 8]))
    # then 2, 3, 4 in that order
    assert len(bank) == 4 and int(bank.write_pos) == 0
    assert _stored(bank) == ([5, 6, 7, 8], [5, 6, 7, 8])
    bank.add(_imgs([9]), torch.tensor([9]))
    assert _stored(bank) == ([9, 6, 7, 8], [9, 6, 7, 8])
    assert bank.images.shape == (4, *SHAPE)
    assert int(bank.num_seen) == 9 and int(bank.num_adds) == 4


def test_fifo_add_larger_than_capacity_keeps_last():
    bank = SyntheticMemoryBank(capacity=3, image_shape=SHAPE)
    bank.add(_imgs([1]), torch.tensor([1]))
    bank.add(_imgs([10, 11, 12, 13, 14]), torch.tensor([10, 11, 12, 13, 14]))
    assert len(bank) == 3
    assert sorted(_stored(bank)[0]) == [12, 13, 14]
    assert sorted(_stored(bank)[1]) == [12, 13, 14]
    # FIFO order continues correctly: the next add overwrites 12 first
    bank.add(_imgs([20]), torch.tensor([20]))
    assert sorted(_stored(bank)[0]) == [13, 14, 20]


def test_add_detaches_and_casts():
    bank = SyntheticMemoryBank(capacity=2, image_shape=SHAPE)
    imgs = _imgs([1, 2]).double().requires_grad_(True)
    bank.add(imgs * 2, torch.tensor([1, 0], dtype=torch.int32))
    assert bank.images.dtype == torch.float32
    assert not bank.images.requires_grad
    assert bank.targets.dtype == torch.long
    assert _stored(bank) == ([2, 4], [1, 0])


def test_float16_storage_samples_float32_and_missing_targets():
    bank = SyntheticMemoryBank(capacity=4, image_shape=SHAPE, dtype='float16')
    bank.add(_imgs([0.5, 1.5]))
    assert bank.images.dtype == torch.float16
    images, targets = bank.sample(6)
    assert images.dtype == torch.float32
    assert set(images[:, 0, 0, 0].tolist()) <= {0.5, 1.5}
    assert targets.tolist() == [-1] * 6  # stored without labels


# --------------------------------------------------------------------------
# reservoir
# --------------------------------------------------------------------------
def test_reservoir_fills_free_slots_first_then_bounds_the_pool():
    bank = SyntheticMemoryBank(capacity=5, image_shape=SHAPE,
                               policy='reservoir')
    _add_range(bank, 0, 3)
    assert _stored(bank) == ([0, 1, 2, 0, 0], [0, 1, 2, 0, 0])
    _add_range(bank, 3, 40)
    assert len(bank) == 5 and int(bank.num_seen) == 40
    values, targets = _stored(bank)
    assert values == targets  # images and targets stay paired
    assert len(set(values)) == 5 and set(values) <= set(range(40))


def test_reservoir_keeps_every_item_with_equal_probability():
    """Algorithm R: after n items each one is kept with probability k/n,
    however late it came; FIFO would keep only the last k."""
    capacity, n, runs = 10, 100, 300
    counts = np.zeros(n)
    for seed in range(runs):
        bank = SyntheticMemoryBank(capacity, SHAPE, policy='reservoir',
                                   seed=seed)
        for start in range(0, n, 20):  # batches of 20
            _add_range(bank, start, start + 20)
        counts[bank.targets.numpy()] += 1
    assert counts.sum() == runs * capacity
    rate = counts / runs  # expected 0.1 for every item
    # early, middle and late items are kept equally often (std of a mean of
    # 3000 Bernoulli(0.1) draws: 0.0055)
    for part in np.split(rate, 10):
        assert abs(part.mean() - 0.1) < 0.025, part.mean()
    assert rate[:50].mean() == pytest.approx(rate[50:].mean(), abs=0.02)


def test_reservoir_is_deterministic_per_seed_and_rank():
    def pool(**kwargs):
        bank = SyntheticMemoryBank(4, SHAPE, policy='reservoir', **kwargs)
        for start in range(0, 60, 12):
            _add_range(bank, start, start + 12)
        return _stored(bank)[0]

    torch.manual_seed(0)
    a = pool(seed=3)
    torch.manual_seed(1)  # the global RNG plays no part
    assert pool(seed=3) == a
    assert pool(seed=4) != a
    assert pool(seed=3, rank=1, world_size=2) != a


# --------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------
def test_sample_shapes_content_and_pairing():
    bank = SyntheticMemoryBank(capacity=8, image_shape=(3, 4, 4))
    bank.add(_imgs([1, 2, 3], (3, 4, 4)), torch.tensor([1, 2, 3]))
    images, targets = bank.sample(16)
    assert images.shape == (16, 3, 4, 4)
    assert targets.shape == (16, ) and targets.dtype == torch.long
    # only the 3 stored entries are drawn, never the empty slots
    assert set(images[:, 0, 0, 0].tolist()) == {1.0, 2.0, 3.0}
    # image and target stay paired
    assert torch.equal(images[:, 0, 0, 0].long(), targets)
    only_images = bank.sample(5, return_targets=False)
    assert isinstance(only_images, torch.Tensor)
    assert only_images.shape == (5, 3, 4, 4)


def test_sample_is_uniform_over_stored_entries():
    bank = SyntheticMemoryBank(capacity=10, image_shape=SHAPE)
    _add_range(bank, 0, 4)
    counts = np.bincount(bank.sample(8000)[1].numpy(), minlength=4)
    assert counts.sum() == 8000
    assert np.all(np.abs(counts / 8000 - 0.25) < 0.02), counts


def test_sample_without_replacement():
    bank = SyntheticMemoryBank(capacity=10, image_shape=SHAPE)
    _add_range(bank, 0, 6)
    targets = bank.sample(6, replacement=False)[1].tolist()
    assert sorted(targets) == list(range(6))
    # more than stored: every entry once before any repeats
    targets = bank.sample(9, replacement=False)[1].tolist()
    assert sorted(targets[:6]) == list(range(6))


def test_sample_from_empty_raises():
    bank = SyntheticMemoryBank(capacity=4, image_shape=SHAPE)
    with pytest.raises(RuntimeError, match='empty'):
        bank.sample(2)


def test_samples_do_not_depend_on_the_global_rng():
    banks = [SyntheticMemoryBank(8, SHAPE) for _ in range(2)]
    for bank in banks:
        _add_range(bank, 0, 8)
    torch.manual_seed(0)
    first = banks[0].sample(10)[1]
    torch.manual_seed(99)
    assert torch.equal(banks[1].sample(10)[1], first)
    # successive calls differ (the call counter advances the stream)
    assert not torch.equal(banks[0].sample(10)[1], first)


# --------------------------------------------------------------------------
# state_dict round trips (in memory)
# --------------------------------------------------------------------------
@pytest.mark.parametrize('policy', ['fifo', 'reservoir'])
def test_state_dict_round_trip_continues_identically(policy):
    bank = SyntheticMemoryBank(capacity=4, image_shape=SHAPE, policy=policy)
    _add_range(bank, 0, 3)
    _add_range(bank, 3, 9)
    bank.sample(3)
    state = _snapshot(bank)
    assert set(state) == {
        'images', 'targets', 'num_stored', 'write_pos', 'num_seen',
        'num_adds', 'num_samples', '_extra_state'
    }
    fresh = SyntheticMemoryBank(capacity=4, image_shape=SHAPE, policy=policy)
    fresh.load_state_dict(state)
    assert _stored(fresh) == _stored(bank)
    for name in ('num_stored', 'write_pos', 'num_seen', 'num_adds',
                 'num_samples'):
        assert int(getattr(fresh, name)) == int(getattr(bank, name)), name
    # both continue identically: same replacements, same samples
    for b in (bank, fresh):
        _add_range(b, 9, 15)
    assert _stored(fresh) == _stored(bank)
    assert torch.equal(fresh.sample(7)[1], bank.sample(7)[1])


def test_load_rejects_another_configuration():
    bank = SyntheticMemoryBank(capacity=4, image_shape=SHAPE, policy='fifo')
    other = SyntheticMemoryBank(capacity=4, image_shape=SHAPE,
                                policy='reservoir')
    with pytest.raises(RuntimeError, match='reservoir'):
        other.load_state_dict(_snapshot(bank))


class _Model(nn.Module):
    """A model holding a bank, as DeepInversionDistillation does."""

    def __init__(self, **bank_kwargs):
        super().__init__()
        self.student = nn.Linear(2, 2)
        self.memory_bank = SyntheticMemoryBank(**bank_kwargs)


def test_round_trip_through_a_saved_and_loaded_model(tmp_path):
    """The path of an mmengine checkpoint: model.state_dict() saved with
    torch.save, read back with weights_only=True (as our safe loader does)
    and loaded with mmengine's load_state_dict."""
    cfg = dict(capacity=6, image_shape=SHAPE, policy='reservoir', seed=5)
    model = _Model(**cfg)
    for start in range(0, 30, 5):
        _add_range(model.memory_bank, start, start + 5)
    model.memory_bank.sample(4)
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': model.state_dict()}, path)

    resumed = _Model(**dict(cfg, seed=0))  # the seed comes from the file
    mmengine_load(resumed, torch.load(path, weights_only=True)['state_dict'],
                  strict=True)
    assert resumed.memory_bank.seed == 5
    assert _stored(resumed.memory_bank) == _stored(model.memory_bank)
    for bank in (model.memory_bank, resumed.memory_bank):
        _add_range(bank, 30, 40)
    assert _stored(resumed.memory_bank) == _stored(model.memory_bank)
    assert torch.equal(resumed.memory_bank.sample(9)[0],
                       model.memory_bank.sample(9)[0])


# --------------------------------------------------------------------------
# on-disk shards
# --------------------------------------------------------------------------
def _disk(tmp_path, **kwargs):
    cfg = dict(capacity=10, image_shape=SHAPE, storage='disk',
               storage_dir=str(tmp_path / 'bank'), shard_size=4)
    cfg.update(kwargs)
    return SyntheticMemoryBank(**cfg)


@pytest.mark.parametrize('policy', ['fifo', 'reservoir'])
def test_disk_bank_matches_memory_bank(tmp_path, policy):
    disk = _disk(tmp_path, policy=policy)
    memory = SyntheticMemoryBank(10, SHAPE, policy=policy)
    for start in range(0, 37, 6):
        for bank in (disk, memory):
            _add_range(bank, start, start + 6)
    assert len(disk) == len(memory) == 10
    assert _pool(disk) == _pool(memory)
    a, b = disk.sample(12), memory.sample(12)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # 3 shards of 4, 4 and 2 slots, memory-mapped .npy files
    root = disk.disk.root
    assert root.endswith(osp.join('bank', 'rank0of1'))
    names = disk.disk.files()
    assert names == [
        f'shard_{k:05d}_{kind}.npy' for k in range(3)
        for kind in ('images', 'targets')
    ]
    shard = np.load(osp.join(root, names[4]), mmap_mode='r')
    assert shard.shape == (2, *SHAPE)
    assert 'images' not in _snapshot(disk)  # pixels stay on disk


def test_disk_resume_rewinds_adds_made_after_the_checkpoint(tmp_path):
    # the undo log must hold the 36 rows added after the checkpoint
    bank = _disk(tmp_path, policy='reservoir', undo_capacity=40)
    reference = SyntheticMemoryBank(10, SHAPE, policy='reservoir')
    for b in (bank, reference):
        for start in range(0, 24, 8):
            _add_range(b, start, start + 8)
        b.sample(5)
    state = _snapshot(bank)
    extra = state['_extra_state']
    assert extra['storage'] == 'disk' and extra['shards'] == bank.disk.files()
    assert extra['storage_dir'] == bank.disk.root
    # the run goes on after the checkpoint, overwriting slots, then stops
    for start in range(24, 60, 6):
        _add_range(bank, start, start + 6)
    assert _pool(bank) != _pool(reference)

    resumed = _disk(tmp_path, policy='reservoir', undo_capacity=40)
    resumed.load_state_dict(state)
    assert _pool(resumed) == _pool(reference)
    for b in (resumed, reference):
        _add_range(b, 100, 107)
    assert _pool(resumed) == _pool(reference)
    a, b = resumed.sample(8), reference.sample(8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_disk_loading_alone_does_not_touch_the_files(tmp_path):
    """tools/test.py loads the checkpoint of a run that may still be going:
    the bank files are only rewound once the bank is used."""
    bank = _disk(tmp_path)
    _add_range(bank, 0, 5)
    state = _snapshot(bank)
    _add_range(bank, 5, 9)
    head = osp.join(bank.disk.root, 'head.json')
    before = open(head).read()
    loaded = _disk(tmp_path)
    loaded.load_state_dict(state)
    assert open(head).read() == before
    assert len(loaded) == 5  # first use: rewound
    assert json.load(open(head))['counters']['num_adds'] == 1


def test_disk_fresh_run_removes_stale_files(tmp_path):
    old = _disk(tmp_path)
    _add_range(old, 50, 60)
    new = _disk(tmp_path)  # a new run in the same folder, nothing resumed
    _add_range(new, 0, 2)
    assert _pool(new) == [(0.0, 0), (1.0, 1)]


def test_disk_crash_in_the_middle_of_an_add_is_rolled_back(tmp_path,
                                                           monkeypatch):
    bank = _disk(tmp_path)
    _add_range(bank, 0, 10)
    state = _snapshot(bank)
    expected = _pool(bank)

    def crash(slots, images, targets):
        # half of the rows reach the shard, then the process dies
        DiskShardStorage._write_slots(bank.disk, slots[:2], images[:2],
                                      targets[:2])
        raise KeyboardInterrupt

    monkeypatch.setattr(bank.disk, '_write_slots', crash)
    with pytest.raises(KeyboardInterrupt):
        _add_range(bank, 10, 14)
    resumed = _disk(tmp_path)
    resumed.load_state_dict(state)
    assert _pool(resumed) == expected


def test_disk_checkpoint_older_than_the_undo_log_is_a_clear_error(tmp_path):
    bank = _disk(tmp_path, undo_capacity=4)
    _add_range(bank, 0, 10)
    state = _snapshot(bank)
    for start in range(10, 40, 3):
        _add_range(bank, start, start + 3)
    resumed = _disk(tmp_path, undo_capacity=4)
    resumed.load_state_dict(state)
    with pytest.raises(RuntimeError, match='undo_capacity'):
        resumed.sample(1)


def test_disk_files_of_another_layout_are_refused(tmp_path):
    bank = _disk(tmp_path)
    _add_range(bank, 0, 3)
    state = _snapshot(bank)
    other = _disk(tmp_path, shard_size=5)
    with pytest.raises(RuntimeError, match='shard_size'):
        other.load_state_dict(state)
    state['_extra_state']['shard_size'] = 5  # pretend the layouts agree
    other.load_state_dict(state)
    with pytest.raises(RuntimeError, match='shard_size'):
        other.sample(1)


def test_disk_resume_without_files_is_a_clear_error(tmp_path):
    bank = _disk(tmp_path)
    _add_range(bank, 0, 3)
    state = _snapshot(bank)
    resumed = _disk(tmp_path / 'elsewhere')
    resumed.load_state_dict(state)
    with pytest.raises(RuntimeError, match='no bank files'):
        len(resumed)


# --------------------------------------------------------------------------
# per-rank parts under DDP (simulated rank / world size)
# --------------------------------------------------------------------------
def test_ranks_keep_and_sample_their_own_part(tmp_path):
    ranks = [
        _disk(tmp_path, policy='reservoir', rank=r, world_size=2)
        for r in range(2)
    ]
    # each rank adds the batches it synthesised itself
    for start in range(0, 40, 8):
        _add_range(ranks[0], start, start + 8)
        _add_range(ranks[1], 1000 + start, 1000 + start + 8)
    roots = [bank.disk.root for bank in ranks]
    assert [osp.basename(r) for r in roots] == ['rank0of2', 'rank1of2']
    assert all(v < 1000 for v, _ in _pool(ranks[0]))
    assert all(v >= 1000 for v, _ in _pool(ranks[1]))
    assert all(t >= 1000 for t in ranks[1].sample(20)[1].tolist())
    # the same seed still gives each rank its own reservoir decisions
    kept = [sorted(t - 1000 * r for _, t in _pool(bank))
            for r, bank in enumerate(ranks)]
    assert kept[0] != kept[1]


def test_ddp_resume_restores_every_ranks_own_disk_part(tmp_path):
    """mmengine saves the checkpoint on rank 0 only; rank 1 loads rank 0's
    counters and rewinds its own files to the same add count."""
    def make(rank):
        return _disk(tmp_path, policy='reservoir', rank=rank, world_size=2)

    ranks, refs = [make(0), make(1)], []
    for r in range(2):
        refs.append(SyntheticMemoryBank(10, SHAPE, policy='reservoir',
                                        rank=r, world_size=2))
    # ranks add batches of different sizes (e.g. after sample selection)
    sizes = {0: 6, 1: 4}
    for step in range(4):
        for r in range(2):
            start = 1000 * r + 10 * step
            for bank in (ranks[r], refs[r]):
                _add_range(bank, start, start + sizes[r])
    checkpoint = _snapshot(ranks[0])  # written by rank 0 only
    for step in range(4, 7):  # the run goes on, then crashes
        for r in range(2):
            _add_range(ranks[r], 1000 * r + 10 * step,
                       1000 * r + 10 * step + sizes[r])

    for r in range(2):
        resumed = make(r)
        resumed.load_state_dict(checkpoint)
        assert _pool(resumed) == _pool(refs[r]), r
        assert int(resumed.num_seen) == 4 * sizes[r]
        a, b = resumed.sample(5), refs[r].sample(5)
        assert torch.equal(a[1], b[1])


def test_memory_bank_of_another_rank_is_loaded_with_a_warning(monkeypatch):
    import mmdfkd.models.memory.synthetic_memory_bank as module
    messages = []
    monkeypatch.setattr(module, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    rank0 = SyntheticMemoryBank(4, SHAPE, rank=0, world_size=2)
    _add_range(rank0, 0, 3)
    rank1 = SyntheticMemoryBank(4, SHAPE, rank=1, world_size=2)
    rank1.load_state_dict(_snapshot(rank0))
    assert _stored(rank1) == _stored(rank0)
    assert rank1.rank == 1
    assert len(messages) == 1 and "storage='disk'" in messages[0]


def test_default_rank_comes_from_the_process_group(monkeypatch):
    import mmdfkd.models.memory.synthetic_memory_bank as module
    monkeypatch.setattr(module, 'get_dist_info', lambda: (3, 4))
    bank = SyntheticMemoryBank(4, SHAPE)
    assert (bank.rank, bank.world_size) == (3, 4)


def test_work_dir_placeholder_is_expanded_and_never_used_raw(tmp_path):
    """``storage_dir='{work_dir}/memory_bank'`` follows ``--work-dir``
    (tools/train.py and tools/test.py call expand_work_dir); a bank built
    with the raw placeholder refuses instead of writing to '{work_dir}/'."""
    from mmengine.config import Config

    from mmdfkd.utils.config_checks import ConfigError, expand_work_dir

    cfg = Config(dict(model=dict(
        memory_bank=dict(storage='disk', capacity=8,
                         storage_dir='{work_dir}/memory_bank'),
        other=['{work_dir}/a', ('{work_dir}/b', 3)], untouched='x')))
    with pytest.raises(ConfigError, match='work directory'):
        expand_work_dir(cfg)
    cfg.work_dir = str(tmp_path / 'run')
    expand_work_dir(cfg)
    root = str(tmp_path / 'run')
    assert cfg.model.memory_bank.storage_dir == root + '/memory_bank'
    assert cfg.model.other == [root + '/a', (root + '/b', 3)]
    assert cfg.model.untouched == 'x'

    with pytest.raises(ValueError, match='placeholder'):
        SyntheticMemoryBank(capacity=8, image_shape=(1, 4, 4),
                            storage='disk',
                            storage_dir='{work_dir}/memory_bank')
