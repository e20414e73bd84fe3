# NAYER (Tran et al., CVPR 2024) on Fashion-MNIST, CPU-sized: LeNet-5 ->
# LeNet-5-half with the CIFAR recipe (../_base_/algorithms/nayer.py:
# label-text embeddings -> re-drawn K-to-1 noisy layers -> generator,
# class-balanced targets, a new Adam per batch, whole-generator
# re-initialisation every 10 iterations, momentum BN loss, masked
# adversarial term, warm-up, KD tau 20 from the bank). Label embeddings:
# all-MiniLM-L6-v2 features of "a image of {class}" (CLIP in the paper; see
# README.md); ./nayer_orthogonal_lenet5_lenet5half_1xb200_fashionmnist.py
# runs the same with the text-free stand-in.
# CPU departures: synthesis batch 200 (20 per class; not 400), generator
# width 16 (32 channels after the first layer; not 64/128), 10 steps per
# batch (not 30), 65 iterations of which 5 warm-up with 5 synthesis loops
# (not 120 / 20 / 10), 40 student steps of 256 (not 400 of 512), the
# whole bank in memory; no flips (Fashion-MNIST classes are not
# mirror-symmetric in general).
_base_ = [
    '../_base_/algorithms/nayer.py',
    '../_base_/data_free_fashionmnist.py',
    '../_base_/models/lenet5_pair_fashionmnist.py',
]

batch_size = 200
warmup_iters, warmup_loops, loops, max_iters = 5, 5, 2, 65
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.lenet5_half_student}},
    teachers=dict(teacher={{_base_.lenet5_teacher}}),
    generator=dict(
        label_embeddings='configs/_base_/label_embeddings/'
        'fashion_mnist_all-minilm-l6-v2.pth',
        batch_size=batch_size,
        out_channels=1,
        hidden_channels=16),
    memory_bank=dict(
        storage='memory',
        capacity=(warmup_iters * warmup_loops +
                  (max_iters - warmup_iters) * loops) * batch_size),
    synthesis_augmentation=dict(flip=False),
    warmup_iters=warmup_iters,
    warmup_synthesis_loops=warmup_loops,
    synthesis_loops=loops,
    generator_iter=10,
    student_iter=40,
    student_batch_size=256)

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=0, num_classes=10, num_draws=warmup_loops))
param_scheduler = dict(
    architecture=dict(begin=warmup_iters + 1, T_max=max_iters - warmup_iters))
# about 15 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=max_iters, val_interval=5)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=20))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=20)]
