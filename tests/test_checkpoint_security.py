"""Loading untrusted checkpoints: integrity, safety and clear errors."""
import hashlib
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from mmdfkd.utils.checkpoint import (
    CHECKPOINT_SAFE_GLOBALS, CheckpointDownloadError, CheckpointError,
    CheckpointHashError, CheckpointMismatchError, CorruptCheckpointError,
    UnsafeCheckpointError, load_checkpoint_file, load_teacher_weights,
    register_checkpoint_safe_globals)

pytestmark = pytest.mark.timeout(30)


class TinyConvNet(nn.Module):
    """Classifier laid out like mmpretrain's: ``backbone`` + ``head.fc``."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Module()
        self.head.fc = nn.Linear(4, num_classes)


class TinyMLP(nn.Module):
    """Another architecture, to feed TinyConvNet the wrong weights."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 10))


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_state_equal(model, expected):
    actual = model.state_dict()
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def sha256_of(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def save_teacher(path, num_classes=10):
    """Save a TinyConvNet checkpoint the way mmengine does, return model."""
    model = TinyConvNet(num_classes)
    torch.save({'meta': {'epoch': 3}, 'state_dict': model.state_dict()}, path)
    return model


# --------------------------------------------------------------- local files
def test_good_local_checkpoint_loads(tmp_path):
    path = tmp_path / 'teacher.pth'
    teacher = save_teacher(path)
    student = TinyConvNet()

    load_teacher_weights(student, str(path))

    assert_state_equal(student, teacher.state_dict())


@pytest.mark.parametrize('wrap', ['state_dict', 'model', 'plain'])
def test_weights_found_in_any_layout_and_module_prefix_stripped(
        tmp_path, wrap):
    teacher = TinyConvNet()
    data_parallel_weights = {
        f'module.{k}': v
        for k, v in teacher.state_dict().items()
    }
    path = tmp_path / 'teacher.pth'
    torch.save(
        data_parallel_weights
        if wrap == 'plain' else {wrap: data_parallel_weights}, path)
    student = TinyConvNet()

    load_teacher_weights(student, str(path))

    assert_state_equal(student, teacher.state_dict())


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / 'nowhere' / 'teacher.pth'
    with pytest.raises(FileNotFoundError, match=str(path)):
        load_checkpoint_file(str(path))


@pytest.mark.parametrize('kept_fraction', [0.0, 0.5, 0.9])
@pytest.mark.parametrize('zip_format', [True, False])
def test_truncated_file_is_reported_corrupt(tmp_path, kept_fraction,
                                            zip_format):
    path = tmp_path / 'teacher.pth'
    torch.save({'state_dict': TinyConvNet().state_dict()},
               path,
               _use_new_zipfile_serialization=zip_format)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * kept_fraction)])

    with pytest.raises(CheckpointError, match=str(path)) as error_info:
        load_checkpoint_file(str(path))
    # A cut can fall inside a GLOBAL name ("torch._utils._rebui"), which
    # the unpickler can only refuse as unknown; either way it is refused.
    assert isinstance(error_info.value,
                      (CorruptCheckpointError, UnsafeCheckpointError))


def test_garbage_file_is_reported_corrupt(tmp_path):
    path = tmp_path / 'teacher.pth'
    path.write_text('not a checkpoint\n')
    with pytest.raises(CorruptCheckpointError, match=str(path)) as error_info:
        load_checkpoint_file(str(path))
    # torch's advice to retry unsafely must not reach the user.
    assert 'weights_only' not in str(error_info.value)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / 'mlp.pth'
    torch.save({'state_dict': TinyMLP().state_dict()}, path)
    student = TinyConvNet()
    before = snapshot(student)

    with pytest.raises(CheckpointMismatchError) as error_info:
        load_teacher_weights(student, str(path))

    message = str(error_info.value)
    assert str(path) in message and 'TinyConvNet' in message
    assert 'missing keys (9)' in message and 'backbone.0.weight' in message
    assert 'unexpected keys (4)' in message
    assert 'layers.0.weight' in message
    assert_state_equal(student, before)


def test_wrong_number_of_classes_is_named(tmp_path):
    path = tmp_path / 'teacher_10_classes.pth'
    save_teacher(path, num_classes=10)
    student = TinyConvNet(num_classes=5)
    before = snapshot(student)

    with pytest.raises(
            CheckpointMismatchError,
            match='wrong number of classes: checkpoint has 10, model has 5'
    ) as error_info:
        load_teacher_weights(student, str(path))

    assert 'head.fc.bias: checkpoint (10,) vs model (5,)' in str(
        error_info.value)
    assert_state_equal(student, before)


def test_checkpoint_without_weights_is_refused(tmp_path):
    path = tmp_path / 'meta_only.pth'
    torch.save({'meta': {'epoch': 1}}, path)
    with pytest.raises(CheckpointMismatchError, match='no model weights'):
        load_teacher_weights(TinyConvNet(), str(path))


