# Runtime of supervised training (teachers, students' from-scratch
# baselines): mmengine's epoch-based loops and hooks; not the data-free
# default_runtime.py (no DataFreeDDP wrapper, no synthetic-image hook).
default_scope = 'mmdfkd'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # the last epoch is the teacher (`epoch_200.pth`); the best validation
    # checkpoint is kept too, as the reference scripts keep theirs
    checkpoint=dict(
        type='CheckpointHook',
        interval=10,
        max_keep_ckpts=1,
        save_last=True,
        save_best='auto'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py uses gloo for torchrun runs without CUDA
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
