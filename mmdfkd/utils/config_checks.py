"""Checks on a whole config (and on the model built from it) that the
Runner would otherwise accept silently or reject with an unclear error."""
import difflib
import inspect
import os
import tempfile
from typing import Iterator, Optional, Set, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import Registry
from torch import nn

# keys Runner.from_cfg reads; a top-level key that is one edit away from one
# of these is almost certainly a typo (other top-level names are legitimate
# config variables such as ``data_root``)
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr',
    'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator',
    'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name', 'cfg',
    'model_wrapper_cfg')
# read by Config.fromfile rather than by the Runner
CONFIG_KEYS = ('custom_imports', )
# arguments the builders consume before calling the constructor
_BUILDER_KEYS = frozenset({'type', '_scope_', 'priority'})


class ConfigError(ValueError):
    """A config (or the run it describes) cannot work; the message names
    the setting and the cause."""


def _did_you_mean(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1,
                                      cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ''


def _accepted_arguments(cls: type) -> Optional[Set[str]]:
    """Keyword arguments ``cls(...)`` accepts, following ``**kwargs`` that a
    constructor passes on to its base class; None if open-ended."""
    names: Set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):  # builtins without a signature
            return None
        names.update(p.name for p in params
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names
    return None


def _registered_configs(cfg: Config) -> Iterator[Tuple[str, dict, str]]:
    """(where, config dict, registry name) of the built parts whose
    registry is known from their place in the config."""
    model = cfg.get('model')
    if isinstance(model, dict):
        yield 'model', model, 'MODELS'
        for key in ('generator', 'memory_bank'):
            if isinstance(model.get(key), dict):
                yield f'model.{key}', model[key], 'MODELS'
    dataset = (cfg.get('train_dataloader') or {}).get('dataset')
    if isinstance(dataset, dict):
        yield 'train_dataloader.dataset', dataset, 'DATASETS'
    for name, hook in (cfg.get('default_hooks') or {}).items():
        if isinstance(hook, dict):
            yield f'default_hooks.{name}', hook, 'HOOKS'
    for index, hook in enumerate(cfg.get('custom_hooks') or []):
        if isinstance(hook, dict):
            yield f'custom_hooks.{index}', hook, 'HOOKS'


def _check_registered_types(cfg: Config) -> None:
    """Name an unknown ``type`` or a misspelt argument of the model, its
    generator and memory bank, the latent dataset and the hooks."""
    from mmdfkd import registry
    for where, part, registry_name in _registered_configs(cfg):
        registry_node: Registry = getattr(registry, registry_name)
        type_ = part.get('type')
        if type_ is None:
            continue
        if isinstance(type_, str):
            try:
                cls = registry_node.get(type_)
            except KeyError:  # an unknown scope prefix
                cls = None
            if cls is None:
                known = set()
                node = registry_node
                while node is not None:
                    known.update(node.module_dict)
                    node = node.parent
                raise ConfigError(
                    f'{where}.type: {type_!r} is not registered in the '
                    f'{registry_node.name} registry of mmdfkd or its parents '
                    f'(mmpretrain, mmengine){_did_you_mean(type_, known)}')
        else:
            cls = type_
        if not inspect.isclass(cls):
            continue
        accepted = _accepted_arguments(cls)
        if accepted is None:
            continue
        for key in part:
            if key not in accepted and key not in _BUILDER_KEYS:
                raise ConfigError(
                    f'{where}.{key}: {cls.__name__} has no argument {key!r}'
                    f'{_did_you_mean(key, accepted)}')


def check_config(cfg: Config) -> None:
    """Raise :class:`ConfigError` naming the cause for mistakes that
    mmengine would ignore (a misspelt top-level key) or report late or
    unclearly (a non-positive batch size, an unknown type or argument of
    the model, its generator or memory bank, the latent dataset, a hook)."""
    for key in cfg.keys():
        if key in RUNNER_KEYS or key in CONFIG_KEYS:
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.85)
        if close:
            raise ConfigError(
                f'config key {key!r} is not used by the Runner; did you mean '
                f'{close[0]!r}?')
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if not loader:
            continue
        batch_size = loader.get('batch_size')
        if batch_size is not None and (not isinstance(batch_size, int)
                                       or batch_size <= 0):
            raise ConfigError(f'{name}.batch_size must be a positive '
                              f'integer, got {batch_size!r}')
    _check_registered_types(cfg)


def check_work_dir(work_dir: str) -> None:
    """Create ``work_dir`` if needed and check that files can be written
    in it, before anything is built or trained.

    Raises:
        ConfigError: Naming the folder and the operating system's reason.
    """
    try:
        os.makedirs(work_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=work_dir):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        if error.filename and os.fspath(error.filename) != work_dir:
            reason += f': {error.filename}'
        raise ConfigError(
            f'the work directory {work_dir} is not writable ({reason}); '
            'choose another one with --work-dir') from None


