# NAYER-100 (Tran et al., CVPR 2024) on Tiny-ImageNet (64x64, 200 classes),
# ResNet-34 -> ResNet-18: scripts/nayer_100.sh (synthesis batch 200 = one
# noisy layer, 60 generator steps per batch, 4 synthesis loops per
# iteration and 20 during the warm-up, 1000 student steps of 256 with SGD
# 0.1; no flip in the synthesis views, crop and flip in the student's bank
# batches, as the reference's dataset transform). The recipe is
# ../_base_/algorithms/nayer.py. Teacher: checkpoints/
# tinyimagenet_resnet34.pth (configs/teachers/README.md).
# Label embeddings: the text-free orthogonal stand-in (no class-name list
# ships with mmdfkd); for the all-MiniLM-L6-v2 features of the class names
# in the archive's words.txt run
#   python tools/misc/compute_label_embeddings.py tinyimagenet \
#       --data-root data/tiny-imagenet-200 --out <file>.pth
# and set model.generator.label_embeddings=<file>.pth (CLIP ViT-B/32 in the
# paper, see README.md).
# The bank ((20 x 20 + 100 x 4) x 200 = 160,000 images, 3.9 GB of float16)
# is kept in shards under <work dir>/memory_bank (it follows --work-dir).
_base_ = [
    '../_base_/algorithms/nayer.py',
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
    synthesis_augmentation=dict(flip=False),
    student_augmentation=dict(
        type='SynthesisAugmentation', crop_padding=4, flip=True),
    synthesis_loops=4,
    warmup_synthesis_loops=20,
    generator_iter=60,
    student_iter=1000,
    student_batch_size=256)

train_dataloader = dict(
    batch_size=batch_size, dataset=dict(latent_dim=0, num_draws=20))
optim_wrapper = dict(architecture=dict(optimizer=dict(lr=0.1)))
# NAYER-100: 120 epochs of the reference (20 warm-up), evaluated after each
train_cfg = dict(max_iters=120, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=10))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=10)]
