# CuDFKD (Li et al., arXiv 2208.13648) on CIFAR-100, WRN-40-2 -> WRN-40-1,
# with the recipe of the official code (../_base_/algorithms/cudfkd.py) and
# the settings of the code's CIFAR-100 ResNet-34 -> ResNet-18 script: the
# code publishes none for this pair. Settings: batch 768, 300 epochs of 40
# iterations (1 generator step + 10 student steps), KD distance L1, T 5,
# lambda_0 1.0, alpha 2e-05 per student step, a constant adversarial weight
# 1. The script also replays every round's best batch from an image pool
# (--memory); we draw fresh generator batches instead (README). Reported:
# 66.43 (AdaDFKD README). Validation every epoch (the code reports the best
# epoch).
_base_ = [
    '../_base_/algorithms/cudfkd.py',
    '../_base_/data_free_cifar100.py',
    '../_base_/models/pairs/cifar100_wrn40_2_wrn40_1.py',
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
        tau=5.0,
        self_paced=dict(lambda_0=1.0, alpha=2e-05)))),
    generator_distiller=dict(distill_losses=dict(
        loss_balance=dict(tau=5.0))),
    loss_weight_schedules=dict(
        loss_adv=dict(start=1.0, slope=0.0, begin=0, end=0)))

train_dataloader = dict(
    batch_size=768, dataset=dict(latent_dim=512, num_draws=11))
train_cfg = dict(max_iters=epochs * 40, val_interval=40)
default_hooks = dict(checkpoint=dict(interval=400))
auto_scale_lr = dict(base_batch_size=768)
