"""The bad-input catalogue: every case ends in ONE error that names the
cause, and the work directory of an earlier run (checkpoint,
``last_checkpoint``, logs) is left exactly as it was.

Most cases call ``tools/train.py``'s ``main`` in this process (a subprocess
costs seconds of imports per case); the code-carrying pickle also goes
through a real ``python tools/train.py`` process. The loader itself (every
file layout, pickle protocol, download failure) is unit-tested in
``tests/test_checkpoint_security.py``; its helpers are imported from there.
"""
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from conftest import ROOT, tool_env
from mmdfkd.models.utils import build_classifier
from mmdfkd.utils import register_all_modules
from test_checkpoint_security import (WritesMarkerFileViaSystem, sha256_of,
                                      unused_port, write_zip)

sys.path.insert(0, osp.join(ROOT, 'tools'))
import train as train_tool  # noqa: E402

register_all_modules(init_default_scope=False)

DAFL = 'configs/dafl/dafl_lenet5_lenet5half_1xb128_fashionmnist.py'
ADI = 'configs/deepinv/deepinv_adi_lenet5_lenet5half_1xb256_fashionmnist.py'
LENET5 = 'configs/_base_/models/lenet5_fashionmnist.py'
LENET5_HALF = 'configs/_base_/models/lenet5_half_fashionmnist.py'
ERROR_PREFIX = 'tools/train.py: error: '


def tiny(teacher, *extra):
    return ['--no-validate', '--cfg-options',
            f'model.teachers.teacher.ckpt_path={teacher}',
            'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2',
            'train_dataloader.batch_size=16', *extra]


def dafl_args(work_dir, teacher, *extra):
    return [DAFL, '--work-dir', str(work_dir), *tiny(teacher, *extra)]


@pytest.fixture(scope='module')
def trained_work_dir(tmp_path_factory, random_lenet5_teacher):
    """A finished 2-iteration DAFL run: iter_2.pth, last_checkpoint, logs."""
    work_dir = tmp_path_factory.mktemp('trained') / 'work'
    train_tool.main(dafl_args(work_dir, random_lenet5_teacher))
    assert osp.isfile(work_dir / 'iter_2.pth')
    return work_dir


@pytest.fixture
def work_dir(tmp_path, trained_work_dir):
    """A copy of the finished run for one case to (not) damage."""
    copy = tmp_path / 'work'
    shutil.copytree(trained_work_dir, copy)
    # last_checkpoint names the original folder's file: point it here
    (copy / 'last_checkpoint').write_text(str(copy / 'iter_2.pth'))
    return copy


