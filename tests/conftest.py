"""Shared fixtures: the repository root, a Python that runs our tools, and a
small LeNet-5 teacher checkpoint for end-to-end runs."""
import functools
import http.server
import os
import os.path as osp
import subprocess
import sys
import threading

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FASHION_MNIST = osp.join(ROOT, 'data', 'fashion_mnist')


# The files whose runs take minutes (real-data training, 400 s together;
# the teacher-robustness study, 80 s). Collected first, pytest-xdist
# (tools/run_tests.sh) starts them first, so the suite does not end on one
# of them while the other worker sits idle.
LONGEST_FILES_FIRST = ('test_real_data.py', 'test_teacher_robustness.py')


def pytest_collection_modifyitems(items):
    """Move the tests of LONGEST_FILES_FIRST to the front, in that order;
    every file keeps its own test order (the sort is stable)."""
    rank = {name: i for i, name in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def tool_env():
    env = dict(os.environ)
    env['OMP_NUM_THREADS'] = '1'
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return env


def run_tool(args, timeout=600, check=True):
    """Run ``python tools/<args>`` from the repo root; return the process."""
    proc = subprocess.run([sys.executable, *args],
                          cwd=ROOT,
                          env=tool_env(),
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{" ".join(args)} failed ({proc.returncode}):\n'
            f'{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


@pytest.fixture(scope='session')
def fashion_mnist_root():
    if not osp.isfile(osp.join(FASHION_MNIST, 't10k-images-idx3-ubyte')):
        run_tool(['tools/dataset_converters/prepare_fashion_mnist.py',
                  '--out', FASHION_MNIST])
    return FASHION_MNIST


@pytest.fixture(scope='session')
def random_lenet5_teacher(tmp_path_factory):
    """A LeNet-5 teacher checkpoint with random weights: enough to exercise
    the machinery quickly (accuracy is tested separately on a real one)."""
    from mmengine.config import Config

    from mmdfkd.models.utils import build_classifier
    from mmdfkd.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/models/lenet5_fashionmnist.py'))
    model = build_classifier(cfg.model)
    path = tmp_path_factory.mktemp('teacher') / 'lenet5_random.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):

    def log_message(self, format, *args):
        """Keep the test output free of access logs."""


@pytest.fixture
def served_dir(tmp_path):
    """Serve a fresh folder over HTTP on 127.0.0.1; yield (folder, url)."""
    folder = tmp_path / 'served'
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0),
        functools.partial(QuietFileHandler, directory=str(folder)))
    # A short poll interval keeps shutdown() from stalling each test.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs=dict(poll_interval=0.05),
        daemon=True)
    thread.start()
    yield folder, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()
