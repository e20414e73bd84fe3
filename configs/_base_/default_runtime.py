# Runtime shared by every data-free distillation config.
default_scope = 'mmdfkd'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=1000,
        max_keep_ckpts=2,
        save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
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
