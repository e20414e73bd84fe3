# CuDFKD (Li et al., arXiv 2208.13648) on CIFAR-100, WRN-40-2 -> WRN-16-2,
# with the recipe of the official code (../_base_/algorithms/cudfkd.py) and
# the settings of the code's script for this pair
# (scripts/cudfkd/cudfkd_cifar100_wrn402_wrn161.sh, which trains WRN-16-2
# despite its name). Settings: batch 1024, 300 epochs of 40 iterations (1
# generator step + 10 student steps), KD distance KL, T 2, lambda_0 1.0,
# alpha 2e-05 per student step, an adversarial weight 0 rising by 0.15 per
# epoch from epoch 61 to 226. Reported: 65.94 (AdaDFKD README). Validation
# every epoch (the code reports the best epoch).
_base_ = [
    '../_base_/algorithms/cudfkd.py',
    '../_base_/data_free_cifar100.py',
    '../_base_/models/pairs/cifar100_wrn40_2_wrn16_2.py',
]

epochs = 300
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator=dict(
        img_size=32,
        out_channels=3,
        output_normalization=dict(
            mean={{_base_.data_preprocessor.mean}},
            std={{_base_.data_preprocessor.std}})),
    distiller=dict(distill_losses=dict(loss_kd=dict(
        distance='kl',
        tau=2.0,
        self_paced=dict(lambda_0=1.0, alpha=2e-05)))),
    generator_distiller=dict(distill_losses=dict(
        loss_balance=dict(tau=2.0))),
    loss_weight_schedules=dict(
        loss_adv=dict(start=0.0, slope=0.15, begin=61, end=226)))

train_dataloader = dict(
    batch_size=1024, dataset=dict(latent_dim=512, num_draws=11))
train_cfg = dict(max_iters=epochs * 40, val_interval=40)
default_hooks = dict(checkpoint=dict(interval=400))
auto_scale_lr = dict(base_batch_size=1024)
