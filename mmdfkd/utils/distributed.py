"""Process-group lifetime of the tools' torchrun runs.

mmengine 0.10.7 starts the process group for a ``pytorch`` launcher but
never destroys it. With gloo that is a crash, not a leak: the backend's
worker threads are still alive when the interpreter finalises, and
``std::thread``'s destructor calls ``std::terminate`` ("terminate called
without an active exception", SIGABRT). It happens at random on the last
line of a run that trained and saved correctly, so torchrun reports the
whole run as failed (pytorch/pytorch#190489). The tools therefore destroy
the group themselves, on success and on error.
"""
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as torch_dist
from mmengine.config import Config

DEFAULT_TIMEOUT_SECONDS = 1800


def init_cpu_distributed(cfg: Config) -> None:
    """Start a gloo process group for torchrun runs without CUDA.

    mmengine 0.10.7's ``pytorch`` launcher calls ``torch.cuda.set_device``,
    which fails on CPU; when the group already exists the Runner skips its
    own initialisation, and ``DataFreeDistributedDataParallel`` drops the
    CUDA ``device_ids`` it would pass. ``env_cfg.dist_cfg.timeout``
    (seconds) bounds every collective, so a rank that hangs makes the
    others fail instead of waiting forever.
    """
    if torch_dist.is_initialized():
        return
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    timeout = dist_cfg.get('timeout', DEFAULT_TIMEOUT_SECONDS)
    torch_dist.init_process_group(
        backend='gloo', timeout=timedelta(seconds=timeout))


def destroy_distributed() -> None:
    """Destroy the default process group if one exists (no-op otherwise)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


@contextmanager
def distributed_session(cfg: Config, launcher: str) -> Iterator[None]:
    """The process group of one tool run: started here for a CPU torchrun
    launch (mmengine's Runner starts it on CUDA), destroyed on exit either
    way, whether the run finished or raised."""
    if launcher == 'pytorch' and not torch.cuda.is_available():
        init_cpu_distributed(cfg)
    try:
        yield
    finally:
        destroy_distributed()
