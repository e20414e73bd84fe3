"""Unit tests of ``LatentNoiseDataset`` and ``SyntheticMemoryBank``."""
import pytest
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler, default_collate
from torch.utils.data import DataLoader

from mmdfkd.datasets import LatentNoiseDataset
from mmdfkd.models.memory import SyntheticMemoryBank
from mmdfkd.registry import DATASETS, MODELS
from mmdfkd.utils import register_all_modules

register_all_modules()


# --------------------------------------------------------------------------
# LatentNoiseDataset
# --------------------------------------------------------------------------
def _ds(**kwargs):
    cfg = dict(latent_dim=5, num_classes=10, num_draws=3, length=64, seed=0)
    cfg.update(kwargs)
    return LatentNoiseDataset(**cfg)


def _equal(a, b):
    return torch.equal(a['latents'], b['latents']) and torch.equal(
        a['targets'], b['targets'])


def test_item_identical_across_instances_and_calls():
    ds1, ds2 = _ds(), _ds()
    for i in (0, 1, 17, 63):
        assert _equal(ds1[i], ds2[i])
        assert _equal(ds1[i], ds1[i])
    # unaffected by the global RNG
    torch.manual_seed(123)
    a = ds1[5]
    torch.manual_seed(456)
    assert _equal(a, ds1[5])


def test_different_indices_differ():
    ds = _ds()
    items = [ds[i]['latents'] for i in range(10)]
    for i in range(10):
        for j in range(i + 1, 10):
            assert not torch.equal(items[i], items[j]), (i, j)


def test_draws_within_an_item_differ():
    item = _ds()[0]
    lat = item['latents']
    assert not torch.equal(lat[0], lat[1])
    assert not torch.equal(lat[1], lat[2])


def test_different_seeds_differ():
    for i in (0, 3, 11):
        a, b, c = _ds(seed=0)[i], _ds(seed=1)[i], _ds(seed=7)[i]
        assert not torch.equal(a['latents'], b['latents']), i
        assert not torch.equal(a['latents'], c['latents']), i
        assert not torch.equal(b['latents'], c['latents']), i


def test_seed_and_index_do_not_alias():
    # (seed=1, index=0) must not reproduce (seed=0, index=k) for small k
    other = _ds(seed=1, length=2**20)[0]['latents']
    ds0 = _ds(seed=0, length=2**20)
    for k in (0, 1, 2, 2**16):
        assert not torch.equal(other, ds0[k]['latents']), k


def test_shapes_dtypes_and_target_range():
    ds = _ds(latent_dim=7, num_classes=4, num_draws=5, length=200)
    assert len(ds) == 200
    targets = []
    for i in range(200):
        item = ds[i]
        assert set(item) == {'latents', 'targets'}
        assert item['latents'].shape == (5, 7)
        assert item['latents'].dtype == torch.float32
        assert item['targets'].shape == (5, )
        assert item['targets'].dtype == torch.long
        targets.append(item['targets'])
    targets = torch.cat(targets)
    assert targets.min() >= 0 and targets.max() <= 3
    assert set(targets.tolist()) == {0, 1, 2, 3}  # every class occurs
    # latents look like N(0, 1)
    lat = torch.stack([ds[i]['latents'] for i in range(200)])
    assert abs(lat.mean().item()) < 0.1
    assert abs(lat.std().item() - 1) < 0.1


def test_zero_latent_dim_and_default_num_draws():
    item = LatentNoiseDataset(latent_dim=0, num_classes=3, length=4)[2]
    assert item['latents'].shape == (1, 0)
    assert item['targets'].shape == (1, )


def test_index_out_of_range():
    ds = _ds(length=8)
    with pytest.raises(IndexError):
        ds[8]
    with pytest.raises(IndexError):
        ds[-1]


@pytest.mark.parametrize('kwargs', [
    dict(latent_dim=-1),
    dict(num_classes=0),
    dict(num_draws=0),
    dict(length=0),
])
def test_invalid_args_raise(kwargs):
    with pytest.raises(ValueError, match='LatentNoiseDataset'):
        _ds(**kwargs)


