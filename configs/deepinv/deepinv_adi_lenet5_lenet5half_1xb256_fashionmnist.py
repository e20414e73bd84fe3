# Adaptive DeepInversion (Yin et al., CVPR 2020) on Fashion-MNIST, CPU-sized:
# LeNet-5 -> LeNet-5-half (../_base_/algorithms/deepinv_adi.py). Each
# iteration: 50 Adam steps on a fresh batch of 256 images (the reference
# runs 2k on a GPU), then 20 student KD steps (tau 4, SGD 0.05 with cosine
# decay) on batches of the bank. No flips: Fashion-MNIST classes are not
# mirror-symmetric in general.
_base_ = [
    '../_base_/algorithms/deepinv_adi.py',
    '../_base_/data_free_fashionmnist.py',
    '../_base_/models/lenet5_pair_fashionmnist.py',
]

batch_size = 256
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.lenet5_half_student}},
    teachers=dict(teacher={{_base_.lenet5_teacher}}),
    generator=dict(
        batch_size=batch_size,
        image_shape=(1, 32, 32),
        # valid pixels [0, 255] in the normalised space (mean 72.94, std 90)
        value_range=((0 - 72.94) / 90.0, (255 - 72.94) / 90.0)),
    memory_bank=dict(capacity=20480),
    flip=False,
    distiller=dict(distill_losses=dict(loss_kd=dict(tau=4.0))),
    generator_iter=50,
    student_iter=20)

train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(latent_dim=0, num_classes=10, num_draws=1))
optim_wrapper = dict(
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4)))
# about 15 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=100, val_interval=25)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=25))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=25)]
