# CuDFKD (Li et al., arXiv 2208.13648) on CIFAR-10, ResNet-34 -> ResNet-18,
# with the recipe of the official code (../_base_/algorithms/cudfkd.py) and
# the settings of the code's script for this pair
# (scripts/cudfkd/cudfkd_cifar10_resnet34_resnet18.sh). Settings: batch 512,
# 250 epochs of 40 iterations (1 generator step + 10 student steps), KD
# distance L1, T 20, lambda_0 2.0, alpha 0.0001 per student step, the
# adversarial weight rising by 0.5 per epoch from epoch 63 to 188. Reported:
# 95.28 (AdaDFKD README). Validation every epoch (the code reports the best
# epoch).
_base_ = [
    '../_base_/algorithms/cudfkd.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/pairs/cifar10_resnet34_resnet18.py',
]

epochs = 250
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
    batch_size=512, dataset=dict(latent_dim=512, num_draws=11))
train_cfg = dict(max_iters=epochs * 40, val_interval=40)
default_hooks = dict(checkpoint=dict(interval=400))
auto_scale_lr = dict(base_batch_size=512)
