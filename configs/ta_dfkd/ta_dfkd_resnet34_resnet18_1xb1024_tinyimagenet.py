# TA-DFKD (Shin & Choi, AAAI 2024) on Tiny-ImageNet (64x64, 200 classes),
# ResNet-34 -> ResNet-18, the recipe of the official code's README run for
# Tiny (../_base_/algorithms/ta_dfkd.py): batch 1024, 500 epochs, a 64x64
# generator, and a training view WITHOUT crop or flip (the reference applies
# neither to Tiny images). Assumed, not stated in our notes: the CIFAR
# script's 36 iterations x (10 student steps + 1 generator step) per epoch,
# hence 500 x 36 = 18000 iterations, validation every 36 (one epoch).
# Normalisation: the reference normalises with ImageNet's mean/std because
# its own teacher (TINY_7550.pt) was trained so; ours uses the statistics
# our teacher was trained with (0.5 / 0.5, ../_base_/datasets/
# normalization.py). With the reference teacher set
# model.data_preprocessor.mean=[123.675,116.28,103.53] and
# std=[58.395,57.12,57.375] (it normalises the test images too).
# Teacher: checkpoints/tinyimagenet_resnet34.pth (configs/teachers/
# README.md), or set model.teachers.teacher.ckpt_path.
_base_ = [
    '../_base_/algorithms/ta_dfkd.py',
    '../_base_/data_free_tinyimagenet.py',
    '../_base_/models/pairs/tinyimagenet_resnet34_resnet18.py',
]

batch_size = 1024
iters_per_epoch = 36
num_epochs = 500

model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator=dict(img_size=64, out_channels=3),
    # the reference's Tiny train view is the plain normalised image
    crop_padding=0,
    flip=False,
    generator_distiller=dict(
        distill_losses=dict(
            loss_l2=dict(loss_weight=6e-3 * batch_size**0.5))))

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=1000, num_classes=200, num_draws=11))
train_cfg = dict(
    max_iters=num_epochs * iters_per_epoch, val_interval=iters_per_epoch)
default_hooks = dict(checkpoint=dict(interval=10 * iters_per_epoch))
auto_scale_lr = dict(base_batch_size=batch_size)
