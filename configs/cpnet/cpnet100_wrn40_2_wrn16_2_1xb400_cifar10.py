# CPNet-100 (Chen et al., ICCV 2025) on CIFAR-10, WRN-40-2 -> WRN-16-2:
# cpnet_100.sh (30 generator steps per batch of 400, beta 0 (--dist 0.0: L_dis is computed and logged, weight 0);
# the recipe is ../_base_/algorithms/cpnet.py). The generator is built
# from the teacher: 4 blocks mirroring its last BN layer of each
# resolution. Label embeddings: all-MiniLM-L6-v2 features of "a image of
# {class}" (CLIP ViT-B/32 in the paper, see ../nayer/README.md). The bank
# (160,000 images, 0.98 GB of float16) is kept in shards under
# <work dir>/memory_bank (it follows --work-dir).
_base_ = [
    '../_base_/algorithms/cpnet.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/pairs/cifar10_wrn40_2_wrn16_2.py',
]

model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator=dict(
        label_embeddings='configs/_base_/label_embeddings/'
        'cifar10_all-minilm-l6-v2.pth'),
    memory_bank=dict(
        storage_dir='{work_dir}/memory_bank'),
    feature_adversarial_loss=dict(loss_weight=0.0),  # beta = 0
    generator_iter=30)

train_dataloader = dict(
    batch_size=400, dataset=dict(latent_dim=0, num_draws=10))
# CPNet-100: 120 epochs of the reference (20 warm-up), evaluated after each
train_cfg = dict(max_iters=120, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=10))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=10)]
