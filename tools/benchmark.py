"""Measure the training speed of a data-free config.

    python tools/benchmark.py CONFIG [--iters N] [--warmup K] [--device cpu|cuda]
        [--json OUT] [--random-teacher] [--eval-batches B | --no-eval]
        [--compare-plain [--blocks R] [--block-iters M]]
        [--profile OUT.prof] [--cfg-options k=v ...]

The model, its data preprocessor and its optimiser wrappers are built as
``tools/train.py`` (mmengine's ``Runner``) builds them: the config's
registry scope and seed, ``MODELS.build``, ``init_weights``,
``build_optim_wrapper`` with the config's constructor; batches come from the
config's train dataloader (``LatentNoiseDataset``). After K warm-up
iterations, N iterations of ``data fetch + model.train_step`` are timed, the
generator and student phases separately (the algorithm's ``generator_phase``
and ``student_phase`` are wrapped on the instance; nothing in mmdfkd is
changed). Runner hooks (logging, checkpoints, image grids) are not part of
the measurement.

Reported: iterations/s, synthetic images/s (``draws_per_iteration x batch``
images generated per iteration), the time split data / generator phase /
student phase / rest of ``train_step``, one capped evaluation pass on the
real validation set (and what a full pass costs per training iteration at
the config's ``val_interval``), and peak memory (process RSS on CPU,
``torch.cuda.max_memory_allocated`` on CUDA); as a table on stdout and, with
``--json``, as JSON.

``--compare-plain`` (DAFL, DFAD, Fast and NAYER recipes) first checks that
the plain-PyTorch loop of ``benchmarks/`` computes the same losses as mmdfkd
from the same initial state, then runs the two alternately in blocks of M
iterations, R times, and reports mmdfkd's throughput as a ratio of the
plain loop's (median over blocks), so that machine noise hits both alike.
``--profile`` runs N more iterations under cProfile to show where the time
goes.
"""
import argparse
import copy
import cProfile
import json
import os.path as osp
import pstats
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import torch
from mmengine.config import Config, DictAction
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, set_random_seed
from torch import nn

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))
from benchmarks.plain_dafl import PlainDAFL
from benchmarks.plain_dfad import PlainDFAD
from benchmarks.plain_fast import PlainFast
from benchmarks.plain_models import (
    PlainDAFLGenerator,
    PlainFastGenerator,
    PlainLeNet5,
    PlainNoisyLayerGenerator,
    classifier_state_to_plain,
)
from benchmarks.plain_nayer import PlainNAYER
from mmdfkd.registry import MODELS
from mmdfkd.utils import register_all_modules
from mmdfkd.utils.config_checks import check_config, propagate_data_root

# switches of DataFreeDistillation that change how, not what, it computes;
# the plain loop runs without them (float32, NCHW, eager)
SPEED_SWITCHES = ('channels_last', 'autocast_dtype', 'compile_networks')
# losses of one mmdfkd iteration and of the plain loop agree to this
# (both run the same operations in the same order, so they are usually
# bit-identical; the slack covers kernels that are not)
LOSS_RTOL, LOSS_ATOL = 1e-5, 1e-6


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark the training speed of an mmdfkd config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--iters', type=int, default=30,
                        help='timed iterations (default 30)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed warm-up iterations (default 3)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default=None,
                        help='default: cuda if available, else cpu')
    parser.add_argument('--json', help='also write the results to this file')
    parser.add_argument(
        '--random-teacher', action='store_true',
        help='do not load the teacher checkpoint; keep random weights '
        '(speed does not depend on them). Without it a missing checkpoint '
        'is an error.')
    parser.add_argument('--eval-batches', type=int, default=2,
                        help='validation batches of the evaluation pass '
                        '(default 2)')
    parser.add_argument('--no-eval', action='store_true',
                        help='skip the evaluation pass')
    parser.add_argument(
        '--compare-plain', action='store_true',
        help='also run the plain-PyTorch loop of benchmarks/ alternately '
        'and report the throughput ratio (DAFL, DFAD, Fast and NAYER '
        'recipes)')
    parser.add_argument('--blocks', type=int, default=20,
                        help='alternating blocks of --compare-plain '
                        '(default 20)')
    parser.add_argument('--block-iters', type=int, default=2,
                        help='iterations per block and loop of '
                        '--compare-plain (default 2)')
    parser.add_argument(
        '--profile', metavar='OUT.prof',
        help='after the timed run, run --iters more iterations under '
        'cProfile, save the statistics to this file (read them with '
        '`python -m pstats OUT.prof`) and print the costliest functions')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. '
        'model.teachers.teacher.ckpt_path=/path/teacher.pth')
    args = parser.parse_args(argv)
    for name in ('iters', 'blocks', 'block_iters'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    if args.warmup < 0 or args.eval_batches < 1:
        parser.error('--warmup must be >= 0 and --eval-batches >= 1')
    return args


# ------------------------------------------------------------------ setup
def load_config(path: str, cfg_options: dict | None,
                random_teacher: bool) -> Config:
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
        if 'data_root' in cfg_options:
            propagate_data_root(cfg, cfg_options['data_root'])
    check_config(cfg)
    for name, teacher in cfg.model.get('teachers', {}).items():
        ckpt_path = teacher.get('ckpt_path')
        if random_teacher:
            teacher['ckpt_path'] = None
        elif not ckpt_path or not (ckpt_path.startswith(
                ('http://', 'https://')) or osp.isfile(ckpt_path)):
            raise SystemExit(
                f'teacher {name!r}: checkpoint {ckpt_path!r} not found. '
                'Train or download it (see the README), point '
                f'--cfg-options model.teachers.{name}.ckpt_path=... at it, '
                'or pass --random-teacher to benchmark with random teacher '
                'weights (speed does not depend on them).')
    return cfg


def resolve_device(name: str | None) -> torch.device:
    if name is None:
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    if name == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is available')
    return torch.device(name)


def registry_scope(cfg: Config):
    """Context in which mmengine's root registries find the config's
    modules (the Runner sets the same default scope)."""
    return DefaultScope.overwrite_default_scope(
        cfg.get('default_scope', 'mmdfkd'))


def build_training(cfg: Config, device: torch.device):
    """Model and optimiser wrappers as the Runner builds them, with the
    config's seed (so two calls give the same initial weights)."""
    randomness = cfg.get('randomness') or {}
    set_random_seed(
        seed=randomness.get('seed'),
        deterministic=randomness.get('deterministic', False))
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg).to(device)
    model.init_weights()
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    return model, optim_wrapper


