# GapSSG (Wang et al., T-PAMI 2024) on CIFAR-100, WRN-40-2 -> WRN-16-2
# (reported: 68.88), with the recipe of the reference's released script
# (../_base_/algorithms/gapssg.py); the reference publishes only the
# CIFAR-100 ResNet-34 -> MobileNetV2 script, so every pair uses its
# hyper-parameters (see README.md).
# 200 iterations = the reference's 200 epochs of (1 synthesised batch of
# 256 in 200 steps + 4 (epoch + 1) student steps of 128), validation after
# each. The bank keeps every synthesised image (51,200), in float16 to
# halve the checkpoints.
_base_ = [
    '../_base_/algorithms/gapssg.py',
    '../_base_/data_free_cifar100.py',
    '../_base_/models/pairs/cifar100_wrn40_2_wrn16_2.py',
]

batch_size = 256
num_epochs = 200
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator=dict(img_size=32, out_channels=3),
    memory_bank=dict(capacity=num_epochs * batch_size, dtype='float16'))

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=256, num_classes=100, num_draws=1))
train_cfg = dict(max_iters=num_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=10))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=10)]
