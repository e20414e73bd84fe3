# CPNet-100 (Chen et al., ICCV 2025) on Tiny-ImageNet (64x64, 200 classes),
# ResNet-34 -> ResNet-18: cpnet_100.sh (synthesis batch 200 = one noisy
# layer, 60 generator steps per batch, 4 synthesis loops per iteration and
# 20 during the warm-up, 1000 student steps of 256 with SGD 0.2, beta 0
# (--dist 0.0)). Unlike NAYER's Tiny-ImageNet recipe, CPNet keeps the flip
# and the colour jitter in the synthesis views (its code drops them for
# ImageNet only). The recipe is ../_base_/algorithms/cpnet.py; the
# generator mirrors the teacher's last BN layer of each resolution
# (64, 32, 16, 8). Teacher: checkpoints/tinyimagenet_resnet34.pth
# (configs/teachers/README.md). Label embeddings: the text-free orthogonal
# stand-in, as ../nayer/nayer100_resnet34_resnet18_1xb200_tinyimagenet.py
# (which explains how to compute all-MiniLM-L6-v2 features instead).
# The bank ((20 x 20 + 100 x 4) x 200 = 160,000 images, 3.9 GB of float16)
# is kept in shards under <work dir>/memory_bank (it follows --work-dir).
_base_ = [
    '../_base_/algorithms/cpnet.py',
    '../_base_/data_free_tinyimagenet.py',
    '../_base_/models/pairs/tinyimagenet_resnet34_resnet18.py',
]

batch_size = 200
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator=dict(
        label_embeddings=dict(
            type='orthogonal', num_classes=200, dim=384, seed=0),
        batch_size=batch_size,
        img_size=64),
    memory_bank=dict(
        capacity=(20 * 20 + 100 * 4) * batch_size,
        storage_dir='{work_dir}/memory_bank'),
    feature_adversarial_loss=dict(loss_weight=0.0),  # beta = 0
    synthesis_loops=4,
    warmup_synthesis_loops=20,
    generator_iter=60,
    student_iter=1000,
    student_batch_size=256)

train_dataloader = dict(
    batch_size=batch_size, dataset=dict(latent_dim=0, num_draws=20))
# CPNet-100: 120 epochs of the reference (20 warm-up), evaluated after each
train_cfg = dict(max_iters=120, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=10))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=10)]