def train_batches(cfg: Config) -> Iterator[dict]:
    seed = (cfg.get('randomness') or {}).get('seed')
    return iter(Runner.build_dataloader(cfg.train_dataloader, seed=seed))


def speed_switches(cfg: Config) -> dict:
    """The speed switches the config turns on."""
    return {k: cfg.model[k] for k in SPEED_SWITCHES if cfg.model.get(k)}


def without_speed_switches(cfg: Config) -> Config:
    """``cfg`` with the speed switches off. The plain loop checks its losses
    against this: a switch changes results only within its tolerance
    (tests/test_speed_switches.py), and after two steps of Adam even a
    rounding difference moves some weights by up to twice the learning
    rate, so exact agreement is only asked of the float32 run."""
    cfg = copy.deepcopy(cfg)
    for key in SPEED_SWITCHES:
        cfg.model.pop(key, None)
    return cfg


def loss_check_config(cfg: Config) -> Config:
    """``cfg`` as the plain loop's loss check runs it: speed switches off
    (:func:`without_speed_switches`) and at most one warm-up iteration, so
    that the check's two iterations cover a warm-up iteration (synthesis
    only) and a training one (adversarial term and student steps) of
    methods with a warm-up (Fast, NAYER). The plain loops follow the
    model's schedule, so they warm up as long as it does."""
    cfg = without_speed_switches(cfg)
    if cfg.model.get('warmup_iters', 0) > 1:
        cfg.model.warmup_iters = 1
    return cfg


def draws_per_iteration(model, batch: dict) -> int:
    if hasattr(model, 'draws_per_iteration'):
        return model.draws_per_iteration
    latents = batch['latents']
    return latents.shape[1] if latents.dim() == 3 else 1


def make_clock(device: torch.device) -> Callable[[], float]:
    if device.type == 'cuda':
        def clock():
            torch.cuda.synchronize(device)
            return time.perf_counter()
        return clock
    return time.perf_counter


