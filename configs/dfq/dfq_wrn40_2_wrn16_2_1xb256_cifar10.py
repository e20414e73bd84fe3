# DFQ (Choi et al., CVPRW 2020) on CIFAR-10, WRN-40-2 -> WRN-16-2, with the
# CMI recipe (../_base_/algorithms/dfq.py) and the recipe's defaults (SGD
# 0.1, KD tau 20, from CMI's CIFAR-10 WRN-40-2 -> WRN-16-1 script): CMI
# publishes no script for this pair. Reported: 92.01 (Fast-Datafree's README
# table). 200 epochs of 40 iterations (1 generator step + 10 student steps of
# 256 images each), validation every epoch (the references report the best
# epoch).
_base_ = [
    '../_base_/algorithms/dfq.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/pairs/cifar10_wrn40_2_wrn16_2.py',
]

model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator=dict(
        img_size=32,
        out_channels=3,
        output_normalization=dict(
            mean={{_base_.data_preprocessor.mean}},
            std={{_base_.data_preprocessor.std}})))

train_dataloader = dict(
    batch_size=256, dataset=dict(latent_dim=256, num_draws=11))
train_cfg = dict(max_iters=8000, val_interval=40)
default_hooks = dict(checkpoint=dict(interval=400))
auto_scale_lr = dict(base_batch_size=256)
