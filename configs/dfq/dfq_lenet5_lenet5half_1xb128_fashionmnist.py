# DFQ (Choi et al., CVPRW 2020) on Fashion-MNIST, CPU-sized: LeNet-5 ->
# LeNet-5-half with the CMI recipe (../_base_/algorithms/dfq.py: BN 1,
# one-hot 1, class balance 20, adversarial KL 1 against the real student,
# KD tau 20, 10 student steps per generator step, SGD 0.1 / Adam 1e-3).
# CPU departures: generator hidden channels 32 (not 128), batch 128 (not
# 256), 800 iterations (20 "epochs" of 40, not 200) with the x0.1 steps at
# the same fractions of the run (60, 75 and 90 %) as the reference's epochs
# 120, 150 and 180 of 200.
_base_ = [
    '../_base_/algorithms/dfq.py',
    '../_base_/data_free_fashionmnist.py',
    '../_base_/models/lenet5_pair_fashionmnist.py',
]

max_iters = 800
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.lenet5_half_student}},
    teachers=dict(teacher={{_base_.lenet5_teacher}}),
    generator=dict(
        img_size=32,
        out_channels=1,
        hidden_channels=32,
        output_normalization=dict(
            mean={{_base_.data_preprocessor.mean}},
            std={{_base_.data_preprocessor.std}})))

train_dataloader = dict(
    batch_size=128, dataset=dict(latent_dim=256, num_classes=10, num_draws=11))
param_scheduler = dict(
    architecture=dict(
        type='MultiStepLR',
        milestones=[int(0.6 * max_iters), int(0.75 * max_iters),
                    int(0.9 * max_iters)],
        by_epoch=False),
    generator=[])
train_cfg = dict(max_iters=max_iters, val_interval=100)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=100))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=100)]
