"""Unit tests of ``SeparateOptimWrapperConstructor``."""
import pytest
import torch
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper, OptimWrapperDict, build_optim_wrapper
from torch import nn

from mmdfkd.engine.optimizers import SeparateOptimWrapperConstructor
from mmdfkd.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmdfkd.utils import register_all_modules

register_all_modules()


class ToyAlgorithm(nn.Module):
    """An algorithm with the two children the constructor expects, plus a
    frozen teacher that must not be optimised."""

    def __init__(self):
        super().__init__()
        self.architecture = nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
            nn.Linear(4, 2))
        self.generator = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6))
        self.teachers = nn.ModuleDict(dict(tea=nn.Linear(2, 2)))


def _ids(params):
    return {id(p) for p in params}


def _cfg(**extra):
    cfg = dict(
        constructor='SeparateOptimWrapperConstructor',
        architecture=dict(
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9,
                           weight_decay=5e-4)),
        generator=dict(
            optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.999))))
    cfg.update(extra)
    return cfg


def test_builds_optim_wrapper_dict_over_the_right_parameters():
    model = ToyAlgorithm()
    wrappers = build_optim_wrapper(model, _cfg())
    assert isinstance(wrappers, OptimWrapperDict)
    assert set(wrappers.keys()) == {'architecture', 'generator'}
    arch, gen = wrappers['architecture'], wrappers['generator']
    assert isinstance(arch, OptimWrapper) and isinstance(gen, OptimWrapper)
    assert isinstance(arch.optimizer, torch.optim.SGD)
    assert isinstance(gen.optimizer, torch.optim.Adam)

    def params_of(wrapper):
        return [
            p for g in wrapper.optimizer.param_groups for p in g['params']
        ]

    assert _ids(params_of(arch)) == _ids(model.architecture.parameters())
    assert _ids(params_of(gen)) == _ids(model.generator.parameters())
    # the teacher's parameters are in neither optimiser
    teacher_ids = _ids(model.teachers.parameters())
    assert not teacher_ids & _ids(params_of(arch))
    assert not teacher_ids & _ids(params_of(gen))
    assert arch.optimizer.defaults['lr'] == 0.1
    assert arch.optimizer.defaults['momentum'] == 0.9
    assert gen.optimizer.defaults['lr'] == 1e-3
    assert gen.optimizer.defaults['betas'] == (0.5, 0.999)


def test_direct_construction_and_registry():
    ctor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type='SeparateOptimWrapperConstructor',
            optim_wrapper_cfg=dict(
                generator=dict(optimizer=dict(type='SGD', lr=0.5)))))
    assert isinstance(ctor, SeparateOptimWrapperConstructor)
    wrappers = ctor(ToyAlgorithm())
    assert list(wrappers.keys()) == ['generator']


def test_unwraps_model_wrapper():
    model = ToyAlgorithm()

    class FakeDDP(MMDistributedDataParallel):
        # skip DDP's process-group set-up; only `.module` matters here
        def __init__(self, module):
            nn.Module.__init__(self)
            self.module = module

    wrappers = build_optim_wrapper(FakeDDP(model), _cfg())
    params = [
        p for g in wrappers['generator'].optimizer.param_groups
        for p in g['params']
    ]
    assert _ids(params) == _ids(model.generator.parameters())


def test_unknown_key_raises_key_error_listing_children():
    cfg = _cfg(student=dict(optimizer=dict(type='SGD', lr=0.1)))
    with pytest.raises(KeyError) as err:
        build_optim_wrapper(ToyAlgorithm(), cfg)
    msg = str(err.value)
    assert 'student' in msg
    for child in ('architecture', 'generator', 'teachers'):
        assert child in msg


def test_empty_or_top_level_paramwise_cfg_rejected():
    with pytest.raises(TypeError):
        SeparateOptimWrapperConstructor({})
    with pytest.raises(ValueError, match='paramwise_cfg'):
        build_optim_wrapper(ToyAlgorithm(),
                            _cfg(paramwise_cfg=dict(norm_decay_mult=0.)))


def _group_of(wrapper, param):
    for group in wrapper.optimizer.param_groups:
        if any(p is param for p in group['params']):
            return group
    raise AssertionError('parameter not in the optimiser')


def test_paramwise_cfg_per_wrapper_is_honoured():
    model = ToyAlgorithm()
    cfg = _cfg()
    cfg['architecture']['paramwise_cfg'] = dict(
        norm_decay_mult=0., bias_lr_mult=2.)
    cfg['generator']['paramwise_cfg'] = dict(
        custom_keys={'0': dict(lr_mult=0.1)})
    wrappers = build_optim_wrapper(model, cfg)
    arch, gen = wrappers['architecture'], wrappers['generator']

    conv, bn, fc = (model.architecture[0], model.architecture[1],
                    model.architecture[3])
    # architecture: no decay on BN, double lr on biases
    assert _group_of(arch, bn.weight)['weight_decay'] == 0.
    assert _group_of(arch, bn.bias)['weight_decay'] == 0.
    assert _group_of(arch, conv.weight)['weight_decay'] == 5e-4
    assert _group_of(arch, conv.weight)['lr'] == pytest.approx(0.1)
    assert _group_of(arch, conv.bias)['lr'] == pytest.approx(0.2)
    assert _group_of(arch, fc.bias)['lr'] == pytest.approx(0.2)

    # generator: lr_mult on the module named '0' (relative to the generator)
    lin, gbn = model.generator[0], model.generator[1]
    assert _group_of(gen, lin.weight)['lr'] == pytest.approx(1e-4)
    assert _group_of(gen, lin.bias)['lr'] == pytest.approx(1e-4)
    assert _group_of(gen, gbn.weight)['lr'] == pytest.approx(1e-3)
    # and the architecture's paramwise_cfg did not leak into the generator
    assert _group_of(gen, lin.bias)['lr'] != pytest.approx(2e-3)


def test_config_not_mutated():
    cfg = _cfg()
    cfg['architecture']['paramwise_cfg'] = dict(norm_decay_mult=0.)
    ctor = SeparateOptimWrapperConstructor(
        {k: v for k, v in cfg.items() if k != 'constructor'})
    ctor(ToyAlgorithm())
    ctor(ToyAlgorithm())  # reusable: paramwise_cfg is popped from a copy
    assert 'paramwise_cfg' in cfg['architecture']
    assert 'paramwise_cfg' in ctor.optim_wrapper_cfg['architecture']


def test_step_updates_only_its_child():
    model = ToyAlgorithm().train()
    wrappers = build_optim_wrapper(model, _cfg())
    arch_before = [p.detach().clone() for p in model.architecture.parameters()]
    gen_before = [p.detach().clone() for p in model.generator.parameters()]
    loss = model.generator(torch.randn(4, 5)).pow(2).sum()
    wrappers['generator'].update_params(loss)
    assert any(not torch.equal(a, p) for a, p in
               zip(gen_before, model.generator.parameters()))
    assert all(torch.equal(a, p) for a, p in
               zip(arch_before, model.architecture.parameters()))
