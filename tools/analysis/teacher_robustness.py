"""How robust is a data-free method to the choice of its teacher?

TA-DFKD (Shin & Choi, AAAI 2024) argues that class-prior methods such as
DAFL collapse with some teachers and not with others of the same
architecture, so one teacher says little about a method. This tool runs one
method config once per teacher (same architecture, different seeds or
checkpoints) and reports, over the teachers, the mean, the standard
deviation and the worst case of the student's accuracy, and flags
catastrophic failures: a student below ``--fail-fraction`` times its own
teacher's accuracy.

    # teachers given as checkpoints (paths or URLs); their accuracy is
    # measured with tools/test.py on --teacher-config, or given
    python tools/analysis/teacher_robustness.py METHOD_CONFIG \\
        --teachers a.pth b.pth c.pth --teacher-config TEACHER_CONFIG \\
        [--teacher-accuracies 91.5 90.8 91.1] \\
        [--work-dir DIR] [--out FILE] [--fail-fraction 0.5] \\
        [--data-root DIR] [--cfg-options k=v ...]

    # teachers trained by the tool with tools/train.py, one per seed
    # (--cfg-options randomness.seed=S), using each run's last checkpoint
    python tools/analysis/teacher_robustness.py METHOD_CONFIG \\
        --train-teachers TEACHER_CONFIG --seeds 0 1 2 [--teachers-dir DIR]

Every step is a subprocess of ``tools/train.py`` or ``tools/test.py`` run
with this Python interpreter, one after the other, its output in a log file
of the work directory (a failure shows the command and the log's tail).
Layout of ``--work-dir`` (default ``work_dirs/robust_<config name>``)::

    <teacher>/teacher/             tools/train.py of a --train-teachers seed
                                   (under --teachers-dir/<teacher> if given,
                                   to share teachers between methods)
    <teacher>/teacher_metrics.json tools/test.py of the teacher checkpoint
    <teacher>/student/             tools/train.py of the method config
    <teacher>/student_metrics.json tools/test.py of the student's LAST
                                   checkpoint (no best-of-N picking)
    <teacher>/result.json          written last: the teacher is done
    teacher_robustness.json        the report (--out)

Resumable: a teacher whose ``result.json`` exists is not run again, and an
interrupted training continues from its last checkpoint
(``tools/train.py --resume``). A work directory holding runs with other
settings (config, ``--cfg-options``, teacher checkpoint, data root) is
refused rather than mixed into the report. The best validation accuracy on
the way is read from the student's log (mmengine's ``scalars.json``) and
reported separately from the last checkpoint's.

``--cfg-options`` reach every student run (e.g. ``train_cfg.max_iters=60``);
``--teacher-cfg-options`` every teacher training and evaluation;
``--data-root`` every run. The student's teacher is set by
``--cfg-options model.teachers.<key>.ckpt_path=<checkpoint>``.
"""
import argparse
import json
import logging
import math
import os
import os.path as osp
import re
import resource
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import urlparse

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

RESULT_FILE = 'result.json'
REPORT_FILE = 'teacher_robustness.json'
LOG_TAIL_LINES = 40
# the training progress line of mmengine's logger
PROGRESS_PATTERN = re.compile(
    r'(Iter|Epoch)\(train\)\s*\[[^\]]*\](\[[^\]]*\])?')

logger = logging.getLogger('teacher_robustness')


class RobustnessError(RuntimeError):
    """An input or a step of the study failed; the message names the cause
    (and, for a subprocess, its command and the tail of its log)."""


@dataclass
class Teacher:
    """One teacher of the study: a checkpoint (given, or trained from
    ``seed``) and, if known in advance, its accuracy."""
    name: str
    checkpoint: str | None = None
    accuracy: float | None = None
    seed: int | None = None