def test_buildable_from_registry():
    ds = DATASETS.build(
        dict(type='LatentNoiseDataset', latent_dim=3, num_classes=2,
             length=5, metainfo=dict(classes=('a', 'b'))))
    assert isinstance(ds, LatentNoiseDataset)
    assert ds.metainfo == dict(classes=('a', 'b'))


def test_dataloader_default_collate():
    ds = _ds(latent_dim=5, num_draws=3, length=10)
    loader = DataLoader(ds, batch_size=4, shuffle=False,
                        collate_fn=default_collate)
    batch = next(iter(loader))
    assert batch['latents'].shape == (4, 3, 5)
    assert batch['targets'].shape == (4, 3)
    for i in range(4):
        assert torch.equal(batch['latents'][i], ds[i]['latents'])
        assert torch.equal(batch['targets'][i], ds[i]['targets'])
    sizes = [len(b['latents']) for b in loader]
    assert sizes == [4, 4, 2]


def _rank_indices(monkeypatch, sampler_cls, rank, world_size, n):
    import mmengine.dataset.sampler as sampler_mod
    monkeypatch.setattr(sampler_mod, 'get_dist_info',
                        lambda: (rank, world_size))
    sampler = sampler_cls(_ds(length=64), shuffle=True, seed=42)
    it = iter(sampler)
    return [next(it) for _ in range(n)]


@pytest.mark.parametrize('sampler_cls', [DefaultSampler, InfiniteSampler])
def test_simulated_ddp_ranks_get_different_noise(monkeypatch, sampler_cls):
    # simulate two DDP ranks: the samplers hand them disjoint indices,
    # hence (since item i depends on (seed, i) only) different noise
    idx0 = _rank_indices(monkeypatch, sampler_cls, 0, 2, 8)
    idx1 = _rank_indices(monkeypatch, sampler_cls, 1, 2, 8)
    assert not set(idx0) & set(idx1)
    ds = _ds(length=64)
    lat0 = torch.stack([ds[i]['latents'] for i in idx0])
    lat1 = torch.stack([ds[i]['latents'] for i in idx1])
    for a in lat0:
        for b in lat1:
            assert not torch.equal(a, b)
    # and a rank re-created with the same sampler seed replays its noise
    again = _rank_indices(monkeypatch, sampler_cls, 0, 2, 8)
    assert again == idx0


def test_disjoint_index_sets_give_different_noise():
    ds = _ds(length=1000)
    even = torch.stack([ds[i]['latents'] for i in range(0, 40, 2)])
    odd = torch.stack([ds[i]['latents'] for i in range(1, 40, 2)])
    flat_even = {tuple(v.tolist()) for v in even.flatten(0, 1)}
    flat_odd = {tuple(v.tolist()) for v in odd.flatten(0, 1)}
    assert not flat_even & flat_odd


# --------------------------------------------------------------------------
# SyntheticMemoryBank
# --------------------------------------------------------------------------
def _imgs(values, shape=(1, 2, 2)):
    """Images filled with the given constants, so each image is
    identifiable by its value."""
    return torch.stack(
        [torch.full(shape, float(v)) for v in values])


def _stored(bank):
    return bank.images[:, 0, 0, 0].tolist(), bank.targets.tolist()


def test_bank_invalid_capacity():
    with pytest.raises(ValueError, match='capacity'):
        SyntheticMemoryBank(0, (1, 2, 2))


def test_bank_capacity_bound_and_fifo_overwrite():
    bank = SyntheticMemoryBank(capacity=4, image_shape=(1, 2, 2))
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
    assert bank.images.shape == (4, 1, 2, 2)


