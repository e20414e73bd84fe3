"""tools/analysis/teacher_robustness.py: statistics, failure flags, the
report, resuming and input errors on fabricated per-teacher results (no
training), then one real study: two tiny LeNet-5 teachers trained on a
slice of Fashion-MNIST, a DAFL student of four iterations each, rerun to
check that finished teachers are skipped."""
import importlib.util
import json
import logging
import os
import os.path as osp

import pytest
from conftest import ROOT, run_tool

TOOL = 'tools/analysis/teacher_robustness.py'
DAFL = osp.join(ROOT,
                'configs/dafl/dafl_lenet5_lenet5half_1xb128_fashionmnist.py')
TEACHER = osp.join(ROOT, 'configs/teachers/lenet5_fashionmnist.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'teacher_robustness', osp.join(ROOT, TOOL))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tr = _load_tool()


def _result(name, teacher, student, best=None, best_iter=None):
    return {'teacher': name, 'teacher_accuracy': teacher,
            'student_last': student, 'student_best': best,
            'student_best_iter': best_iter}


# --------------------------------------------------------------------------
# statistics and flags
# --------------------------------------------------------------------------
def test_summary_statistics_and_flags():
    results = [
        _result('a', 90.0, 60.0, 61.0, 50),
        _result('b', 90.0, 30.0, 40.0, 25),
        # exactly half of its teacher: not below the fraction, no failure
        _result('c', 90.0, 45.0, 45.0, 60),
    ]
    summary = tr.summarize(results, fail_fraction=0.5)
    last = summary['stats']['student_last']
    # mean 45, deviations 15, -15, 0: sample variance 450 / 2
    assert last['mean'] == pytest.approx(45.0)
    assert last['std'] == pytest.approx(15.0)
    assert (last['min'], last['max'], last['n']) == (30.0, 60.0, 3)
    assert summary['stats']['student_best']['mean'] == pytest.approx(
        146.0 / 3)
    assert summary['stats']['teacher_accuracy']['std'] == 0.0
    assert summary['worst'] == {'teacher': 'b', 'student_last': 30.0}
    assert summary['failures'] == ['b']
    rows = {row['teacher']: row for row in summary['rows']}
    assert rows['b']['ratio'] == pytest.approx(1 / 3)
    assert [rows[k]['failed'] for k in 'abc'] == [False, True, False]
    # the threshold is relative to each student's own teacher
    summary = tr.summarize(
        [_result('x', 50.0, 26.0), _result('y', 95.0, 26.0)], 0.5)
    assert summary['failures'] == ['y']
    assert summary['worst_ratio']['teacher'] == 'y'
    summary = tr.summarize(results, fail_fraction=0.6)
    assert summary['failures'] == ['b', 'c']


def test_one_teacher_has_no_standard_deviation():
    stats = tr.summarize([_result('a', 90.0, 60.0)], 0.5)['stats']
    assert stats['student_last']['std'] is None
    # no best on the way in the log: left out of its statistics only
    assert stats['student_best']['n'] == 0
    assert 'std n/a' in tr.format_report(
        tr.summarize([_result('a', 90.0, 60.0)], 0.5), 'accuracy/top1')


def test_report_table():
    summary = tr.summarize([_result('seed0', 91.5, 70.25, 71.0, 50),
                            _result('seed1', 90.0, 20.0, 35.5, 25)], 0.5)
    text = tr.format_report(summary, 'accuracy/top1',
                            {'seed2': 'seed2 student training failed\nxx'})
    lines = text.splitlines()

    def cells(line):
        return [c.strip() for c in line.split('|')[1:-1]]

    assert cells(lines[0]) == [
        'teacher', 'teacher accuracy/top1', 'student (last)',
        'best on the way (iter)', 'ratio', 'flag']
    assert len({len(line) for line in lines[:5]}) == 1  # aligned columns
    seed0, seed1 = cells(lines[2]), cells(lines[3])
    assert seed0 == ['seed0', '91.50', '70.25', '71.00 (50)', '0.768', '']
    assert seed1 == ['seed1', '90.00', '20.00', '35.50 (25)', '0.222',
                     'FAIL']
    assert cells(lines[4]) == ['seed2', '', '', '', '', 'ERROR']
    assert 'student (last)         mean 45.12  std 35.53' in text
    assert 'worst case: seed1, student 20.00' in text
    assert '1 of 2 (seed1)' in text
    assert '  seed2: seed2 student training failed' in lines


# --------------------------------------------------------------------------
# reading the runs
# --------------------------------------------------------------------------
def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _write_lines(path, lines):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(''.join(line + '\n' for line in lines))


def test_validation_history_over_resumed_segments(tmp_path):
    metric = 'accuracy/top1'
    _write_lines(str(tmp_path / '20260101_000000/vis_data/scalars.json'), [
        json.dumps({'student.loss': 1.0, 'iter': 10, 'step': 10}),
        json.dumps({metric: 40.0, 'step': 25}),
        json.dumps({metric: 55.123456, 'step': 50}),
        '{"accuracy/top1": 3',  # the line a killed run was writing
    ])
    _write_lines(str(tmp_path / '20260101_010000/vis_data/scalars.json'), [
        json.dumps({metric: 55.5, 'step': 50}),  # repeated after resume
        json.dumps({metric: 52.0, 'step': 60}),
    ])
    (tmp_path / 'iter_60.pth').write_text('')  # not a folder: ignored
    history = tr.validation_history(str(tmp_path), metric)
    assert history == [(25, 40.0), (50, 55.5), (60, 52.0)]
    assert tr.best_of(history) == (55.5, 50)
    assert tr.best_of([(25, 50.0), (50, 50.0)]) == (50.0, 25)
    assert tr.best_of([]) == (None, None)
    assert tr.validation_history(str(tmp_path / 'missing'), metric) == []


def test_finished_checkpoint(tmp_path):
    from mmengine.config import Config
    cfg = Config({'train_cfg': {'max_iters': 4}})
    assert tr.finished_checkpoint(str(tmp_path), cfg) is None
    (tmp_path / 'iter_2.pth').write_text('')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert tr.finished_checkpoint(str(tmp_path), cfg) is None  # killed
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert tr.finished_checkpoint(str(tmp_path), cfg) is None  # deleted
    (tmp_path / 'iter_4.pth').write_text('')
    assert tr.finished_checkpoint(str(tmp_path),
                                  cfg) == str(tmp_path / 'iter_4.pth')
    epochs = Config({'train_cfg': {'max_epochs': 5}})
    assert tr.final_checkpoint_name(epochs) == 'epoch_5.pth'


def test_failed_subprocess_names_command_and_log_tail(tmp_path):
    log = str(tmp_path / 'run.log')
    script = 'import sys; print("\\n".join(map(str, range(100)))); ' \
        'print("cause of the failure"); sys.exit(3)'
    with pytest.raises(tr.RobustnessError) as error:
        tr.run_tool(['-c', script], log, 'seed7 student training')
    message = str(error.value)
    assert 'seed7 student training failed (exit code 3)' in message
    assert 'cause of the failure' in message and log in message
    # only the tail of the log
    assert '\n50\n' not in message and '\n99\n' in message


# --------------------------------------------------------------------------
# the study on fabricated results (no subprocess)
# --------------------------------------------------------------------------
@pytest.fixture
def checkpoints(tmp_path):
    paths = []
    for name in ('t_a', 't_b', 't_c'):
        path = tmp_path / 'ckpts' / f'{name}.pth'
        path.parent.mkdir(exist_ok=True)
        path.write_text('not read: results exist')
        paths.append(str(path))
    return paths


def _fabricate(work_dir, checkpoints, teacher_accs, students,
               cfg_options=None):
    for path, teacher, (last, best, best_iter) in zip(
            checkpoints, teacher_accs, students):
        name = osp.splitext(osp.basename(path))[0]
        result = dict(
            _result(name, teacher, last, best, best_iter),
            settings={
                'method_config': DAFL, 'cfg_options': cfg_options or {},
                'teacher': {'checkpoint': path}, 'teacher_key': 'teacher',
                'data_root': None, 'metric': 'accuracy/top1'})
        os.makedirs(osp.join(work_dir, name))
        with open(osp.join(work_dir, name, 'result.json'), 'w') as f:
            json.dump(result, f)


def _no_subprocess(*args, **kwargs):
    raise AssertionError(f'unexpected subprocess: {args}')


def test_report_from_finished_teachers(tmp_path, checkpoints, monkeypatch,
                                       capsys):
    work_dir = str(tmp_path / 'study')
    _fabricate(work_dir, checkpoints, [90.0, 91.0, 89.0],
               [(70.0, 71.0, 50), (40.0, 41.0, 25), (72.0, 72.0, 60)])
    monkeypatch.setattr(tr, 'run_tool', _no_subprocess)
    code = tr.main([DAFL, '--teachers', *checkpoints, '--teacher-accuracies',
                    '90', '91', '89', '--work-dir', work_dir,
                    '--fail-fraction', '0.5'])
    assert code == 0
    out = capsys.readouterr().out
    assert '| t_b ' in out and 'FAIL' in out
    assert '1 of 3 (t_b)' in out
    report = _read_json(osp.join(work_dir, tr.REPORT_FILE))
    assert report['failures'] == ['t_b']
    assert report['stats']['student_last']['mean'] == pytest.approx(182 / 3)
    assert report['worst'] == {'teacher': 't_b', 'student_last': 40.0}
    assert [r['teacher'] for r in report['results']] == ['t_a', 't_b', 't_c']
    assert report['errors'] == {}
    # another threshold is only a new summary of the same results
    out_file = str(tmp_path / 'strict.json')
    assert tr.main([DAFL, '--teachers', *checkpoints, '--teacher-accuracies',
                    '90', '91', '89', '--work-dir', work_dir,
                    '--fail-fraction', '0.8', '--out', out_file]) == 0
    assert _read_json(out_file)['failures'] == ['t_a', 't_b']


def test_results_of_other_settings_are_refused(tmp_path, checkpoints,
                                               monkeypatch, capsys):
    work_dir = str(tmp_path / 'study')
    _fabricate(work_dir, checkpoints, [90.0] * 3, [(70.0, 71.0, 50)] * 3)
    monkeypatch.setattr(tr, 'run_tool', _no_subprocess)
    code = tr.main([DAFL, '--teachers', *checkpoints, '--teacher-accuracies',
                    '90', '90', '90', '--work-dir', work_dir,
                    '--cfg-options', 'train_cfg.max_iters=7'])
    assert code == 1
    captured = capsys.readouterr()
    assert 'ERROR' in captured.out
    report = _read_json(osp.join(work_dir, tr.REPORT_FILE))
    assert sorted(report['errors']) == ['t_a', 't_b', 't_c']
    assert 'cfg_options' in report['errors']['t_a']
    assert 'train_cfg.max_iters' in report['errors']['t_a']
    # a given teacher accuracy that disagrees with the stored one
    assert tr.main([DAFL, '--teachers', *checkpoints, '--teacher-accuracies',
                    '90', '90', '80', '--work-dir', work_dir]) == 1
    report = _read_json(osp.join(work_dir, tr.REPORT_FILE))
    assert list(report['errors']) == ['t_c']


def test_killed_student_is_resumed_and_last_checkpoint_evaluated(
        tmp_path, checkpoints, monkeypatch, caplog):
    """A student killed at iteration 2 of 4: the tool continues it with
    tools/train.py --resume (not from scratch), evaluates iter_4.pth (not
    the best checkpoint) and, run again, runs nothing."""
    work_dir = tmp_path / 'study'
    student_dir = work_dir / 't_a' / 'student'
    student_dir.mkdir(parents=True)
    (student_dir / 'iter_2.pth').write_text('')
    (student_dir / 'last_checkpoint').write_text(
        str(student_dir / 'iter_2.pth'))
    _write_lines(str(student_dir / '20260101_000000/vis_data/scalars.json'),
                 [json.dumps({'accuracy/top1': 50.0, 'step': 2})])
    calls = []

    def fake_run_tool(tool_args, log_path, what, progress_interval=0.0):
        calls.append(tool_args)
        if tool_args[0] == 'tools/train.py':
            assert '--resume' in tool_args
            options = tool_args[tool_args.index('--cfg-options') + 1:]
            assert f'model.teachers.teacher.ckpt_path={checkpoints[0]}' in \
                options
            assert options[-1] == 'train_cfg.max_iters=4'
            (student_dir / 'iter_4.pth').write_text('')
            (student_dir / 'last_checkpoint').write_text(
                str(student_dir / 'iter_4.pth'))
            _write_lines(
                str(student_dir / '20260101_010000/vis_data/scalars.json'),
                [json.dumps({'accuracy/top1': 45.0, 'step': 4})])
        else:
            assert tool_args[:3] == ['tools/test.py', DAFL,
                                     str(student_dir / 'iter_4.pth')]
            out = tool_args[tool_args.index('--out') + 1]
            with open(out, 'w') as f:
                json.dump({'accuracy/top1': 45.0000001}, f)
        return 1.5

    monkeypatch.setattr(tr, 'run_tool', fake_run_tool)
    argv = [DAFL, '--teachers', checkpoints[0], '--teacher-accuracies', '90',
            '--work-dir', str(work_dir), '--cfg-options',
            'train_cfg.max_iters=4']
    assert tr.main(argv) == 0
    assert [c[0] for c in calls] == ['tools/train.py', 'tools/test.py']
    result = _read_json(work_dir / 't_a' / 'result.json')
    assert result['student_last'] == 45.0
    assert (result['student_best'], result['student_best_iter']) == (50.0, 2)
    assert result['validation_history'] == [[2, 50.0], [4, 45.0]]
    assert result['student_train_resumed'] is True
    assert result['teacher_accuracy_source'] == 'given'
    calls.clear()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='teacher_robustness'):
        assert tr.main(argv) == 0
    assert calls == []
    assert 't_a: done before, skipped' in caplog.text


