"""Checks on a whole config that the Runner would otherwise accept
silently or reject with an unclear error."""
import difflib

from mmengine.config import Config

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


def check_config(cfg: Config) -> None:
    """Raise ``ValueError`` naming the cause for mistakes that mmengine
    would ignore (a misspelt top-level key) or report late (a non-positive
    batch size)."""
    for key in cfg.keys():
        if key in RUNNER_KEYS:
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.85)
        if close:
            raise ValueError(
                f'config key {key!r} is not used by the Runner; did you mean '
                f'{close[0]!r}?')
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if not loader:
            continue
        batch_size = loader.get('batch_size')
        if batch_size is not None and (not isinstance(batch_size, int)
                                       or batch_size <= 0):
            raise ValueError(f'{name}.batch_size must be a positive integer, '
                             f'got {batch_size!r}')


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