# ------------------------------------------------------------------ inputs
def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(
        prog='tools/analysis/teacher_robustness.py',
        description='Run a data-free method config with several teachers of '
        'the same architecture and report the mean, std and worst case of '
        'the student accuracy, flagging catastrophic failures.')
    parser.add_argument('config', help='the method (student) config')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        '--teachers', nargs='+', metavar='CKPT',
        help='teacher checkpoints (local paths or http(s) URLs)')
    source.add_argument(
        '--train-teachers', metavar='TEACHER_CONFIG',
        help='train one teacher per --seeds value with this config')
    parser.add_argument(
        '--seeds', nargs='+', type=int,
        help='seeds of --train-teachers (randomness.seed=S)')
    parser.add_argument(
        '--teacher-config',
        help='config that evaluates the --teachers checkpoints with '
        'tools/test.py (not needed with --teacher-accuracies)')
    parser.add_argument(
        '--teacher-accuracies', nargs='+', type=float, metavar='ACC',
        help="the --teachers' accuracies in percent, in the same order "
        '(skips their evaluation)')
    parser.add_argument(
        '--teachers-dir',
        help='where --train-teachers trains (default: <work-dir>/<teacher>/'
        'teacher); give the same folder to studies of several methods to '
        'train each teacher once')
    parser.add_argument(
        '--work-dir',
        help='default: work_dirs/robust_<config name>')
    parser.add_argument(
        '--out', help=f'report JSON (default: <work-dir>/{REPORT_FILE})')
    parser.add_argument(
        '--fail-fraction', type=float, default=0.5,
        help='a student below this fraction of its teacher\'s accuracy is a '
        'catastrophic failure (default 0.5)')
    parser.add_argument(
        '--metric', default='accuracy/top1',
        help='metric of tools/test.py and of the logs (default '
        'accuracy/top1)')
    parser.add_argument(
        '--teacher-key',
        help='key of model.teachers to replace (default: the only one)')
    parser.add_argument(
        '--data-root', help='data_root=... for every run')
    parser.add_argument(
        '--progress-interval', type=float, default=60.0,
        help='seconds between progress lines of a running training '
        '(0: none; default 60)')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
        help='passed to every student run, e.g. train_cfg.max_iters=60')
    parser.add_argument(
        '--teacher-cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
        help='passed to every teacher training and evaluation')
    args = parser.parse_args(argv)

    # --cfg-options are kept as the strings the user typed (that is what the
    # subprocesses get) and parsed by mmengine's DictAction for the checks
    options_parser = argparse.ArgumentParser(add_help=False)
    options_parser.add_argument('--o', nargs='*', action=DictAction)
    for name in ('cfg_options', 'teacher_cfg_options'):
        raw = getattr(args, name)
        try:
            parsed = options_parser.parse_args(['--o', *raw]).o if raw else {}
        except (SystemExit, ValueError):
            parser.error(f'--{name.replace("_", "-")}: cannot parse {raw}')
        setattr(args, name + '_dict', parsed or {})

    if args.train_teachers:
        if not args.seeds:
            parser.error('--train-teachers needs --seeds S [S ...]')
        if len(set(args.seeds)) != len(args.seeds):
            parser.error(f'--seeds repeats a seed: {args.seeds}')
        if args.teacher_accuracies or args.teacher_config:
            parser.error('--teacher-accuracies and --teacher-config go with '
                         '--teachers (trained teachers are evaluated with '
                         'their own config)')
        if any(k.startswith('randomness.seed')
               for k in args.teacher_cfg_options_dict):
            parser.error('--teacher-cfg-options: the seed comes from --seeds')
    else:
        if args.seeds:
            parser.error('--seeds goes with --train-teachers')
        if args.teachers_dir:
            parser.error('--teachers-dir goes with --train-teachers')
        if args.teacher_accuracies is not None:
            if len(args.teacher_accuracies) != len(args.teachers):
                parser.error(
                    f'{len(args.teacher_accuracies)} --teacher-accuracies '
                    f'for {len(args.teachers)} --teachers')
            if any(not 0 < a <= 100 for a in args.teacher_accuracies):
                parser.error('--teacher-accuracies are percentages in '
                             f'(0, 100]: {args.teacher_accuracies}')
        elif not args.teacher_config:
            parser.error('--teachers needs --teacher-config (to measure '
                         'their accuracy) or --teacher-accuracies')
    if not 0 < args.fail_fraction <= 1:
        parser.error(f'--fail-fraction must be in (0, 1], got '
                     f'{args.fail_fraction}')
    if args.work_dir is None:
        stem = osp.splitext(osp.basename(args.config))[0]
        args.work_dir = osp.join('work_dirs', f'robust_{stem}')
    # the subprocesses run in the repository root: paths relative to the
    # caller's folder are made absolute first
    for name in ('config', 'train_teachers', 'teacher_config', 'data_root',
                 'teachers_dir', 'work_dir'):
        if getattr(args, name):
            setattr(args, name, osp.abspath(getattr(args, name)))
    args.out = osp.abspath(args.out or osp.join(args.work_dir, REPORT_FILE))
    return args


