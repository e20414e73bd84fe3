# AdaDFKD (Li et al., Neural Networks 2024) on Fashion-MNIST, CPU-sized:
# LeNet-5 -> LeNet-5-half with the CIFAR-10 recipe
# (../_base_/algorithms/adadfkd.py: CuDFKD's generator terms with a constant
# adversarial weight 1, R2M weight 0.1 with a queue of 4096 student keys, tau
# 0.07 and a window of 0.9 of the queue sliding between epochs int(0.25 E)
# and int(0.75 E); self-paced KL KD at T 20 with lambda_0 2.2 (+1e-4 per
# student step) plus the student InfoNCE term with weight 0.1; 10 student
# steps per generator step). Feature widths: 84 (LeNet-5) and 42
# (LeNet-5-half), joined by the fixed semi-orthogonal projection.
# CPU departures, as in ../cudfkd/cudfkd_lenet5_lenet5half_1xb128_
# fashionmnist.py: generator hidden channels 64 (not 256), batch 128 (not
# 768), and 18 "epochs" of 40 iterations instead of 300.
_base_ = [
    '../_base_/algorithms/adadfkd.py',
    '../_base_/data_free_fashionmnist.py',
    '../_base_/models/lenet5_pair_fashionmnist.py',
]

epochs = 18
iters_per_epoch = 40
window_length, begin_fraction, end_fraction = 0.9, 0.25, 0.75
window_epochs = int((end_fraction - begin_fraction) * epochs)
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.lenet5_half_student}},
    teachers=dict(teacher={{_base_.lenet5_teacher}}),
    generator=dict(
        img_size=32,
        out_channels=1,
        hidden_channels=64,
        output_normalization=dict(
            mean={{_base_.data_preprocessor.mean}},
            std={{_base_.data_preprocessor.std}})),
    generator_distiller=dict(distill_losses=dict(loss_r2m=dict(
        feature_dim=84, student_feature_dim=42,
        queue_size=4096, window_length=window_length,
        loss_weight=0.1))),
    negative_window_schedules=dict(loss_r2m=dict(
        slope=(1 - window_length) / window_epochs,
        begin=int(begin_fraction * epochs),
        end=int(begin_fraction * epochs) + window_epochs,
        iters_per_epoch=iters_per_epoch)),
    distiller=dict(distill_losses=dict(loss_kd=dict(
        distance='kl',
        tau=20.0,
        self_paced=dict(lambda_0=2.2, alpha=1e-4),
        info_nce=dict(
            feature_dim=84, student_feature_dim=42, loss_weight=0.1)))))

train_dataloader = dict(
    batch_size=128, dataset=dict(latent_dim=512, num_classes=10, num_draws=11))
train_cfg = dict(max_iters=epochs * iters_per_epoch, val_interval=100)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=100))
custom_hooks = [dict(type='SyntheticImageVisualizationHook', interval=100)]