def test_local_file_with_wrong_hash_prefix_is_refused_but_kept(tmp_path):
    path = tmp_path / 'teacher-deadbeef.pth'
    save_teacher(path)
    assert not sha256_of(path).startswith('deadbeef')

    with pytest.raises(CheckpointHashError, match='deadbeef'):
        load_checkpoint_file(str(path))

    assert path.exists(), 'a user file must never be deleted'
    assert 'state_dict' in load_checkpoint_file(str(path), check_hash=False)


def test_local_file_with_right_hash_prefix_loads(tmp_path):
    unhashed = tmp_path / 'teacher.pth'
    save_teacher(unhashed)
    hashed = tmp_path / f'teacher_20240101-{sha256_of(unhashed)[:8]}.pth'
    unhashed.rename(hashed)

    assert 'state_dict' in load_checkpoint_file(str(hashed))


# --------------------------------------------------------- malicious pickles
class WritesMarkerFileViaSystem:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class WritesMarkerFileViaOpen:
    """Unpickling this creates a marker file through ``builtins.open``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), 'w')


def write_zip(payload, path):
    torch.save({'state_dict': payload}, path)


def write_legacy(payload, path):
    torch.save({'state_dict': payload},
               path,
               _use_new_zipfile_serialization=False)


def write_plain_pickle(payload, path):
    with open(path, 'wb') as f:
        pickle.dump({'state_dict': payload}, f, protocol=2)


@pytest.mark.parametrize('writer',
                         [write_zip, write_legacy, write_plain_pickle])
@pytest.mark.parametrize(
    'payload_class, refused_global',
    [
        (WritesMarkerFileViaSystem, 'posix.system'),
        (WritesMarkerFileViaOpen, 'io.open'),  # builtins.open is io.open
    ])
def test_pickle_carrying_code_is_refused_and_not_run(tmp_path, writer,
                                                     payload_class,
                                                     refused_global):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    writer(payload_class(marker), path)

    with pytest.raises(UnsafeCheckpointError) as error_info:
        load_teacher_weights(TinyConvNet(), str(path))

    assert error_info.value.refused_global == refused_global
    assert refused_global in str(error_info.value)
    assert str(path) in str(error_info.value)
    assert not marker.exists()


@pytest.mark.filterwarnings('ignore:Detected pickle protocol 4')
def test_pickle_protocol_4_carrying_code_is_refused_and_not_run(tmp_path):
    # torch's unpickler does not speak protocol 4 framing, so it stops
    # before reaching the payload: refused as "not a checkpoint".
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'x': WritesMarkerFileViaSystem(marker)}, f, protocol=4)

    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint_file(str(path))
    assert not marker.exists()


class ReachesIntoHistoryBuffer:
    """Uses the allow-listed ``getattr`` for something other than the
    HistoryBuffer statistics it exists for."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def test_allow_listed_getattr_serves_only_history_buffer_statistics(tmp_path):
    path = tmp_path / 'gadget.pth'
    write_zip(ReachesIntoHistoryBuffer(), path)

    with pytest.raises(UnsafeCheckpointError, match="'__init__'"):
        load_checkpoint_file(str(path))


# ------------------------------------------------------------------ download
def serve_teacher(folder, name_pattern):
    """Save a teacher into ``folder`` under ``name_pattern.format(sha)``."""
    staging = folder / 'staging.tmp'
    save_teacher(staging)
    name = name_pattern.format(sha=sha256_of(staging))
    staging.rename(folder / name)
    return name


def test_url_with_correct_hash_prefix_downloads_and_reuses_cache(
        tmp_path, served_dir):
    folder, base_url = served_dir
    name = serve_teacher(folder, 'teacher_20240101-{sha:.8}.pth')
    cache_dir = tmp_path / 'cache'

    checkpoint = load_checkpoint_file(
        f'{base_url}/{name}', cache_dir=str(cache_dir))
    assert 'state_dict' in checkpoint
    assert os.listdir(cache_dir) == [name]

    (folder / name).unlink()  # a second load must come from the cache
    assert 'state_dict' in load_checkpoint_file(
        f'{base_url}/{name}', cache_dir=str(cache_dir))


def test_url_with_wrong_hash_prefix_is_refused_and_cache_cleaned(
        tmp_path, served_dir):
    folder, base_url = served_dir
    name = serve_teacher(folder, 'teacher-deadbeef.pth')
    actual_prefix = sha256_of(folder / name)[:8]
    assert actual_prefix != 'deadbeef'
    cache_dir = tmp_path / 'cache'
    url = f'{base_url}/{name}'

    with pytest.raises(CheckpointHashError) as error_info:
        load_checkpoint_file(url, cache_dir=str(cache_dir))

    message = str(error_info.value)
    assert 'deadbeef' in message and actual_prefix in message
    assert url in message
    assert os.listdir(cache_dir) == []