def is_url(path: str) -> bool:
    return path.startswith(('http://', 'https://'))


def checkpoint_name(path: str) -> str:
    """A folder name for a checkpoint: its file name without extension."""
    base = osp.basename(urlparse(path).path if is_url(path) else path)
    stem = base.split('.')[0] or 'teacher'
    return re.sub(r'[^A-Za-z0-9_.-]', '_', stem)


def teachers_from_args(args) -> list:
    if args.train_teachers:
        return [Teacher(f'seed{s}', seed=s) for s in args.seeds]
    teachers, seen = [], {}
    for i, path in enumerate(args.teachers):
        name = checkpoint_name(path)
        # the same file name in two folders: number the later ones
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f'{name}_{seen[name]}'
        accuracy = (args.teacher_accuracies[i]
                    if args.teacher_accuracies else None)
        teachers.append(Teacher(
            name, path if is_url(path) else osp.abspath(path), accuracy))
    return teachers


def load_config(path: str, options: dict, what: str):
    """The config with ``options`` merged, checked as tools/train.py checks
    it, so that a misspelt option fails before any run starts."""
    from mmengine.config import Config

    from mmdfkd.utils import register_all_modules
    from mmdfkd.utils.config_checks import ConfigError, check_config
    if not osp.isfile(path):
        raise RobustnessError(f'{what} {path} not found')
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    try:
        check_config(cfg)
    except ConfigError as error:
        raise RobustnessError(f'{what} {path}: {error}') from None
    return cfg


def check_inputs(args) -> tuple:
    """Everything that can be checked before the first run: the configs,
    the teachers' checkpoints and the key of the teacher to replace.
    Returns (method config, teacher list, teacher key)."""
    cfg = load_config(args.config, args.cfg_options_dict, 'method config')
    teachers_cfg = cfg.model.get('teachers') or {}
    if args.teacher_key:
        if args.teacher_key not in teachers_cfg:
            raise RobustnessError(
                f'--teacher-key {args.teacher_key!r}: the config\'s '
                f'model.teachers has {sorted(teachers_cfg)}')
        key = args.teacher_key
    elif len(teachers_cfg) == 1:
        key = next(iter(teachers_cfg))
    else:
        raise RobustnessError(
            f'{args.config}: model.teachers has {sorted(teachers_cfg) or 0} '
            'teachers; name the one to replace with --teacher-key')
    if any(k.startswith(f'model.teachers.{key}.ckpt_path')
           for k in args.cfg_options_dict):
        raise RobustnessError(
            f'--cfg-options must not set model.teachers.{key}.ckpt_path: '
            'the tool sets it to each teacher in turn')
    teacher_config = args.train_teachers or args.teacher_config
    if teacher_config:
        load_config(teacher_config, args.teacher_cfg_options_dict,
                    'teacher config')
    teachers = teachers_from_args(args)
    for teacher in teachers:
        if (teacher.checkpoint and not is_url(teacher.checkpoint)
                and not osp.isfile(teacher.checkpoint)):
            raise RobustnessError(
                f'teacher checkpoint {teacher.checkpoint} not found')
    return cfg, teachers, key


