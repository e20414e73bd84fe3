# Runtime shared by every data-free distillation config.
default_scope = 'mmdfkd'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook, kill-safe: atomic writes (temp file, fsync,
    # rename) through the 'atomic_local' file backend, `last_checkpoint`
    # replaced atomically, old checkpoints deleted only after the new one is
    # written, DDP-independent keys (see ResumableCheckpointHook)
    checkpoint=dict(
        type='ResumableCheckpointHook',
        by_epoch=False,
        interval=1000,
        max_keep_ckpts=2,
        save_last=True,
        backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # every rank's python/numpy/torch RNG states in checkpoints: a resumed
    # run continues with the random numbers of the uninterrupted one
    random_state=dict(type='RandomStateHook'),
    # logs the teacher's class entropy over recent synthetic batches and the
    # student-teacher agreement on them; a NaN/Inf loss stops the run with
    # the iteration named; below 0.3 normalised entropy (the generator makes
    # about two classes) it warns. Configs may choose 'reinit_generator' or
    # 'rollback' instead (see CollapseGuardHook).
    collapse_guard=dict(
        type='CollapseGuardHook',
        interval=10,
        window=10,
        nonfinite_action='stop',
        min_class_entropy=0.3,
        class_entropy_action='warn'),
)
# image grids of the synthetic batches under <work_dir>/<time>/vis_data/
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=500)]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when there is no CUDA; a dead rank
    # ends the run after `timeout` seconds instead of hanging forever
    dist_cfg=dict(backend='nccl', timeout=1800))

# student and generator in separate DDPs, teachers unwrapped; also on CPU
model_wrapper_cfg = dict(
    type='mmdfkd.DataFreeDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=False)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False, window_size=50)
log_level = 'INFO'
load_from = None
resume = False
# different noise on every rank; the same noise on every rerun
randomness = dict(seed=0, diff_rank_seed=True, deterministic=False)
