"""Unit tests of ``LatentNoiseDataset`` (``SyntheticMemoryBank``'s are in
test_memory_bank.py)."""
import pytest
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler, default_collate
from torch.utils.data import DataLoader

from mmdfkd.datasets import LatentNoiseDataset
from mmdfkd.registry import DATASETS
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