# ------------------------------------------------------------ subprocesses
def json_normalised(value):
    """``value`` as it reads back from JSON (tuples become lists), so that
    settings stored in a file compare equal to the current ones."""
    return json.loads(json.dumps(value))


def write_json(path: str, data) -> None:
    """Write atomically: a killed run leaves the old file or none."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return '(no log)'


def last_progress_line(path: str) -> str | None:
    """The latest ``Iter(train) [k/N] ... eta ...`` line of a log."""
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 20000))
            text = f.read().decode(errors='replace')
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        match = PROGRESS_PATTERN.search(line)
        if match:
            eta = re.search(r'eta: (\S+)', line)
            return match.group(0) + (f' eta {eta.group(1)}' if eta else '')
    return None


def run_tool(tool_args: list, log_path: str, what: str,
             progress_interval: float = 0.0) -> float:
    """Run ``python tools/<tool_args>`` from the repository root with this
    interpreter, its output in ``log_path``. Returns the CPU seconds (user +
    system) it used; raises :class:`RobustnessError` with the command and
    the log's tail if it fails."""
    command = [sys.executable, *tool_args]
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, 'a') as log:
        log.write(f'\n$ {" ".join(command)}\n')
        log.flush()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        reported = None
        try:
            while True:
                try:
                    returncode = process.wait(
                        timeout=progress_interval or None)
                    break
                except subprocess.TimeoutExpired:
                    line = last_progress_line(log_path)
                    if line and line != reported:
                        logger.info('  %s: %s', what, line)
                        reported = line
        except BaseException:
            # interrupted (Ctrl-C): do not leave the run behind
            process.kill()
            process.wait()
            raise
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if returncode != 0:
        raise RobustnessError(
            f'{what} failed (exit code {returncode}): {" ".join(command)}\n'
            f'last lines of {log_path}:\n{log_tail(log_path)}')
    return (after.ru_utime - before.ru_utime) + (after.ru_stime -
                                                 before.ru_stime)


def options_args(*option_lists) -> list:
    options = [o for options in option_lists for o in options]
    return ['--cfg-options', *options] if options else []


def final_checkpoint_name(cfg) -> str:
    """File name of the checkpoint a finished run of ``cfg`` ends with."""
    train_cfg = cfg.get('train_cfg') or {}
    if 'max_iters' in train_cfg:
        return f'iter_{train_cfg["max_iters"]}.pth'
    if 'max_epochs' in train_cfg:
        return f'epoch_{train_cfg["max_epochs"]}.pth'
    raise RobustnessError('train_cfg has neither max_iters nor max_epochs')


