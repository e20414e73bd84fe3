# DAFL (Chen et al., ICCV 2019) on Fashion-MNIST, CPU-sized: LeNet-5 ->
# LeNet-5-half with the paper's MNIST recipe (../_base_/algorithms/dafl.py:
# one-hot 1, activation 0.1, information entropy 5; Adam, generator lr 0.2,
# student lr 2e-3; latent 100). CPU departures: generator hidden channels 32
# (not 128), batch 128 (not 512).
_base_ = [
    '../_base_/algorithms/dafl.py',
    '../_base_/data_free_fashionmnist.py',
    '../_base_/models/lenet5_pair_fashionmnist.py',
]

model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.lenet5_half_student}},
    teachers=dict(teacher={{_base_.lenet5_teacher}}),
    generator=dict(
        img_size=32, latent_dim=100, out_channels=1, hidden_channels=32))

train_dataloader = dict(
    batch_size=128, dataset=dict(latent_dim=100, num_classes=10, num_draws=1))

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='Adam', lr=2e-3)),
    generator=dict(optimizer=dict(type='Adam', lr=0.2)))
# about 15 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=3000, val_interval=500)
