# ZSKT (Micaelli & Storkey, NeurIPS 2019) on Fashion-MNIST, CPU-sized:
# LeNet-5 -> LeNet-5-half with the paper's recipe
# (../_base_/algorithms/zskt.py), attention transfer on the outputs of the
# two pooled convolution stages. CPU departures: generator hidden channels 32
# (not 128).
_base_ = [
    '../_base_/algorithms/zskt.py',
    '../_base_/data_free_fashionmnist.py',
    '../_base_/models/lenet5_pair_fashionmnist.py',
]

stages = ('relu1', 'relu2')
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.lenet5_half_student}},
    teachers=dict(teacher={{_base_.lenet5_teacher}}),
    generator=dict(img_size=32, out_channels=1, hidden_channels=32),
    distiller=dict(
        student_recorders={
            s: dict(type='ModuleOutputs', source=f'backbone.{s}')
            for s in stages
        },
        teacher_recorders={
            s: dict(type='ModuleOutputs', source=f'teacher.backbone.{s}')
            for s in stages
        },
        distill_losses={
            f'loss_at_{s}': dict(type='ATLoss', loss_weight=250.0)
            for s in stages
        },
        loss_forward_mappings={
            f'loss_at_{s}': dict(
                s_feature=dict(from_student=True, recorder=s),
                t_feature=dict(from_student=False, recorder=s))
            for s in stages
        }))

train_dataloader = dict(
    batch_size=128,
    dataset=dict(latent_dim=100, num_classes=10, num_draws=11))
# measured: 19.4 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=1000, val_interval=200)
