# CMI (Fang et al., IJCAI 2021) on Fashion-MNIST, CPU-sized: LeNet-5 ->
# LeNet-5-half with the scratch recipe of ../_base_/algorithms/cmi.py (BN 1,
# one-hot 1, masked adversarial KL 0.5, contrastive 0.8 at tau 0.1, a
# re-initialised generator per batch with trainable z, Adam 1e-3; KD tau 20,
# SGD 0.1 with cosine decay over the run).
# CPU departures from the reference's WRN-40-2 -> WRN-16-1 script: batches of
# 128 images synthesised (not 256) by a generator with 32 hidden channels
# (not 128) in 40 steps (not 200), 1024 negatives (not 4096), 100 student
# steps per batch (not 400), 60 iterations (not 200 epochs); every
# synthesised image is kept (pool and feature bank sized to the run). No
# flips: Fashion-MNIST classes are not mirror-symmetric in general (shoes
# all point left), as in the ADI config.
_base_ = [
    '../_base_/algorithms/cmi.py',
    '../_base_/data_free_fashionmnist.py',
    '../_base_/models/lenet5_pair_fashionmnist.py',
]

batch_size = 128
max_iters = 60
_view = dict(type='SynthesisAugmentation', crop_padding=4, flip=False)
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.lenet5_half_student}},
    teachers=dict(teacher={{_base_.lenet5_teacher}}),
    generator=dict(img_size=32, out_channels=1, hidden_channels=32),
    memory_bank=dict(capacity=max_iters * batch_size),
    feature_bank=dict(capacity=max_iters * batch_size),
    num_negatives=1024,
    global_view=_view,
    local_view=dict(flip=False),
    student_augmentation=_view,
    student_batch_size=128,
    generator_iter=40,
    student_iter=100)

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=256, num_classes=10, num_draws=1))
# about 15 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=max_iters, val_interval=10)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=10))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=10)]
