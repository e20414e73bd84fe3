# ZSKT (Micaelli & Storkey, NeurIPS 2019) on CIFAR-10, ResNet-34 ->
# ResNet-18 (Fast's table: 93.32), the paper's recipe
# (../_base_/algorithms/zskt.py): batch 128, attention transfer on the four
# stage outputs, 80k iterations.
_base_ = [
    '../_base_/algorithms/zskt.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/resnet_cifar.py',
]

stages = ('layer1', 'layer2', 'layer3', 'layer4')
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.resnet18_cifar10}},
    teachers=dict(teacher={{_base_.resnet34_cifar10_teacher}}),
    generator=dict(img_size=32, out_channels=3),
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
train_cfg = dict(max_iters=80000, val_interval=1000)
