# Train the LeNet-5 (with BN) teacher on Fashion-MNIST from scratch.
# Prepare the data first:
#   python tools/dataset_converters/prepare_fashion_mnist.py
# Then train with the mmengine Runner; the last checkpoint is the teacher
# that the data-free configs load (copied to checkpoints/lenet5_fashionmnist.pth).
_base_ = [
    '../_base_/models/lenet5_fashionmnist.py',
    '../_base_/datasets/fashionmnist_bs256.py',
]

default_scope = 'mmdfkd'

max_epochs = 8
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4))
# BN makes a large learning rate safe; a short warm-up avoids early blow-up
# and cosine annealing gives the last points of accuracy in few epochs.
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.1,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - 1,
        eta_min=0.0,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