def test_tampered_cached_file_is_refused_and_deleted(tmp_path, served_dir):
    folder, base_url = served_dir
    name = serve_teacher(folder, 'teacher-{sha:.8}.pth')
    cache_dir = tmp_path / 'cache'
    cache_dir.mkdir()
    save_teacher(cache_dir / name)  # other weights under the same name

    with pytest.raises(CheckpointHashError, match='deleted'):
        load_checkpoint_file(f'{base_url}/{name}', cache_dir=str(cache_dir))
    assert os.listdir(cache_dir) == []
    # The next attempt downloads the genuine file again.
    assert 'state_dict' in load_checkpoint_file(
        f'{base_url}/{name}', cache_dir=str(cache_dir))


def test_missing_url_is_a_download_error(tmp_path, served_dir):
    _, base_url = served_dir
    url = f'{base_url}/absent.pth'
    with pytest.raises(CheckpointDownloadError, match='404') as error_info:
        load_checkpoint_file(url, cache_dir=str(tmp_path / 'cache'))
    assert url in str(error_info.value)
    assert os.listdir(tmp_path / 'cache') == []


def unused_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_unreachable_url_fails_fast(tmp_path):
    url = f'http://127.0.0.1:{unused_port()}/x.pth'
    start = time.monotonic()

    with pytest.raises(CheckpointDownloadError, match='refused') as error_info:
        load_checkpoint_file(url, cache_dir=str(tmp_path / 'cache'))

    assert url in str(error_info.value)
    assert time.monotonic() - start < 5


def test_silent_server_times_out(tmp_path):
    # Accepts connections (via the kernel backlog) but never answers.
    with socket.socket() as silent_server:
        silent_server.bind(('127.0.0.1', 0))
        silent_server.listen()
        url = f'http://127.0.0.1:{silent_server.getsockname()[1]}/x.pth'
        start = time.monotonic()

        with pytest.raises(CheckpointDownloadError, match='timed out'):
            load_checkpoint_file(
                url, cache_dir=str(tmp_path / 'cache'), timeout=0.5)

        assert time.monotonic() - start < 5


# ------------------------------------------- mmengine Runner checkpoints
# Trains for one iteration, then loads the checkpoint the way torch >= 2.6
# does by default. Nothing in that process registers an allow-list, and it
# keeps the Runner's global state (scopes, loggers) out of this process.
TRAIN_ONE_ITER_THEN_LOAD_SCRIPT = textwrap.dedent('''
    import os.path
    import pickle
    import sys

    import torch
    from mmengine.model import BaseModel
    from mmengine.runner import Runner


    class Regressor(BaseModel):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x, y, mode='tensor'):
            return dict(loss=((self.fc(x) - y) ** 2).mean())


    class RandomData(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return dict(x=torch.randn(4), y=torch.randn(2))


    runner = Runner(
        model=Regressor(),
        work_dir=sys.argv[1],
        train_dataloader=dict(
            dataset=RandomData(), batch_size=2,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1]),
        train_cfg=dict(by_epoch=False, max_iters=1),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=1, by_epoch=False)))
    runner.train()

    try:
        torch.load(os.path.join(sys.argv[1], 'iter_1.pth'), weights_only=True)
    except pickle.UnpicklingError as error:
        print('REFUSED WITHOUT ALLOW-LIST:', error)
    else:
        print('LOADED WITHOUT ALLOW-LIST')
''')


@pytest.fixture(scope='module')
def runner_run(tmp_path_factory):
    """Run the script above; yield (checkpoint path, its stdout)."""
    work_dir = tmp_path_factory.mktemp('runner')
    result = subprocess.run(
        [sys.executable, '-c', TRAIN_ONE_ITER_THEN_LOAD_SCRIPT,
         str(work_dir)],
        capture_output=True,
        text=True,
        env={
            **os.environ, 'OMP_NUM_THREADS': '1'
        },
        timeout=60)
    assert result.returncode == 0, result.stderr
    return str(work_dir / 'iter_1.pth'), result.stdout


def test_runner_checkpoint_fails_without_the_allow_list(runner_run):
    _, stdout = runner_run
    assert 'REFUSED WITHOUT ALLOW-LIST' in stdout
    assert 'HistoryBuffer' in stdout


def test_runner_checkpoint_loads_after_registration(runner_run):
    runner_checkpoint, _ = runner_run
    register_checkpoint_safe_globals()

    # What Runner.resume / load_checkpoint do for a local file.
    checkpoint = _load_checkpoint(runner_checkpoint)
    assert set(checkpoint) >= {
        'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'
    }
    loss_history = checkpoint['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss_history, HistoryBuffer)
    assert loss_history.statistics('mean') == loss_history.current()
    assert 'message_hub' in torch.load(runner_checkpoint)
    assert 'message_hub' in load_checkpoint_file(runner_checkpoint)


def test_registration_is_idempotent():
    register_checkpoint_safe_globals()
    registered = torch.serialization.get_safe_globals()
    register_checkpoint_safe_globals()

    assert sorted(map(repr, torch.serialization.get_safe_globals())) == \
        sorted(map(repr, registered))
    assert set(CHECKPOINT_SAFE_GLOBALS) <= set(registered)