def finished_checkpoint(work_dir: str, cfg) -> str | None:
    """The final checkpoint of a finished run in ``work_dir``, or None if
    the run has not finished (or never started)."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        path = f.read().strip()
    if osp.basename(path) == final_checkpoint_name(cfg) and osp.isfile(path):
        return path
    return None


def settings_difference(stored: dict, current: dict) -> str | None:
    """None if the settings agree, else which differ and how."""
    stored, current = json_normalised(stored), json_normalised(current)
    if stored == current:
        return None
    changed = sorted(k for k in set(stored) | set(current)
                     if stored.get(k) != current.get(k))
    return (f'{", ".join(changed)}: stored '
            f'{ {k: stored.get(k) for k in changed} }, now '
            f'{ {k: current.get(k) for k in changed} }')


def check_settings(folder: str, settings: dict, what: str,
                   file_name: str = 'settings.json') -> None:
    """Record the settings of the runs in ``folder``; refuse to continue
    runs made with other settings (a report must not mix them)."""
    path = osp.join(folder, file_name)
    if osp.isfile(path):
        difference = settings_difference(read_json(path), settings)
        if difference:
            raise RobustnessError(
                f'{what}: {folder} holds runs made with other settings '
                f'({difference}); use another --work-dir (or '
                '--teachers-dir) or delete the folder')
    else:
        os.makedirs(folder, exist_ok=True)
        write_json(path, json_normalised(settings))


# --------------------------------------------------------------- the logs
def validation_history(work_dir: str, metric: str) -> list:
    """``[(iteration, value), ...]`` of every validation of the run in
    ``work_dir``, read from mmengine's ``<timestamp>/vis_data/scalars.json``
    of each (resumed) segment. The student runs log validations by
    iteration (``log_metric_by_epoch=False``); a validation repeated after
    a resume counts once, with its latest value."""
    by_step = {}
    order = []
    if not osp.isdir(work_dir):
        return []
    for stamp in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        with open(path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line a killed run was writing
                if metric in entry:
                    step = entry.get('step')
                    if step not in by_step:
                        order.append(step)
                    by_step[step] = round(float(entry[metric]), 4)
    return [(step, by_step[step]) for step in order]


def best_of(history: list) -> tuple:
    """(best value, its iteration) of a validation history; the earliest
    iteration on ties."""
    if not history:
        return None, None
    best = max(value for _, value in history)
    return best, next(step for step, value in history if value == best)


# ------------------------------------------------------------------ steps
def metric_of(metrics_file: str, metric: str) -> float:
    metrics = read_json(metrics_file)
    if metric not in metrics:
        raise RobustnessError(
            f'{metrics_file} has no {metric!r} (it has {sorted(metrics)}); '
            'choose one with --metric')
    # float32 accuracies such as 66.4000015: 4 decimals, as tools/test.py
    return round(float(metrics[metric]), 4)


def evaluate(config: str, checkpoint: str, folder: str, name: str,
             options: list, metric: str, what: str) -> tuple:
    """Top-1 (``metric``) of ``checkpoint`` by tools/test.py, cached in
    ``<folder>/<name>_metrics.json``. Returns (value, CPU seconds)."""
    metrics_file = osp.join(folder, f'{name}_metrics.json')
    if osp.isfile(metrics_file):
        return metric_of(metrics_file, metric), 0.0
    tmp = metrics_file + '.partial'
    cpu = run_tool(
        ['tools/test.py', config, checkpoint, '--work-dir',
         osp.join(folder, f'{name}_test'), '--out', tmp,
         *options_args(options)], osp.join(folder, f'{name}_test.log'), what)
    os.replace(tmp, metrics_file)
    return metric_of(metrics_file, metric), cpu


def teacher_settings(teacher: Teacher, args) -> dict:
    """What defines a teacher: its checkpoint, or how it is trained."""
    if teacher.seed is None:
        return {'checkpoint': teacher.checkpoint}
    return {
        'config': args.train_teachers,
        'seed': teacher.seed,
        'cfg_options': args.teacher_cfg_options_dict,
        'data_root': args.data_root,
    }


def train_teacher(teacher: Teacher, args, folder: str) -> tuple:
    """Train (or finish training) the teacher of ``teacher.seed`` in
    ``<folder>/teacher``. Returns (last checkpoint, CPU seconds)."""
    train_dir = osp.join(folder, 'teacher')
    check_settings(folder, teacher_settings(teacher, args),
                   f'teacher {teacher.name}', 'teacher_settings.json')
    cfg = load_config(args.train_teachers, dict(
        args.teacher_cfg_options_dict, **{'randomness.seed': teacher.seed}),
        'teacher config')
    checkpoint = finished_checkpoint(train_dir, cfg)
    if checkpoint:
        logger.info('%s: teacher trained before (%s)', teacher.name,
                    checkpoint)
        return checkpoint, 0.0
    log_path = osp.join(folder, 'teacher_train.log')
    logger.info('%s: training the teacher, seed %d (log %s)', teacher.name,
                teacher.seed, log_path)
    cpu = run_tool(['tools/train.py', args.train_teachers, '--work-dir',
                    train_dir, '--resume',
                    *options_args(teacher_options(teacher, args))],
                   log_path, f'{teacher.name} teacher training',
                   args.progress_interval)
    checkpoint = finished_checkpoint(train_dir, cfg)
    if checkpoint is None:
        raise RobustnessError(
            f'{teacher.name}: the teacher training ended without its final '
            f'checkpoint {final_checkpoint_name(cfg)} in {train_dir} (see '
            f'{log_path})')
    return checkpoint, cpu


def data_root_options(args) -> list:
    return [f'data_root={args.data_root}'] if args.data_root else []


def teacher_options(teacher: Teacher, args) -> list:
    """--cfg-options of the teacher's training and evaluation runs."""
    seed = ([] if teacher.seed is None else
            [f'randomness.seed={teacher.seed}'])
    return [*data_root_options(args), *args.teacher_cfg_options, *seed]