def test_bank_add_larger_than_capacity_keeps_last():
    bank = SyntheticMemoryBank(capacity=3, image_shape=(1, 2, 2))
    bank.add(_imgs([1]), torch.tensor([1]))
    bank.add(_imgs([10, 11, 12, 13, 14]), torch.tensor([10, 11, 12, 13, 14]))
    assert len(bank) == 3
    assert sorted(_stored(bank)[0]) == [12, 13, 14]
    assert sorted(_stored(bank)[1]) == [12, 13, 14]
    # FIFO order continues correctly: the next add overwrites 12 first
    bank.add(_imgs([20]), torch.tensor([20]))
    assert sorted(_stored(bank)[0]) == [13, 14, 20]


def test_bank_add_detaches_and_casts():
    bank = SyntheticMemoryBank(capacity=2, image_shape=(1, 2, 2))
    imgs = _imgs([1, 2]).double().requires_grad_(True)
    bank.add(imgs * 2, torch.tensor([1, 0], dtype=torch.int32))
    assert bank.images.dtype == torch.float32
    assert not bank.images.requires_grad
    assert bank.targets.dtype == torch.long
    assert _stored(bank) == ([2, 4], [1, 0])


def test_bank_sample_shapes_and_content():
    bank = SyntheticMemoryBank(capacity=8, image_shape=(3, 4, 4))
    bank.add(_imgs([1, 2, 3], (3, 4, 4)), torch.tensor([1, 2, 3]))
    torch.manual_seed(0)
    images, targets = bank.sample(16)
    assert images.shape == (16, 3, 4, 4)
    assert targets.shape == (16, ) and targets.dtype == torch.long
    # only the 3 stored entries are drawn, never the empty slots
    assert set(images[:, 0, 0, 0].tolist()) <= {1.0, 2.0, 3.0}
    # image and target stay paired
    assert torch.equal(images[:, 0, 0, 0].long(), targets)


def test_bank_sample_from_empty_raises():
    bank = SyntheticMemoryBank(capacity=4, image_shape=(1, 2, 2))
    with pytest.raises(RuntimeError, match='empty'):
        bank.sample(2)


def test_bank_state_dict_round_trip():
    bank = SyntheticMemoryBank(capacity=4, image_shape=(1, 2, 2))
    bank.add(_imgs([1, 2, 3]), torch.tensor([1, 2, 3]))
    bank.add(_imgs([4, 5]), torch.tensor([4, 5]))
    state = bank.state_dict()
    assert set(state) == {'images', 'targets', 'num_stored', 'write_pos'}

    fresh = SyntheticMemoryBank(capacity=4, image_shape=(1, 2, 2))
    fresh.load_state_dict(state)
    assert torch.equal(fresh.images, bank.images)
    assert torch.equal(fresh.targets, bank.targets)
    assert int(fresh.num_stored) == int(bank.num_stored) == 4
    assert int(fresh.write_pos) == int(bank.write_pos) == 1
    # both continue identically
    for b in (bank, fresh):
        b.add(_imgs([6]), torch.tensor([6]))
    assert _stored(fresh) == _stored(bank) == ([5, 6, 3, 4], [5, 6, 3, 4])
    torch.manual_seed(3)
    s1 = bank.sample(5)
    torch.manual_seed(3)
    s2 = fresh.sample(5)
    assert torch.equal(s1[0], s2[0]) and torch.equal(s1[1], s2[1])


def test_bank_state_dict_round_trip_through_torch_save(tmp_path):
    bank = SyntheticMemoryBank(capacity=3, image_shape=(1, 2, 2))
    bank.add(_imgs([7, 8]), torch.tensor([7, 8]))
    path = tmp_path / 'bank.pth'
    torch.save(bank.state_dict(), path)
    fresh = SyntheticMemoryBank(capacity=3, image_shape=(1, 2, 2))
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert len(fresh) == 2 and int(fresh.write_pos) == 2
    assert _stored(fresh) == ([7, 8, 0], [7, 8, 0])


def test_bank_buildable_from_registry():
    bank = MODELS.build(
        dict(type='SyntheticMemoryBank', capacity=5, image_shape=(3, 2, 2)))
    assert isinstance(bank, SyntheticMemoryBank)
    assert bank.images.shape == (5, 3, 2, 2)
