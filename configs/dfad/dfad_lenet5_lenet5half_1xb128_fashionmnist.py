# DFAD (Fang et al., arXiv 1912.11006) on Fashion-MNIST, CPU-sized: LeNet-5
# -> LeNet-5-half with the paper's recipe (../_base_/algorithms/dfad.py).
# CPU departures: generator hidden channels 32 (not 128), batch 128 (not 256).
_base_ = [
    '../_base_/algorithms/dfad.py',
    '../_base_/data_free_fashionmnist.py',
    '../_base_/models/lenet5_pair_fashionmnist.py',
]

model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.lenet5_half_student}},
    teachers=dict(teacher={{_base_.lenet5_teacher}}),
    generator=dict(img_size=32, out_channels=1, hidden_channels=32))

train_dataloader = dict(
    batch_size=128, dataset=dict(latent_dim=256, num_classes=10, num_draws=6))
# measured: 13.4 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=1200, val_interval=200)