def run_teacher(teacher: Teacher, args, cfg, key: str) -> dict:
    """Everything for one teacher; returns its result (also written to
    ``<work-dir>/<teacher>/result.json``)."""
    folder = osp.join(args.work_dir, teacher.name)
    result_path = osp.join(folder, RESULT_FILE)
    settings = {
        'method_config': osp.abspath(args.config),
        'cfg_options': args.cfg_options_dict,
        'teacher': teacher_settings(teacher, args),
        'teacher_key': key,
        'data_root': args.data_root,
        'metric': args.metric}
    if osp.isfile(result_path):
        result = read_json(result_path)
        difference = settings_difference(result.get('settings') or {},
                                         settings)
        if difference:
            raise RobustnessError(
                f'{result_path} was made with other settings '
                f'({difference}); use another --work-dir or delete it')
        if (teacher.accuracy is not None
                and result['teacher_accuracy'] != teacher.accuracy):
            raise RobustnessError(
                f'{result_path} was made with teacher accuracy '
                f'{result["teacher_accuracy"]}, --teacher-accuracies gives '
                f'{teacher.accuracy}; use another --work-dir or delete it')
        logger.info('%s: done before, skipped (%s)', teacher.name,
                    result_path)
        return result
    check_settings(folder, settings, f'teacher {teacher.name}')
    cpu = {}

    # 1. the teacher checkpoint and its accuracy
    if teacher.seed is not None:
        teacher_folder = (osp.join(args.teachers_dir, teacher.name)
                          if args.teachers_dir else folder)
        teacher.checkpoint, cpu['teacher_train'] = train_teacher(
            teacher, args, teacher_folder)
        teacher_config = args.train_teachers
    else:
        teacher_folder = folder
        teacher_config = args.teacher_config
    if teacher.accuracy is None:
        if not osp.isfile(osp.join(teacher_folder, 'teacher_metrics.json')):
            logger.info('%s: evaluating the teacher with tools/test.py',
                        teacher.name)
        teacher.accuracy, cpu['teacher_test'] = evaluate(
            teacher_config, teacher.checkpoint, teacher_folder, 'teacher',
            teacher_options(teacher, args), args.metric,
            f'{teacher.name} teacher test')
        accuracy_source = 'tools/test.py'
    else:
        accuracy_source = 'given'
    logger.info('%s: teacher %s %.2f', teacher.name, args.metric,
                teacher.accuracy)

    # 2. the student, trained to the end, and its LAST checkpoint evaluated
    student_dir = osp.join(folder, 'student')
    student_options = [
        f'model.teachers.{key}.ckpt_path={teacher.checkpoint}',
        # validations logged by iteration, for the best-on-the-way report
        'default_hooks.logger.log_metric_by_epoch=False',
        *data_root_options(args), *args.cfg_options]
    checkpoint = finished_checkpoint(student_dir, cfg)
    resumed = False
    if checkpoint is None:
        log_path = osp.join(folder, 'student_train.log')
        resumed = osp.isfile(osp.join(student_dir, 'last_checkpoint'))
        logger.info('%s: %s the student (log %s)', teacher.name,
                    'resuming' if resumed else 'training', log_path)
        cpu['student_train'] = run_tool(
            ['tools/train.py', args.config, '--work-dir', student_dir,
             '--resume', *options_args(student_options)], log_path,
            f'{teacher.name} student training', args.progress_interval)
        checkpoint = finished_checkpoint(student_dir, cfg)
        if checkpoint is None:
            raise RobustnessError(
                f'{teacher.name}: the student training ended without its '
                f'final checkpoint {final_checkpoint_name(cfg)} in '
                f'{student_dir} (see {log_path})')
    logger.info('%s: evaluating the last student checkpoint %s',
                teacher.name, osp.basename(checkpoint))
    last, cpu['student_test'] = evaluate(
        args.config, checkpoint, folder, 'student', student_options,
        args.metric, f'{teacher.name} student test')
    history = validation_history(student_dir, args.metric)
    best, best_iter = best_of(history)
    if history and abs(history[-1][1] - last) > 0.01:
        logger.warning(
            '%s: the last validation in the log (%.2f) is not the last '
            "checkpoint's test result (%.2f): validation and test sets "
            'differ?', teacher.name, history[-1][1], last)

    result = {
        'teacher': teacher.name,
        'seed': teacher.seed,
        'teacher_checkpoint': teacher.checkpoint,
        'teacher_accuracy': teacher.accuracy,
        'teacher_accuracy_source': accuracy_source,
        'student_checkpoint': checkpoint,
        'student_last': last,
        'student_best': best,
        'student_best_iter': best_iter,
        'validation_history': history,
        # CPU seconds (user + system) of the subprocesses this invocation
        # ran; a segment killed before a resume is not counted
        'cpu_seconds': cpu,
        'student_train_resumed': resumed,
        'settings': json_normalised(settings)}
    write_json(result_path, result)
    logger.info('%s: student %.2f (last), %s (best on the way)',
                teacher.name, last, _fmt(best))
    return result


