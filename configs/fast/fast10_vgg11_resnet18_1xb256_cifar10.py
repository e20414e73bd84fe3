# Fast-10 (Fang et al., AAAI 2022) on CIFAR-10, VGG-11 -> ResNet-18: 10
# generator steps per synthesis task (inner Adam lr_g 0.002, latents lr_z
# 0.01, meta-Adam lr 10 x lr_g), class prior 0.5 and adversarial weight 1.0
# for a VGG-11 teacher (scripts/fast_cifar.sh); the recipe is
# ../_base_/algorithms/fast.py. Paper: 90.53.
_base_ = [
    '../_base_/algorithms/fast.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/pairs/cifar10_vgg11_resnet18.py',
]

g_steps, lr_g, lr_z = 10, 0.002, 0.01
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator_iter=g_steps,
    inner_optimizer=dict(lr=lr_g),
    latent_optimizer=dict(lr=lr_z),
    generator_distiller=dict(
        distill_losses=dict(
            loss_oh=dict(loss_weight=0.5),
            loss_adv=dict(loss_weight=-1.0))))

train_dataloader = dict(
    batch_size=256, dataset=dict(latent_dim=256, num_draws=1))
optim_wrapper = dict(generator=dict(optimizer=dict(lr=lr_g * g_steps)))
# 220 epochs of the reference (20 warm-up), evaluated after each
train_cfg = dict(max_iters=220, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=10))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=10)]