def check_data_free_model(model: nn.Module, train_dataloader: dict) -> None:
    """Run two synthetic images through the teachers and the student before
    training: a generator that cannot produce what the networks take fails
    here with the part named, instead of deep inside the first step.

    The generator, teachers and student run in eval mode without gradients,
    on draws of the train dataset (deterministic per index), so no weight,
    BN statistic or random state changes.

    Args:
        model (nn.Module): The built (possibly wrapped) algorithm; other
            models (e.g. a teacher being trained) are not checked.
        train_dataloader (dict): The train dataloader config.

    Raises:
        ConfigError: If the generator cannot turn a train batch into
            images, a teacher or the student cannot take them, or student
            and teachers predict different numbers of classes.
    """
    from mmdfkd.models.utils import module_mode, unwrap_model
    from mmdfkd.registry import DATASETS

    algorithm = unwrap_model(model)
    if not all(hasattr(algorithm, name)
               for name in ('generator', 'teachers', 'architecture')):
        return
    generator = unwrap_model(algorithm.generator)
    student = unwrap_model(algorithm.architecture)
    dataset = DATASETS.build(train_dataloader['dataset'])
    needed = getattr(algorithm, 'draws_per_iteration', None)
    available = getattr(dataset, 'num_draws', None)
    if needed is not None and available is not None and available < needed:
        raise ConfigError(
            f'train_dataloader.dataset.num_draws is {available} but '
            f'{type(algorithm).__name__} consumes {needed} latent draw(s) '
            'per iteration (generator_iter + student_iter unless the '
            f'student reuses the generator batch); set num_draws={needed}')
    # learnable images come as one fixed-size batch
    num_items = getattr(generator, 'batch_size', 2)
    items = [dataset[i] for i in range(num_items)]
    device = next(student.parameters()).device
    # the first draw of each item (items hold one or num_draws draws)
    latents = torch.stack([
        item['latents'][0] if item['latents'].dim() == 2 else item['latents']
        for item in items
    ]).to(device)
    targets = torch.stack([item['targets'].reshape(-1)[0]
                           for item in items]).to(device)

    with torch.no_grad():
        try:
            with module_mode(generator, False):
                images = generator(latents, targets)[:2]
        except (RuntimeError, ValueError) as error:
            raise ConfigError(
                f'the generator ({type(generator).__name__}) cannot turn a '
                f'batch of the train dataset (latents of shape '
                f'{tuple(latents.shape)}) into images: {error}') from None
        shape = tuple(images.shape[1:])
        classes = {}
        for name, teacher in algorithm.teachers.items():
            try:
                with module_mode(teacher, False):
                    classes[f'teacher {name!r}'] = teacher(
                        images, mode='tensor').shape[-1]
            except (RuntimeError, ValueError) as error:
                raise ConfigError(
                    f'teacher {name!r} cannot take the generator\'s images '
                    f'of shape {shape} (C, H, W): {error}. Make the '
                    'generator produce the input size of the teacher '
                    '(e.g. img_size / out_channels).') from None
        try:
            with module_mode(student, False):
                classes['the student'] = student(images,
                                                 mode='tensor').shape[-1]
        except (RuntimeError, ValueError) as error:
            raise ConfigError(
                f'the student cannot take images of shape {shape} (C, H, W)'
                f', which the teachers take: {error}. Student and teachers '
                'must have the same input size and channels.') from None
    if len(set(classes.values())) > 1:
        counts = ', '.join(f'{k} {v}' for k, v in classes.items())
        raise ConfigError('the student and the teachers predict different '
                          f'numbers of classes: {counts}')


def propagate_data_root(cfg: Config, data_root: str) -> None:
    """Point every real-data dataloader at ``data_root``.

    mmengine substitutes config variables while it parses a file, so
    ``--cfg-options data_root=...`` alone would not reach the datasets that
    were built from the variable; the tools call this when it is given.
    """
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(name) or {}).get('dataset')
        if dataset is not None and 'data_root' in dataset:
            dataset['data_root'] = data_root


WORK_DIR_PLACEHOLDER = '{work_dir}'


def expand_work_dir(cfg: Config) -> None:
    """Replace ``{work_dir}`` in every string of ``cfg.model`` by the run's
    work directory, so that files a model writes itself (e.g. the shards of
    an on-disk memory bank: ``storage_dir='{work_dir}/memory_bank'``)
    follow ``--work-dir`` like checkpoints and logs do. Call it once
    ``cfg.work_dir`` is final."""
    work_dir = cfg.get('work_dir')
    if work_dir is None:
        raise ConfigError(
            f'{WORK_DIR_PLACEHOLDER} is used before the work directory is set')

    def expand(node):
        if isinstance(node, str):
            return node.replace(WORK_DIR_PLACEHOLDER, work_dir)
        if isinstance(node, dict):
            for key in node:
                node[key] = expand(node[key])
            return node
        if isinstance(node, (list, tuple)):
            return type(node)(expand(item) for item in node)
        return node

    if cfg.get('model') is not None:
        expand(cfg.model)