# ------------------------------------------------------------- statistics
def spread(values: list) -> dict:
    """Mean, sample standard deviation (n - 1; None for one value), min and
    max."""
    n = len(values)
    if n == 0:
        return {'n': 0, 'mean': None, 'std': None, 'min': None, 'max': None}
    mean = sum(values) / n
    std = (math.sqrt(sum((v - mean)**2 for v in values) / (n - 1))
           if n > 1 else None)
    return {'n': n, 'mean': mean, 'std': std, 'min': min(values),
            'max': max(values)}


def summarize(results: list, fail_fraction: float) -> dict:
    """Per-teacher rows (ratio student/teacher and the failure flag) and
    their statistics. A student is a catastrophic failure when its last
    accuracy is below ``fail_fraction`` times its teacher's."""
    rows = []
    for r in results:
        teacher, student = r['teacher_accuracy'], r['student_last']
        rows.append({
            'teacher': r['teacher'],
            'teacher_accuracy': teacher,
            'student_last': student,
            'student_best': r.get('student_best'),
            'student_best_iter': r.get('student_best_iter'),
            'ratio': student / teacher,
            'failed': student < fail_fraction * teacher})
    stats = {
        key: spread([row[key] for row in rows if row[key] is not None])
        for key in ('teacher_accuracy', 'student_last', 'student_best',
                    'ratio')
    }
    worst = min(rows, key=lambda row: row['student_last'], default=None)
    worst_ratio = min(rows, key=lambda row: row['ratio'], default=None)
    return {
        'fail_fraction': fail_fraction,
        'rows': rows,
        'stats': stats,
        'worst': None if worst is None else {
            'teacher': worst['teacher'],
            'student_last': worst['student_last']},
        'worst_ratio': None if worst_ratio is None else {
            'teacher': worst_ratio['teacher'],
            'ratio': worst_ratio['ratio']},
        'failures': [row['teacher'] for row in rows if row['failed']]}


def _fmt(value, spec='.2f', missing='n/a'):
    return missing if value is None else format(value, spec)