class PhaseTimer:
    """Accumulate the wall time of methods of one object, by shadowing them
    with timed wrappers on the instance (the class stays untouched)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.seconds: dict[str, float] = defaultdict(float)
        self._patched = []

    def wrap(self, obj, method: str, key: str) -> bool:
        original = getattr(obj, method, None)
        if original is None:
            return False

        def timed(*args, **kwargs):
            start = self.clock()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[key] += self.clock() - start

        setattr(obj, method, timed)
        self._patched.append((obj, method))
        return True

    def reset(self) -> None:
        self.seconds.clear()

    def restore(self) -> None:
        for obj, method in self._patched:
            delattr(obj, method)
        self._patched = []


def run_mmdfkd(model, optim_wrapper, batches: Iterator[dict], iters: int,
               clock) -> tuple[float, float]:
    """Seconds spent fetching batches and in ``train_step``."""
    data_s = step_s = 0.0
    for _ in range(iters):
        start = clock()
        batch = next(batches)
        fetched = clock()
        model.train_step(batch, optim_wrapper)
        data_s += fetched - start
        step_s += clock() - fetched
    return data_s, step_s


def run_plain(loop, iters: int, clock) -> tuple[float, float]:
    """Seconds spent sampling latents and in the plain ``train_step``."""
    data_s = step_s = 0.0
    for _ in range(iters):
        start = clock()
        latents, targets = loop.sample_batch()
        sampled = clock()
        loop.train_step(latents, targets)
        data_s += sampled - start
        step_s += clock() - sampled
    return data_s, step_s


def peak_memory(device: torch.device) -> tuple[float, str]:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20, \
            'cuda_max_allocated'
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 'rss'


# ------------------------------------------------------------- evaluation
def evaluate(cfg: Config, model, max_batches: int, clock) -> dict:
    """One validation pass over at most ``max_batches`` batches, timed
    end to end (loading, transforms, forward, metrics)."""
    loader_cfg = cfg.get('val_dataloader')
    if not loader_cfg or not cfg.get('val_evaluator'):
        return {'skipped': 'the config has no val_dataloader/val_evaluator'}
    try:
        loader = Runner.build_dataloader(loader_cfg)
    except (FileNotFoundError, RuntimeError, OSError) as error:
        return {'skipped': f'validation data not available: {error}'}
    evaluator = Evaluator(cfg.val_evaluator)
    evaluator.dataset_meta = getattr(loader.dataset, 'metainfo', None)
    model.eval()
    images = batches = 0
    start = clock()
    with torch.no_grad():
        for batch in loader:
            outputs = model.val_step(batch)
            evaluator.process(outputs, batch)
            images += len(outputs)
            batches += 1
            if batches == max_batches:
                break
        metrics = evaluator.evaluate(images)
    seconds = clock() - start
    model.train()
    full_pass_s = seconds * len(loader.dataset) / images
    val_interval = (cfg.get('train_cfg') or {}).get('val_interval')
    result = {
        'batches': batches,
        'images': images,
        'seconds': seconds,
        'images_per_s': images / seconds,
        'dataset_size': len(loader.dataset),
        'full_pass_s': full_pass_s,
        'val_interval': val_interval,
        'metrics': {k: float(v) for k, v in metrics.items()}}
    if val_interval:
        result['ms_per_train_iteration'] = 1000 * full_pass_s / val_interval
    return result


# ------------------------------------------------------------ plain floor
def plain_lenet(classifier) -> PlainLeNet5:
    """A :class:`PlainLeNet5` with the weights of an mmpretrain classifier
    built from ``DFKDLeNet5`` + ``LinearClsHead``."""
    backbone = classifier.backbone
    if type(backbone).__name__ != 'DFKDLeNet5' or getattr(
            classifier, 'neck', None) is not None:
        raise SystemExit('--compare-plain: the plain loops implement the '
                         'LeNet-5 (DFKDLeNet5, no neck) classifiers only; got '
                         f'{type(backbone).__name__}')
    plain = PlainLeNet5(backbone.width_multiplier, backbone.in_channels,
                        classifier.head.fc.out_features, backbone.with_bn)
    plain.load_state_dict(classifier_state_to_plain(classifier.state_dict()))
    return plain.to(classifier.head.fc.weight.device)


def plain_generator(generator) -> nn.Module:
    """The plain generator with the weights of mmdfkd's ``DAFLGenerator``
    (DAFL/DFAD: tanh + non-affine final BN; Fast: sigmoid, no conv bias)
    or ``NoisyLayerGenerator`` (NAYER); any other structure (final
    activation or norm, biases, extra activation, output normalisation) is
    an error."""
    kind = type(generator).__name__
    if kind == 'DAFLGenerator':
        if generator.output_normalization is not None:
            raise SystemExit('--compare-plain: the plain generators have no '
                             'output_normalization')
        sizes = (generator.img_size, generator.latent_dim,
                 generator.fc.out_features // generator.init_size**2,
                 generator.out_channels)
        candidates = [
            PlainDAFLGenerator(*sizes, bn_eps=generator.block1[1].eps),
            PlainFastGenerator(*sizes)
        ]
    elif kind == 'NoisyLayerGenerator':
        noisy = generator.noisy_layer
        candidates = [
            PlainNoisyLayerGenerator(
                generator.label_embeddings.cpu(), noisy.num_layers,
                noisy.chunk_size, generator.img_size, generator.out_channels,
                generator.conv_blocks[0].num_features // 2,
                noisy.out_features)
        ]
    else:
        raise SystemExit('--compare-plain: the plain loops implement '
                         'DAFLGenerator and NoisyLayerGenerator only; got '
                         f'{kind}')
    # the plain twin of mmdfkd's NoisyLinear has a Plain prefix
    def layout(module):
        return [(name, type(m).__name__.replace('PlainNoisy', 'Noisy'))
                for name, m in module.named_modules() if name]

    def shapes(module):
        return {k: tuple(v.shape) for k, v in module.state_dict().items()}

    for plain in candidates:
        if layout(plain) == layout(generator) and shapes(plain) == shapes(
                generator):
            plain.load_state_dict(generator.state_dict())
            return plain.to(generator.fc.weight.device)
    raise SystemExit(
        f'--compare-plain: the generator differs from the plain {kind} '
        'twins (DAFL: tanh + non-affine final BN; Fast: sigmoid, no conv '
        f'bias):\n{layout(generator)}')


def optimizer_spec(wrapper) -> tuple[str, dict]:
    """``(torch.optim class name, hyper-parameters)`` of a plain wrapper."""
    if type(wrapper) is not OptimWrapper or wrapper._accumulative_counts != 1 \
            or wrapper.clip_grad_kwargs:
        raise SystemExit('--compare-plain: the plain loops step a bare '
                         'optimiser every iteration; this config uses '
                         f'{type(wrapper).__name__} with accumulation or '
                         'gradient clipping')
    optimizer = wrapper.optimizer
    if len(optimizer.param_groups) != 1:
        raise SystemExit('--compare-plain: paramwise optimiser settings are '
                         'not implemented by the plain loops')
    return type(optimizer).__name__, dict(optimizer.defaults)


def _loss_types(distiller) -> dict[str, str]:
    return {n: type(m).__name__ for n, m in distiller.distill_losses.items()}


# the losses of Fast's and NAYER's recipes (configs/_base_/algorithms/)
SYNTHESIS_GENERATOR_LOSSES = {
    'loss_bn': 'BNStatisticsLoss',
    'loss_oh': 'CrossEntropyLoss',
    'loss_adv': 'AgreementMaskedKLDivergence'}


def _optimizer_cfg_spec(cfg: dict) -> tuple[str, dict]:
    """``dict(type='Adam', lr=...)`` -> ``('Adam', dict(lr=...))``."""
    kwargs = dict(cfg)
    return kwargs.pop('type'), kwargs


def _augmentation_spec(augmentation) -> dict:
    """The :class:`benchmarks.plain_synthesis.CropFlipNormalize` arguments
    of a ``SynthesisAugmentation``."""
    if (type(augmentation).__name__ != 'SynthesisAugmentation'
            or augmentation.resized_crop is not None
            or augmentation.color_jitter is not None
            or augmentation.padding_mode != 'constant'
            or augmentation.mean is None):
        raise SystemExit('--compare-plain: the plain Fast/NAYER loops '
                         'augment with a padded crop (constant padding), '
                         'flips and normalisation only')
    return {
        'padding': augmentation.crop_padding,
        'padding_value': augmentation.padding_value,
        'flip': augmentation.flip,
        'mean': tuple(augmentation.mean.flatten().tolist()),
        'std': tuple(augmentation.std.flatten().tolist())}


def build_plain_synthesis_loop(model, cfg: Config, common: dict):
    """:class:`PlainFast` (``meta_update`` set) or :class:`PlainNAYER`
    (noisy-layer generator trained in place) for a ``FastDistillation``,
    on the model's current state: weights, iteration counter (warm-up and
    schedule), memory bank and BN-loss running averages."""
    def refuse(reason):
        raise SystemExit(f'--compare-plain: {reason}')

    if (_loss_types(model.generator_distiller) != SYNTHESIS_GENERATOR_LOSSES
            or _loss_types(model.distiller) != {'loss_kd': 'KLDivergence'}):
        refuse('FastDistillation without the Fast/NAYER losses of '
               'configs/_base_/algorithms/{fast,nayer}.py')
    losses = model.generator_distiller.distill_losses
    bn, oh, adv = (losses[k] for k in ('loss_bn', 'loss_oh', 'loss_adv'))
    kd = model.distiller.distill_losses['loss_kd']
    bank = model.memory_bank
    batch_size = common['batch_size']
    checks = {
        'batchmean KL terms, a teacher-differentiable adversarial term':
        adv.reduction == kd.reduction == 'batchmean'
        and not adv.teacher_detach,
        'plain cross-entropy (no sigmoid, soft labels or class weights)':
        not (oh.use_sigmoid or oh.use_soft) and oh.class_weight is None
        and oh.reduction == 'mean',
        'a warm-up that leaves out exactly the adversarial term':
        not model.warmup_iters
        or set(model.warmup_disabled_losses) == {'loss_adv'},
        'a FIFO bank in memory that holds a synthesis batch':
        bank.policy == 'fifo' and bank.storage == 'memory'
        and bank.capacity >= batch_size,
        'no generator re-initialisation every loop, no growing student '
        'phase': not model.reinit_generator_every_loop
        and not getattr(model, 'student_iter_increment', 0),
    }
    failed = [what for what, ok in checks.items() if not ok]
    if failed:
        refuse('the plain Fast/NAYER loops need ' + '; '.join(failed))
    kwargs = dict(
        common,
        num_classes=cfg.train_dataloader.dataset.num_classes,
        generator_iter=model.generator_iter,
        synthesis_loops=model.synthesis_loops,
        warmup_synthesis_loops=model.warmup_synthesis_loops,
        warmup_iters=model.warmup_iters,
        student_iter=model.student_iter,
        student_batch_size=model.student_batch_size or batch_size,
        student_sample_replacement=model.student_sample_replacement,
        student_train_mode_in_generator_step=(
            model.student_train_mode_in_generator_step),
        bn_weight=bn.loss_weight,
        bn_momentum=bn.momentum,
        oh_weight=oh.loss_weight,
        adv_weight=adv.loss_weight,
        adv_tau=adv.tau,
        kd_weight=kd.loss_weight,
        kd_tau=kd.tau,
        synthesis_augmentation=_augmentation_spec(
            model.synthesis_augmentation),
        student_augmentation=_augmentation_spec(model.student_augmentation),
        memory_capacity=bank.capacity,
        image_shape=bank.image_shape,
        memory_dtype=bank.images.dtype,
        memory_seed=bank.seed)
    meta = model.meta_update
    if meta is not None:
        if not (meta.mode == 'fomaml' and meta.fomaml_gradient == 'sum'
                and model.target_layout == 'random'
                and model.generator_reinit_interval is None
                and not model.reset_generator_optimizer_every_loop):
            refuse("Fast's meta-generator but not Fast's loop (first-order "
                   'MAML with summed inner gradients, drawn targets, no '
                   're-initialisation or optimiser reset)')
        latent_cfg = model.latent_optimizer_cfg
        plain = PlainFast(
            inner_optimizer=_optimizer_cfg_spec(model.inner_optimizer_cfg),
            latent_optimizer=(None if latent_cfg is None else
                              _optimizer_cfg_spec(latent_cfg)),
            layer_reset_iter=model.layer_reset_iter,
            layer_reset_modules=model.layer_reset_modules,
            layer_reset_std=model.layer_reset_std,
            **kwargs)
    else:
        if not (type(model.generator).__name__ == 'NoisyLayerGenerator'
                and model.target_layout == 'balanced'
                and model.reset_generator_optimizer_every_loop
                and model.redraw_noisy_layers
                and model.latent_optimizer_cfg is None
                and model.layer_reset_iter is None):
            refuse("no meta-generator but not NAYER's loop (noisy-layer "
                   'generator, balanced targets, a new optimiser state and '
                   're-drawn noisy layers per batch, no latent optimiser or '
                   'layer reset)')
        plain = PlainNAYER(
            generator_reinit_interval=model.generator_reinit_interval,
            reset_bn_history_on_reinit=model.reset_bn_history_on_reinit,
            **kwargs)
    plain.iteration = int(model.train_iter)
    stored = len(bank)
    plain.bank.images[:stored] = bank.images[:stored].to(
        plain.bank.images.device)
    plain.bank.stored = stored
    plain.bank.write_pos = int(bank.write_pos)
    plain.bank.num_samples = int(bank.num_samples)
    plain.bn_history = [(mean.clone(), var.clone())
                        for mean, var in bn.history()]
    return plain


def build_plain_loop(model, optim_wrapper, cfg: Config,
                     device: torch.device):
    """The plain loop of the model's recipe (DAFL, DFAD, Fast or NAYER), on
    copies of the model's current weights, with the config's batch size,
    loss weights, step counts and optimiser hyper-parameters."""
    if len(model.teachers) != 1:
        raise SystemExit('--compare-plain: the plain loops have one teacher')
    generator_losses = _loss_types(model.generator_distiller)
    student_losses = _loss_types(model.distiller)
    common = {
        'teacher': plain_lenet(next(iter(model.teachers.values()))),
        'student': plain_lenet(model.architecture),
        'generator': plain_generator(model.generator),
        'batch_size': cfg.train_dataloader.batch_size,
        'latent_dim': cfg.train_dataloader.dataset.latent_dim,
        'generator_optimizer': optimizer_spec(optim_wrapper['generator']),
        'student_optimizer': optimizer_spec(optim_wrapper['architecture']),
        'device': device}
    if type(model).__name__ == 'FastDistillation':
        return build_plain_synthesis_loop(model, cfg, common)
    losses = model.generator_distiller.distill_losses
    student_loss = model.distiller.distill_losses
    if generator_losses == {
            'loss_onehot': 'OnehotLikeLoss',
            'loss_activation': 'ActivationLoss',
            'loss_entropy': 'InformationEntropyLoss'} and student_losses == {
                'loss_kd': 'KLDivergence'}:
        kd = student_loss['loss_kd']
        if not (model.reuse_generator_batch and model.generator_iter == 1
                and model.student_iter == 1 and not model.student_train_first
                and kd.reduction == 'batchmean'):
            raise SystemExit('--compare-plain: DAFL losses but not DAFL\'s '
                             'loop (one generator step, then one student '
                             'step on the same batch, batchmean KD)')
        return PlainDAFL(
            onehot_weight=losses['loss_onehot'].loss_weight,
            activation_weight=losses['loss_activation'].loss_weight,
            entropy_weight=losses['loss_entropy'].loss_weight,
            kd_weight=kd.loss_weight,
            tau=kd.tau,
            **common)
    if generator_losses == {'loss_adv': 'L1Loss'} and student_losses == \
            {'loss_l1': 'L1Loss'}:
        if not (model.student_train_first and model.generator_iter == 1
                and not model.reuse_generator_batch
                and model.student_train_mode_in_generator_step
                and model.generator_train_mode_in_student_step):
            raise SystemExit('--compare-plain: DFAD losses but not DFAD\'s '
                             'loop (student steps on fresh batches first, '
                             'then one generator step, train-mode BN)')
        return PlainDFAD(
            student_iter=model.student_iter,
            student_weight=student_loss['loss_l1'].loss_weight,
            adversarial_weight=losses['loss_adv'].loss_weight,
            **common)
    raise SystemExit(
        '--compare-plain: no plain loop for this recipe (generator losses '
        f'{generator_losses}, student losses {student_losses}); benchmarks/ '
        'has DAFL, DFAD, Fast and NAYER as written in '
        'configs/_base_/algorithms/')


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.


def _rng_state(device: torch.device) -> list[torch.Tensor]:
    """The global RNG states random draws on ``device`` use."""
    states = [torch.get_rng_state()]
    if device.type == 'cuda':
        states.append(torch.cuda.get_rng_state(device))
    return states


def _set_rng_state(device: torch.device, states: list[torch.Tensor]):
    torch.set_rng_state(states[0])
    if device.type == 'cuda':
        torch.cuda.set_rng_state(states[1], device)


def check_plain_losses(cfg: Config, device: torch.device,
                       iterations: int = 2,
                       plain_overrides: dict | None = None) -> dict:
    """Run mmdfkd and the plain loop from the same initial weights on the
    same latent batches and compare every loss of every iteration, then the
    student's and generator's weights and BN statistics.

    Two iterations, so that the second losses also depend on both loops'
    backward passes and optimiser steps. Both iterations start from the
    same global RNG state (the random crops of Fast and NAYER, NAYER's
    noisy layers), and both loops must leave it in the same state, i.e.
    draw the same random numbers. ``plain_overrides`` sets attributes of
    the plain loop (tests use it to prove that a wrong loss weight is
    caught).

    Returns:
        dict: ``equal`` (bool), ``max_loss_diff``, ``max_state_diff``,
        ``losses`` (per key: [mmdfkd, plain] of the last iteration) and
        ``mismatches`` (descriptions).
    """
    model, optim_wrapper = build_training(cfg, device)
    plain = build_plain_loop(model, optim_wrapper, cfg, device)
    for key, value in (plain_overrides or {}).items():
        setattr(plain, key, value)
    batches = train_batches(cfg)
    mismatches, losses = [], {}
    max_loss_diff = 0.0
    for iteration in range(iterations):
        batch = next(batches)
        rng_state = _rng_state(device)
        logs = model.train_step(batch, optim_wrapper)
        rng_state_after = _rng_state(device)
        _set_rng_state(device, rng_state)
        plain_logs = plain.train_step(batch['latents'].to(device),
                                      batch['targets'].to(device))
        if not all(
                torch.equal(a, b) for a, b in zip(
                    _rng_state(device), rng_state_after, strict=True)):
            mismatches.append(f'iteration {iteration}: the plain loop drew '
                              'other random numbers than mmdfkd')
        for key, value in plain_logs.items():
            if key not in logs:
                mismatches.append(f'iteration {iteration}: mmdfkd logs no '
                                  f'{key!r} (it logs {sorted(logs)})')
                continue
            ours, theirs = float(logs[key]), float(value)
            diff = abs(ours - theirs)
            max_loss_diff = max(max_loss_diff, diff)
            losses[key] = [ours, theirs]
            if diff > LOSS_ATOL + LOSS_RTOL * abs(theirs):
                mismatches.append(f'iteration {iteration}: {key} mmdfkd '
                                  f'{ours!r} != plain {theirs!r}')
    states = (
        ('student', classifier_state_to_plain(model.architecture.state_dict()),
         plain.student.state_dict()),
        ('generator', model.generator.state_dict(),
         plain.generator.state_dict()))
    max_state_diff = 0.0
    for name, ours, theirs in states:
        for key, value in ours.items():
            diff = _max_abs_diff(value, theirs[key])
            max_state_diff = max(max_state_diff, diff)
            if diff > LOSS_ATOL + LOSS_RTOL * float(
                    theirs[key].double().abs().max()):
                mismatches.append(f'{name}.{key} differs by {diff:.3g} '
                                  f'after {iterations} iterations')
    return {
        'equal': not mismatches,
        'iterations': iterations,
        'max_loss_diff': max_loss_diff,
        'max_state_diff': max_state_diff,
        'losses': losses,
        'mismatches': mismatches}


def compare_plain(cfg: Config, model, optim_wrapper, batches, args,
                  device: torch.device, clock) -> dict:
    """Alternate blocks of mmdfkd and plain iterations; the loop that goes
    first alternates too, so that neither always runs on a warmer cache.

    Each block is timed twice: wall clock (the throughput a user sees) and,
    on CPU, the process's CPU time, which leaves out the time other
    processes of a shared machine hold the cores (with one thread it is the
    compute time of the loop itself).
    """
    check = check_plain_losses(loss_check_config(cfg), device)
    check['speed_switches_off'] = sorted(speed_switches(cfg))
    if not check['equal']:
        raise SystemExit('--compare-plain: the plain loop does not compute '
                         'the same losses as mmdfkd:\n  ' +
                         '\n  '.join(check['mismatches']))
    plain = build_plain_loop(model, optim_wrapper, cfg, device)
    torch.manual_seed(0)
    run_plain(plain, args.warmup, clock)
    n = args.block_iters
    runners = {
        'mmdfkd': lambda: run_mmdfkd(model, optim_wrapper, batches, n, clock),
        'plain': lambda: run_plain(plain, n, clock),
    }
    blocks = []
    for block in range(args.blocks):
        order = ('mmdfkd', 'plain') if block % 2 == 0 else ('plain', 'mmdfkd')
        timings = {}
        for name in order:
            cpu_start = time.process_time()
            data_s, step_s = runners[name]()
            cpu_s = time.process_time() - cpu_start
            timings[name] = {'data': data_s, 'step': step_s, 'cpu': cpu_s}
        blocks.append(timings)

    def median(values):
        return statistics.median(list(values))

    def wall(b, name):
        return b[name]['data'] + b[name]['step']

    ratios = [wall(b, 'plain') / wall(b, 'mmdfkd') for b in blocks]
    result = {
        'plain_loop': f'benchmarks/{type(plain).__name__}',
        'blocks': args.blocks,
        'block_iters': n,
        'ratio': median(ratios),
        'ratio_per_block': ratios,
        'step_ratio': median(
            b['plain']['step'] / b['mmdfkd']['step'] for b in blocks),
        'ratio_cpu_time': None,
        'mmdfkd_iterations_per_s': median(n / wall(b, 'mmdfkd')
                                          for b in blocks),
        'plain_iterations_per_s': median(n / wall(b, 'plain')
                                         for b in blocks),
    }
    for name in ('mmdfkd', 'plain'):
        result[f'{name}_ms_per_iteration'] = {
            part: 1000 * median(b[name][part] for b in blocks) / n
            for part in ('data', 'step', 'cpu')
        }
    if device.type == 'cpu':
        result['ratio_cpu_time'] = median(
            b['plain']['cpu'] / b['mmdfkd']['cpu'] for b in blocks)
    else:  # the CPU only queues CUDA kernels: its time says nothing
        for name in ('mmdfkd', 'plain'):
            del result[f'{name}_ms_per_iteration']['cpu']
    result['loss_check'] = check
    return result


# ------------------------------------------------------------------ report
def benchmark(args) -> dict:
    register_all_modules(init_default_scope=False)
    # the weight-initialisation report of every parameter would bury the
    # table; warnings (e.g. a random teacher) still show
    MMLogger.get_instance(f'benchmark-{time.time()}', log_level='WARNING')
    cfg = load_config(args.config, args.cfg_options, args.random_teacher)
    device = resolve_device(args.device)
    clock = make_clock(device)
    # what the interpreter, torch and mmengine hold before any model exists
    baseline_memory = peak_memory(torch.device('cpu'))[0]
    with registry_scope(cfg):
        model, optim_wrapper = build_training(cfg, device)
        batches = train_batches(cfg)
        timer = PhaseTimer(clock)
        timer.wrap(model, 'generator_phase', 'generator_phase')
        timer.wrap(model, 'student_phase', 'student_phase')

        first = next(batches)
        draws = draws_per_iteration(model, first)
        batch_size = first['latents'].shape[0]
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        run_mmdfkd(model, optim_wrapper, batches, args.warmup, clock)
        timer.reset()
        data_s, step_s = run_mmdfkd(model, optim_wrapper, batches,
                                    args.iters, clock)
        memory, memory_kind = peak_memory(device)
        timer.restore()
        phases = dict(timer.seconds)
        if args.profile:
            # separate from the timed run: the profiler slows Python down
            profiler = cProfile.Profile()
            profiler.enable()
            run_mmdfkd(model, optim_wrapper, batches, args.iters, clock)
            profiler.disable()
            profiler.dump_stats(args.profile)

        total_s = data_s + step_s
        per_iter = {
            'data': data_s,
            'generator_phase': phases.get('generator_phase', 0.0),
            'student_phase': phases.get('student_phase', 0.0),
        }
        per_iter['other'] = step_s - per_iter['generator_phase'] - \
            per_iter['student_phase']
        per_iter['total'] = total_s
        result = {
            'config': args.config,
            'device': str(device),
            'torch': torch.__version__,
            'threads': torch.get_num_threads(),
            'iters': args.iters,
            'warmup': args.warmup,
            'random_teacher': args.random_teacher,
            'speed_switches': speed_switches(cfg),
            'batch_size': batch_size,
            'draws_per_iteration': draws,
            'images_per_iteration': draws * batch_size,
            'iterations_per_s': args.iters / total_s,
            'images_per_s': args.iters * draws * batch_size / total_s,
            'time_ms_per_iteration': {
                k: 1000 * v / args.iters
                for k, v in per_iter.items()
            },
            'peak_memory_mib': memory,
            'peak_memory_kind': memory_kind,
            'rss_before_build_mib': baseline_memory}
        result['evaluation'] = ({'skipped': '--no-eval'} if args.no_eval else
                                evaluate(cfg, model, args.eval_batches, clock))
        if args.compare_plain:
            result['compare_plain'] = compare_plain(
                cfg, model, optim_wrapper, batches, args, device, clock)
    return result


def format_report(r: dict) -> str:
    ms = r['time_ms_per_iteration']
    lines = [
        f"mmdfkd benchmark: {r['config']}",
        f"device {r['device']}, {r['threads']} thread(s), torch "
        f"{r['torch']}; batch {r['batch_size']} x "
        f"{r['draws_per_iteration']} generated batch(es) per iteration; "
        f"{r['iters']} iterations after {r['warmup']} warm-up"
        + (' (random teacher)' if r['random_teacher'] else '')
        + ''.join(f'; {k}={v}' for k, v in r['speed_switches'].items()),
        '',
        f"| {'metric':<40} | {'value':>10} |",
        f"|{'-' * 42}|{'-' * 12}|",
        f"| {'iterations/s':<40} | {r['iterations_per_s']:>10.3f} |",
        f"| {'synthetic images/s':<40} | {r['images_per_s']:>10.1f} |",
    ]
    for key in ('data', 'generator_phase', 'student_phase', 'other'):
        share = 100 * ms[key] / ms['total']
        label = f"ms/iteration: {key.replace('_', ' ')} ({share:.1f} %)"
        lines.append(f'| {label:<40} | {ms[key]:>10.2f} |')
    lines.append(f"| {'ms/iteration: total':<40} | {ms['total']:>10.2f} |")
    mem = 'RSS' if r['peak_memory_kind'] == 'rss' else 'CUDA max allocated'
    lines.append(f"| {f'peak memory, MiB ({mem})':<40} | "
                 f"{r['peak_memory_mib']:>10.1f} |")
    lines.append(f"| {'RSS before building the model, MiB':<40} | "
                 f"{r['rss_before_build_mib']:>10.1f} |")
    ev = r['evaluation']
    if 'skipped' in ev:
        lines.append(f"\nevaluation skipped: {ev['skipped']}")
    else:
        lines.append(f"| {'evaluation images/s':<40} | "
                     f"{ev['images_per_s']:>10.1f} |")
        lines.append(f"| {'evaluation full pass, s':<40} | "
                     f"{ev['full_pass_s']:>10.2f} |")
        if 'ms_per_train_iteration' in ev:
            label = f"eval ms/iteration (every {ev['val_interval']})"
            lines.append(f'| {label:<40} | '
                         f"{ev['ms_per_train_iteration']:>10.2f} |")
        lines.append(f"(evaluation measured on {ev['batches']} batch(es), "
                     f"{ev['images']} images)")
    cp = r.get('compare_plain')
    if cp:
        check = cp['loss_check']
        lines += [
            '',
            (f"plain-PyTorch floor ({cp['plain_loop']}): {cp['blocks']} "
            f"alternating blocks x {cp['block_iters']} iterations each; "
            'medians over blocks'),
            f"| {'':<26} | {'mmdfkd':>9} | {'plain':>9} |",
            f"|{'-' * 28}|{'-' * 11}|{'-' * 11}|",
            (f"| {'iterations/s':<26} | "
            f"{cp['mmdfkd_iterations_per_s']:>9.3f} | "
            f"{cp['plain_iterations_per_s']:>9.3f} |"),
        ]
        labels = {'data': 'wall ms/iteration: data',
                  'step': 'wall ms/iteration: step',
                  'cpu': 'CPU ms/iteration: total'}
        for part, label in labels.items():
            if part in cp['mmdfkd_ms_per_iteration']:
                lines.append(
                    f"| {label:<26} | "
                    f"{cp['mmdfkd_ms_per_iteration'][part]:>9.2f} | "
                    f"{cp['plain_ms_per_iteration'][part]:>9.2f} |")
        per_block = ', '.join(f'{x:.2f}' for x in cp['ratio_per_block'])
        lines.append(f"mmdfkd / plain throughput ratio, wall clock: "
                     f"{cp['ratio']:.3f} (train step only: "
                     f"{cp['step_ratio']:.3f}; per block: {per_block})")
        if cp['ratio_cpu_time'] is not None:
            lines.append('mmdfkd / plain throughput ratio, CPU time: '
                         f"{cp['ratio_cpu_time']:.3f} (robust to other "
                         'processes on a shared machine)')
        lines += [
            (f"loss check: {len(check['losses'])} losses equal over "
            f"{check['iterations']} iterations (max |diff| "
            f"{check['max_loss_diff']:.2g}; weights and BN statistics max "
            f"|diff| {check['max_state_diff']:.2g})"),
        ]
        if check['speed_switches_off']:
            lines.append('(loss check with the speed switches off: '
                         f"{', '.join(check['speed_switches_off'])}; the "
                         'timed mmdfkd run has them on)')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    result = benchmark(args)
    print(format_report(result))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'\nresults written to {args.json}')
    if args.profile:
        print(f'\ncProfile of {args.iters} more iterations, saved to '
              f'{args.profile}; by own time:')
        pstats.Stats(args.profile).sort_stats('tottime').print_stats(25)


if __name__ == '__main__':
    main()
