# Adaptive DeepInversion (Yin et al., CVPR 2020) on CIFAR-10, ResNet-34 ->
# ResNet-18 (Fast's table, DeepInv-2k: 93.26 after 42 GPU-hours), see
# ../_base_/algorithms/deepinv_adi.py: 2000 Adam steps (lr 0.1) per batch of
# 256 images with 2-px jitter and flips, a 51,200-image bank (the size of the
# references' synthetic sets; 200 iterations fill it) and 200 student KD
# steps (tau 20, SGD 0.1, cosine) per iteration.
_base_ = [
    '../_base_/algorithms/deepinv_adi.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/resnet_cifar.py',
]

batch_size = 256
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.resnet18_cifar10}},
    teachers=dict(teacher={{_base_.resnet34_cifar10_teacher}}),
    generator=dict(
        batch_size=batch_size,
        image_shape=(3, 32, 32),
        # valid [0, 255] pixels in the normalised space, widest channel
        value_range=(-125.307 / 50.847, (255 - 113.8575) / 50.847)),
    memory_bank=dict(capacity=51200),
    generator_iter=2000,
    student_iter=200)

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=0, num_classes=10, num_draws=1))
train_cfg = dict(max_iters=200, val_interval=5)
default_hooks = dict(checkpoint=dict(interval=5))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=5)]
