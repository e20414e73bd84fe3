# DFAD (Fang et al., arXiv 1912.11006) on CIFAR-10, ResNet-34 -> ResNet-18,
# MMRazor's recipe (reported 92.80 with mmpretrain's ResNet-34 teacher at
# 95.34; paper 93.3 with its own teacher at 95.5): 8 GPUs x 32, 5 student
# steps then 1 generator step per iteration, 25k iterations, LR x0.1 at 5k
# and 10k. Paper over MMRazor: the generator uses Adam (DFAD), not AdamW.
_base_ = [
    '../_base_/algorithms/dfad.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/resnet_cifar.py',
]

model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.resnet18_cifar10}},
    teachers=dict(teacher={{_base_.resnet34_cifar10_teacher}}),
    generator=dict(img_size=32, out_channels=3))

train_dataloader = dict(
    batch_size=32, dataset=dict(latent_dim=256, num_classes=10, num_draws=6))
param_scheduler = dict(
    architecture=dict(
        type='MultiStepLR', milestones=[5000, 10000], by_epoch=False),
    generator=dict(
        type='MultiStepLR', milestones=[5000, 10000], by_epoch=False))
train_cfg = dict(max_iters=25000, val_interval=250)
auto_scale_lr = dict(base_batch_size=256)