def snapshot(folder):
    """Relative path -> sha256 of every file under ``folder``."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = osp.join(root, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, folder)] = hashlib.sha256(
                    f.read()).hexdigest()
    return files


def fails_cleanly(args, folder):
    """Run tools/train.py's main; return its one-line error message after
    checking that nothing under ``folder`` was lost or changed."""
    before = snapshot(folder)
    with pytest.raises(SystemExit) as exit_info:
        train_tool.main(args)
    after = snapshot(folder)
    assert {k: after.get(k) for k in before} == before, \
        'existing work-dir content was lost or changed'
    message = str(exit_info.value.code)
    assert message.startswith(ERROR_PREFIX), message
    return message[len(ERROR_PREFIX):]


def fails_with(error_type, args, folder):
    """As :func:`fails_cleanly`, for errors raised while training (their
    traceback is kept): one exception, no chained second one."""
    before = snapshot(folder)
    with pytest.raises(error_type) as error_info:
        train_tool.main(args)
    after = snapshot(folder)
    assert {k: after.get(k) for k in before} == before
    assert error_info.value.__cause__ is None
    return str(error_info.value)


def save_classifier(path, cfg_path, **overrides):
    """Save random weights of the classifier of ``cfg_path``."""
    cfg = Config(dict(model=Config.fromfile(osp.join(ROOT, cfg_path)).model))
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()})
    torch.save({'state_dict': build_classifier(cfg.model).state_dict()},
               path)
    return str(path)


# ------------------------------------------------------------ checkpoints
def test_missing_teacher_checkpoint(work_dir, tmp_path):
    missing = tmp_path / 'nowhere' / 'teacher.pth'
    message = fails_cleanly(dafl_args(work_dir, missing), work_dir)
    assert message == f'Checkpoint file not found: {missing}'


def test_missing_resume_checkpoint(work_dir, random_lenet5_teacher):
    missing = work_dir / 'iter_99.pth'
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher) +
        ['--resume', str(missing)],
        work_dir)
    assert message == f'--resume: checkpoint {missing} not found'


def test_last_checkpoint_names_a_deleted_file(work_dir,
                                              random_lenet5_teacher):
    os.remove(work_dir / 'iter_2.pth')
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher) + ['--resume'], work_dir)
    assert message.startswith(
        f'--resume: {work_dir}/last_checkpoint names the checkpoint '
        f'{work_dir}/iter_2.pth, which does not exist')


@pytest.mark.parametrize('kept_fraction', [0.0, 0.5])
def test_truncated_resume_checkpoint(work_dir, random_lenet5_teacher,
                                     kept_fraction):
    truncated = work_dir / 'iter_2_truncated.pth'
    data = (work_dir / 'iter_2.pth').read_bytes()
    truncated.write_bytes(data[:int(len(data) * kept_fraction)])
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher) +
        ['--resume', str(truncated)], work_dir)
    assert message.startswith(f'Checkpoint {truncated} is ')
    assert 'truncated or corrupt' in message or 'corrupt or not' in message


def test_teacher_checkpoint_of_another_architecture(work_dir, tmp_path):
    student_weights = save_classifier(tmp_path / 'lenet5_half.pth',
                                      LENET5_HALF)
    message = fails_cleanly(dafl_args(work_dir, student_weights), work_dir)
    assert message.startswith(
        f'Checkpoint {student_weights} does not fit ImageClassifier:')
    assert 'shape mismatches' in message


def test_resume_checkpoint_of_another_method(work_dir, random_lenet5_teacher):
    """A DAFL checkpoint resumed under the ADI config: mmengine would only
    warn and train a half-loaded model."""
    message = fails_cleanly(
        [ADI, '--work-dir', str(work_dir), '--resume',
         *tiny(random_lenet5_teacher, 'model.generator.batch_size=16',
               'model.memory_bank.capacity=32')],
        work_dir)
    assert message.startswith(f'Checkpoint {work_dir}/iter_2.pth does not '
                              'fit DeepInversionDistillation:')
    assert 'memory_bank.images' in message  # missing
    assert 'generator.fc.weight' in message  # unexpected


def test_teacher_checkpoint_with_another_number_of_classes(work_dir,
                                                           tmp_path):
    five_classes = save_classifier(tmp_path / 'lenet5_5cls.pth', LENET5,
                                   **{'head.num_classes': 5})
    message = fails_cleanly(dafl_args(work_dir, five_classes), work_dir)
    assert 'wrong number of classes: checkpoint has 5, model has 10 ' \
        '(head.fc.weight)' in message


def test_student_with_another_number_of_classes(work_dir,
                                                random_lenet5_teacher):
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher,
                  'model.architecture.head.num_classes=5'), work_dir)
    assert message == ('the student and the teachers predict different '
                       "numbers of classes: teacher 'teacher' 10, the "
                       'student 5')


def test_unreachable_url(work_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    url = f'http://127.0.0.1:{unused_port()}/teacher.pth'
    message = fails_cleanly(dafl_args(work_dir, url), work_dir)
    assert message.startswith(f'Could not download checkpoint {url}: ')
    assert 'refused' in message


def test_url_with_wrong_hash_prefix(work_dir, tmp_path, monkeypatch,
                                    served_dir, random_lenet5_teacher):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    folder, base_url = served_dir
    shutil.copy(random_lenet5_teacher, folder / 'teacher-deadbeef.pth')
    actual = sha256_of(folder / 'teacher-deadbeef.pth')[:8]
    url = f'{base_url}/teacher-deadbeef.pth'
    message = fails_cleanly(dafl_args(work_dir, url), work_dir)
    assert message.startswith(f'sha256 mismatch for checkpoint {url}: its '
                              "name expects a hash starting with 'deadbeef'"
                              f", but the file hashes to '{actual}'")


def test_pickle_carrying_code_is_refused_and_not_run(work_dir, tmp_path):
    """Through a real ``python tools/train.py`` process: exit status 1,
    one line on stderr, no traceback, and the payload never ran."""
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    write_zip(WritesMarkerFileViaSystem(marker), evil)
    before = snapshot(work_dir)

    proc = subprocess.run(
        [sys.executable, 'tools/train.py', *dafl_args(work_dir, evil)],
        cwd=ROOT, env=tool_env(), capture_output=True, text=True,
        timeout=120, check=False)

    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line == (
        f'{ERROR_PREFIX}Refused to load checkpoint {evil}: it references '
        'posix.system, which is not an allow-listed global. Loading it '
        'could run arbitrary code, so it was not unpickled.')
    assert not marker.exists()
    after = snapshot(work_dir)
    assert {k: after.get(k) for k in before} == before


def test_resume_from_a_pickle_carrying_code(work_dir, tmp_path,
                                            random_lenet5_teacher):
    marker = tmp_path / 'pwned'
    evil = work_dir / 'iter_3.pth'
    write_zip(WritesMarkerFileViaSystem(marker), evil)
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher) + ['--resume', str(evil)],
        work_dir)
    assert message.startswith(f'Refused to load checkpoint {evil}')
    assert not marker.exists()


# ------------------------------------------------------------ configs
@pytest.mark.parametrize('option, expected', [
    ('model.generator.type=DAFLGenerater',
     ("model.generator.type: 'DAFLGenerater' is not registered in the model "
      'registry of mmdfkd or its parents (mmpretrain, mmengine); did you '
      "mean 'DAFLGenerator'?")),
    ('model.distiller.distill_losses.loss_kd.type=KLDivergense',
     'KLDivergense is not in the mmdfkd::model registry'),
])
def test_unknown_registry_type(work_dir, random_lenet5_teacher, option,
                               expected):
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher, option), work_dir)
    assert message.startswith(expected), message


@pytest.mark.parametrize('option, expected', [
    ('train_cgf.max_iters=2',
     ("config key 'train_cgf' is not used by the Runner; did you mean "
      "'train_cfg'?")),
    ('model.student_iters=2',
     ("model.student_iters: DataFreeDistillation has no argument "
      "'student_iters'; did you mean 'student_iter'?")),
    ('model.generator.img_sise=32',
     ("model.generator.img_sise: DAFLGenerator has no argument 'img_sise'; "
      "did you mean 'img_size'?")),
])
def test_misspelt_config_key(work_dir, random_lenet5_teacher, option,
                             expected):
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher, option), work_dir)
    assert message == expected


@pytest.mark.parametrize('batch_size', [0, -4])
def test_non_positive_batch_size(work_dir, random_lenet5_teacher,
                                 batch_size):
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher,
                  f'train_dataloader.batch_size={batch_size}'), work_dir)
    assert message == ('train_dataloader.batch_size must be a positive '
                       f'integer, got {batch_size}')


def test_image_size_the_generator_cannot_produce(work_dir,
                                                 random_lenet5_teacher):
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher,
                  'model.generator.img_size=30'), work_dir)
    assert message == ('invalid setting while building the run: '
                       'DAFLGenerator upsamples twice by 2, so img_size '
                       'must be a multiple of 4; got 30')


def test_generator_images_the_teacher_cannot_take(work_dir,
                                                  random_lenet5_teacher):
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher,
                  'model.generator.img_size=28'), work_dir)
    assert message.startswith("teacher 'teacher' cannot take the "
                              "generator's images of shape (1, 28, 28)")


def test_student_input_size_differs_from_the_teachers(work_dir,
                                                      random_lenet5_teacher):
    message = fails_cleanly(
        dafl_args(work_dir, random_lenet5_teacher,
                  'model.architecture.backbone.in_channels=3'), work_dir)
    assert message.startswith('the student cannot take images of shape '
                              '(1, 32, 32) (C, H, W), which the teachers '
                              'take:')
    assert 'must have the same input size and channels' in message


def test_empty_memory_bank_at_the_first_student_step(work_dir,
                                                     random_lenet5_teacher):
    message = fails_with(
        RuntimeError,
        [ADI, '--work-dir', str(work_dir),
         *tiny(random_lenet5_teacher, 'model.student_train_first=True',
               'model.generator.batch_size=16',
               'model.memory_bank.capacity=32', 'model.generator_iter=1')],
        work_dir)
    assert 'the synthetic memory bank is empty' in message


def test_work_dir_that_is_not_writable(tmp_path, random_lenet5_teacher):
    if os.geteuid() == 0:
        # root writes through any permission bits: use a folder that cannot
        # exist because its parent is a regular file
        parent = tmp_path / 'a_file'
        parent.write_text('keep me\n')
        work_dir = parent / 'work'
        reason = 'Not a directory'
    else:
        parent = tmp_path / 'read_only'
        parent.mkdir()
        (parent / 'keep_me').write_text('keep me\n')
        parent.chmod(0o500)
        work_dir = parent / 'work'
        reason = 'Permission denied'
    try:
        message = fails_cleanly(dafl_args(work_dir, random_lenet5_teacher),
                                tmp_path)
    finally:
        if os.geteuid() != 0:
            parent.chmod(0o700)
    assert message == (f'the work directory {work_dir} is not writable '
                       f'({reason}); choose another one with --work-dir')


def test_no_validate_wins_over_val_options():
    """``--no-validate`` with ``--cfg-options val_dataloader.*`` (e.g. a
    command reused from a validating run) drops validation instead of
    failing inside mmengine's config merge."""
    args = train_tool.parse_args([
        DAFL, '--no-validate', '--cfg-options',
        'val_dataloader.batch_size=64', 'train_cfg.val_interval=2'
    ])
    cfg = train_tool.merge_args(Config.fromfile(osp.join(ROOT, DAFL)), args)
    assert cfg.val_dataloader is None and cfg.val_cfg is None
    assert cfg.val_evaluator is None
    assert cfg.train_cfg.val_interval == 2
