# AdaDFKD (Li et al., Neural Networks 2024) on CIFAR-100, WRN-40-2 ->
# WRN-40-1, with the recipe of the official code
# (../_base_/algorithms/adadfkd.py) and the settings of the code's CIFAR-100
# default script (named ResNet-34 -> ResNet-18): the code publishes none for
# this pair (its ..._wrn402_wrn401.sh trains WRN-16-2). Settings: batch 1024,
# 400 epochs of 40 iterations (1 generator step + 10 student steps), KD
# distance L1 at T 5, lambda_0 1 (+2e-05 per student step), a constant
# adversarial weight 1, R2M weight 0.1 with a queue of 12288 student keys,
# tau 0.07 and a window of 0.8 of the queue sliding between epochs int(0.2 E)
# and int(0.8 E), student InfoNCE weight 0.1. Feature widths: 128 (teacher)
# and 64 (student). Reported: 68.19 (AdaDFKD README). Validation every epoch
# (the code reports the best epoch).
_base_ = [
    '../_base_/algorithms/adadfkd.py',
    '../_base_/data_free_cifar100.py',
    '../_base_/models/pairs/cifar100_wrn40_2_wrn40_1.py',
]

epochs = 400
window_length, begin_fraction, end_fraction = 0.8, 0.2, 0.8
window_epochs = int((end_fraction - begin_fraction) * epochs)
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
    generator_distiller=dict(distill_losses=dict(
        loss_balance=dict(tau=5.0),
        loss_r2m=dict(
            feature_dim=128, student_feature_dim=64,
            queue_size=12288, window_length=window_length,
            loss_weight=0.1))),
    negative_window_schedules=dict(loss_r2m=dict(
        slope=(1 - window_length) / window_epochs,
        begin=int(begin_fraction * epochs),
        end=int(begin_fraction * epochs) + window_epochs)),
    distiller=dict(distill_losses=dict(loss_kd=dict(
        distance='l1',
        tau=5.0,
        self_paced=dict(lambda_0=1.0, alpha=2e-05),
        info_nce=dict(
            feature_dim=128, student_feature_dim=64,
            loss_weight=0.1)))))

train_dataloader = dict(
    batch_size=1024, dataset=dict(latent_dim=512, num_draws=11))
train_cfg = dict(max_iters=epochs * 40, val_interval=40)
default_hooks = dict(checkpoint=dict(interval=400))
auto_scale_lr = dict(base_batch_size=1024)
