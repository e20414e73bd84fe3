"""mmdfkd.utils.distributed: the tools' process group is destroyed at the
end of a run, whether it finished or raised (a gloo group left alive
aborts the process at interpreter exit)."""
import socket

import pytest
import torch.distributed as torch_dist
from mmengine.config import Config

from mmdfkd.utils.distributed import (destroy_distributed,
                                      distributed_session,
                                      init_cpu_distributed)


@pytest.fixture
def single_rank_env(monkeypatch):
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                           RANK='0', WORLD_SIZE='1', LOCAL_RANK='0').items():
        monkeypatch.setenv(key, value)
    yield
    destroy_distributed()


def test_session_destroys_group_after_success(single_rank_env):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(timeout=30))))
    with distributed_session(cfg, 'pytorch'):
        assert torch_dist.is_initialized()
        assert torch_dist.get_backend() == 'gloo'
        assert torch_dist.get_world_size() == 1
    assert not torch_dist.is_initialized()


def test_session_destroys_group_after_error(single_rank_env):
    with pytest.raises(RuntimeError, match='boom'):
        with distributed_session(Config(), 'pytorch'):
            assert torch_dist.is_initialized()
            raise RuntimeError('boom')
    assert not torch_dist.is_initialized()


def test_no_group_without_launcher():
    with distributed_session(Config(), 'none'):
        assert not torch_dist.is_initialized()
    destroy_distributed()  # no group: a no-op, not an error


def test_init_is_idempotent(single_rank_env):
    init_cpu_distributed(Config())
    init_cpu_distributed(Config())  # a second call keeps the group
    assert torch_dist.is_initialized()