@pytest.mark.parametrize('argv, message', [
    (['missing.py', '--teachers', 'x.pth', '--teacher-accuracies', '90'],
     'method config .*missing.py not found'),
    ([DAFL, '--teachers', 'missing.pth', '--teacher-accuracies', '90'],
     'teacher checkpoint .*missing.pth not found'),
    ([DAFL, '--train-teachers', 'missing_teacher.py', '--seeds', '0'],
     'teacher config .*missing_teacher.py not found'),
    ([DAFL, '--teachers', 'x.pth', '--cfg-options', 'trian_cfg.max_iters=4',
      '--teacher-accuracies', '90'], "did you mean 'train_cfg'"),
    ([DAFL, '--teachers', 'x.pth', '--teacher-accuracies', '90',
      '--cfg-options', 'model.teachers.teacher.ckpt_path=y.pth'],
     'must not set model.teachers.teacher.ckpt_path'),
])
def test_bad_inputs_fail_before_any_run(argv, message, tmp_path,
                                        monkeypatch):
    monkeypatch.setattr(tr, 'run_tool', _no_subprocess)
    (tmp_path / 'x.pth').write_text('')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=message):
        tr.main([*argv, '--work-dir', str(tmp_path / 'w')])


@pytest.mark.parametrize('argv, message', [
    (['--teachers', 'a.pth', 'b.pth', '--teacher-accuracies', '90'],
     '1 --teacher-accuracies for 2 --teachers'),
    (['--teachers', 'a.pth'], 'needs --teacher-config'),
    (['--train-teachers', TEACHER], 'needs --seeds'),
    (['--train-teachers', TEACHER, '--seeds', '1', '1'], 'repeats a seed'),
    (['--teachers', 'a.pth', '--seeds', '0', '--teacher-accuracies', '9'],
     '--seeds goes with --train-teachers'),
    (['--teachers', 'a.pth', '--teacher-accuracies', '90',
      '--fail-fraction', '1.5'], '--fail-fraction must be in (0, 1]'),
    (['--train-teachers', TEACHER, '--seeds', '0', '--teacher-cfg-options',
      'randomness.seed=3'], 'the seed comes from --seeds'),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        tr.parse_args([DAFL, *argv])
    err = capsys.readouterr().err
    assert message in err, err


def test_teacher_names_from_checkpoints():
    args = tr.parse_args([DAFL, '--teachers', 'a/t.pth', 'b/t.pth',
                          'https://host/zoo/resnet-1a2b.pth?dl=1',
                          '--teacher-accuracies', '90', '91', '92'])
    names = [t.name for t in tr.teachers_from_args(args)]
    assert names == ['t', 't_2', 'resnet-1a2b']
    assert tr.teachers_from_args(args)[2].checkpoint.startswith('https://')


# --------------------------------------------------------------------------
# one real study
# --------------------------------------------------------------------------
# teachers: one epoch on 2000 training images (8 steps); evaluation on 1000
# test images; students: 4 DAFL iterations of 32 images, validated at 2, 4
SUBSET = ['val_dataloader.dataset.indices=1000',
          'test_dataloader.dataset.indices=1000']


@pytest.mark.timeout(600)
def test_real_study_with_two_trained_teachers(tmp_path, fashion_mnist_root):
    work_dir = str(tmp_path / 'study')
    argv = [TOOL, DAFL, '--train-teachers', TEACHER, '--seeds', '0', '1',
            '--work-dir', work_dir, '--data-root', fashion_mnist_root,
            '--teacher-cfg-options', 'train_cfg.max_epochs=1',
            'train_dataloader.dataset.indices=2000', *SUBSET,
            '--cfg-options', 'train_cfg.max_iters=4',
            'train_cfg.val_interval=2', 'train_dataloader.batch_size=32',
            *SUBSET]
    proc = run_tool(argv, timeout=600)
    report = _read_json(osp.join(work_dir, tr.REPORT_FILE))
    assert report['errors'] == {}
    results = {r['teacher']: r for r in report['results']}
    assert sorted(results) == ['seed0', 'seed1']
    for name, r in results.items():
        folder = osp.join(work_dir, name)
        assert r['teacher_checkpoint'] == osp.join(folder, 'teacher',
                                                   'epoch_1.pth')
        # eight steps already beat chance clearly; the two seeds differ
        assert 30 < r['teacher_accuracy'] <= 100
        assert r['student_checkpoint'] == osp.join(folder, 'student',
                                                   'iter_4.pth')
        metrics = _read_json(osp.join(folder, 'student_metrics.json'))
        assert r['student_last'] == round(metrics['accuracy/top1'], 4)
        assert [step for step, _ in r['validation_history']] == [2, 4]
        assert r['student_best'] == max(v for _, v in r['validation_history'])
        assert r['cpu_seconds']['student_train'] > 0
    assert results['seed0']['teacher_accuracy'] != \
        results['seed1']['teacher_accuracy']
    out = proc.stdout
    assert '| seed0 ' in out and '| seed1 ' in out
    assert 'student (last)         mean' in out
    assert 'catastrophic failures (student < 0.5 x teacher)' in out

    # finished teachers are skipped: no training, no evaluation
    rerun = run_tool(argv, timeout=120)
    assert rerun.stderr.count('done before, skipped') == 2
    assert 'training the' not in rerun.stderr
    assert 'evaluating' not in rerun.stderr
    assert _read_json(osp.join(work_dir, tr.REPORT_FILE))[
        'stats'] == report['stats']
