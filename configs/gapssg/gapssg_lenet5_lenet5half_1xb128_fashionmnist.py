# GapSSG (Wang et al., T-PAMI 2024) on Fashion-MNIST, CPU-sized: LeNet-5 ->
# LeNet-5-half with the recipe of ../_base_/algorithms/gapssg.py (BN 1 +
# adaptive-weight derived/inherent gap loss, a re-initialised generator per
# batch with trainable z, Adam 2e-3; 4 (t + 1) student steps at iteration t,
# KD tau 20, SGD 0.2 with cosine decay over the run).
# CPU departures from the reference's script: batches of 128 images
# synthesised (not 256) by a generator with 32 hidden channels (not 128) in
# 80 steps (not 200), 40 iterations (not 200 epochs: 3,280 student steps,
# not 80,400); every synthesised image is kept. No flips: Fashion-MNIST
# classes are not mirror-symmetric in general (shoes all point left), as in
# the CMI config.
_base_ = [
    '../_base_/algorithms/gapssg.py',
    '../_base_/data_free_fashionmnist.py',
    '../_base_/models/lenet5_pair_fashionmnist.py',
]

batch_size = 128
max_iters = 40
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.lenet5_half_student}},
    teachers=dict(teacher={{_base_.lenet5_teacher}}),
    generator=dict(img_size=32, out_channels=1, hidden_channels=32),
    memory_bank=dict(capacity=max_iters * batch_size),
    synthesis_augmentation=dict(flip=False),
    generator_iter=80)

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=256, num_classes=10, num_draws=1))
# about 12 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=max_iters, val_interval=5)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=5))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=10)]