def format_report(summary: dict, metric: str,
                  errors: dict | None = None) -> str:
    """The table of the teachers and the mean / std / worst lines."""
    header = ('teacher', f'teacher {metric}', 'student (last)',
              'best on the way (iter)', 'ratio', 'flag')
    table = []
    for row in summary['rows']:
        best = _fmt(row['student_best'])
        if row['student_best_iter'] is not None:
            best += f' ({row["student_best_iter"]})'
        table.append((row['teacher'], _fmt(row['teacher_accuracy']),
                      _fmt(row['student_last']), best,
                      _fmt(row['ratio'], '.3f'),
                      'FAIL' if row['failed'] else ''))
    for name in errors or {}:
        table.append((name, '', '', '', '', 'ERROR'))
    widths = [max(len(str(x)) for x in column)
              for column in zip(header, *table)]

    def line(cells):
        return '| ' + ' | '.join(
            str(c).ljust(w) for c, w in zip(cells, widths)) + ' |'

    lines = [line(header), '|' + '|'.join('-' * (w + 2)
                                          for w in widths) + '|']
    lines += [line(cells) for cells in table]
    stats = summary['stats']
    lines.append('')
    for key, label in (('student_last', 'student (last)'),
                       ('student_best', 'best on the way'),
                       ('teacher_accuracy', 'teacher'),
                       ('ratio', 'ratio student/teacher')):
        s = stats[key]
        spec = '.3f' if key == 'ratio' else '.2f'
        lines.append(f'{label:<22} mean {_fmt(s["mean"], spec)}  std '
                     f'{_fmt(s["std"], spec)}  min {_fmt(s["min"], spec)}  '
                     f'max {_fmt(s["max"], spec)}  (n={s["n"]})')
    if summary['worst']:
        lines.append(
            f'worst case: {summary["worst"]["teacher"]}, student '
            f'{summary["worst"]["student_last"]:.2f} (lowest ratio: '
            f'{summary["worst_ratio"]["teacher"]}, '
            f'{summary["worst_ratio"]["ratio"]:.3f})')
    lines.append(
        f'catastrophic failures (student < {summary["fail_fraction"]:g} x '
        f'teacher): {len(summary["failures"])} of {len(summary["rows"])}' +
        (f' ({", ".join(summary["failures"])})'
         if summary['failures'] else ''))
    if errors:
        lines.append('runs that failed (not in the statistics; the full '
                     'messages are in the log above and the JSON report):')
        lines += [f'  {name}: {error.splitlines()[0] if error else ""}'
                  for name, error in errors.items()]
    return '\n'.join(lines)


# ------------------------------------------------------------------- main
def main(argv=None) -> int:
    logging.basicConfig(
        level=logging.INFO, format='%(asctime)s %(message)s',
        datefmt='%H:%M:%S', stream=sys.stderr)
    args = parse_args(argv)
    try:
        cfg, teachers, key = check_inputs(args)
    except RobustnessError as error:
        raise SystemExit(f'teacher_robustness.py: error: {error}') from None
    os.makedirs(args.work_dir, exist_ok=True)
    logger.info('%d teachers, work dir %s', len(teachers), args.work_dir)

    results, errors = [], {}
    for i, teacher in enumerate(teachers, 1):
        logger.info('[%d/%d] %s', i, len(teachers), teacher.name)
        try:
            results.append(run_teacher(teacher, args, cfg, key))
        except RobustnessError as error:
            # the other teachers still run; a rerun retries this one
            logger.error('%s: %s', teacher.name, error)
            errors[teacher.name] = str(error)

    summary = summarize(results, args.fail_fraction)
    report = dict(
        config=args.config,
        cfg_options=args.cfg_options,
        teacher_source=({'train_teachers': args.train_teachers,
                         'seeds': args.seeds} if args.train_teachers else
                        {'teachers': args.teachers,
                         'teacher_config': args.teacher_config}),
        metric=args.metric,
        work_dir=args.work_dir,
        **summary,
        results=results,
        errors=errors)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    write_json(args.out, report)
    print(format_report(summary, args.metric, errors))
    print(f'\nreport written to {args.out}')
    if errors:
        print(f'teacher_robustness.py: error: {len(errors)} of '
              f'{len(teachers)} teachers failed ({", ".join(errors)}); '
              'rerun the same command to retry them', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
