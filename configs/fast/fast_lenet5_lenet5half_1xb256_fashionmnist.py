# Fast-5 (Fang et al., AAAI 2022) on Fashion-MNIST, CPU-sized: LeNet-5 ->
# LeNet-5-half with the CIFAR recipe (../_base_/algorithms/fast.py: meta-
# generator, 5 inner steps per synthesis task, momentum BN loss, masked
# adversarial term, warm-up, layer reset at iteration 139, KD tau 20 from
# the bank). CPU departures: generator width 32 (not 128), 200 iterations
# (not 220) with 40 student steps each (not 400), cosine over the 180
# post-warm-up iterations; no flips (Fashion-MNIST classes are not
# mirror-symmetric in general). The ResNet-34 teacher's weights adv 1.33 /
# oh 0.5.
_base_ = [
    '../_base_/algorithms/fast.py',
    '../_base_/data_free_fashionmnist.py',
    '../_base_/models/lenet5_pair_fashionmnist.py',
]

g_steps, lr_g, lr_z = 5, 3e-3, 0.01
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.lenet5_half_student}},
    teachers=dict(teacher={{_base_.lenet5_teacher}}),
    generator=dict(out_channels=1, hidden_channels=32),
    memory_bank=dict(capacity=200 * 256),
    synthesis_augmentation=dict(flip=False),
    generator_iter=g_steps,
    inner_optimizer=dict(lr=lr_g),
    latent_optimizer=dict(lr=lr_z),
    student_iter=40)

train_dataloader = dict(
    batch_size=256,
    dataset=dict(latent_dim=256, num_classes=10, num_draws=1))
optim_wrapper = dict(generator=dict(optimizer=dict(lr=lr_g * g_steps)))
param_scheduler = dict(architecture=dict(T_max=180))
# about 15 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=200, val_interval=10)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=50))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=50)]
