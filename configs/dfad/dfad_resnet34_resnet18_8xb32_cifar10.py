# DFAD (Fang et al., arXiv 1912.11006) on CIFAR-10, ResNet-34 -> ResNet-18,
# MMRazor's recipe (reported 92.80 with mmpretrain's ResNet-34 teacher at
# 95.34; paper 93.3 with its own teacher at 95.5): 8 GPUs x 32, 5 student
# steps (L1 on logits) then 1 generator step (L1 with weight -1) per
# iteration, 25k iterations, LR x0.1 at 5k and 10k.
# Paper over MMRazor: the generator uses Adam (DFAD) rather than AdamW.
_base_ = [
    '../_base_/data_free_cifar10.py',
    '../_base_/models/resnet_cifar.py',
]

latent_dim = 256
student_iter = 5

logit_recorders = dict(
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(
        logits=dict(type='ModuleOutputs', source='res34.head.fc')))
logit_mapping = dict(
    s_feature=dict(from_student=True, recorder='logits'),
    t_feature=dict(from_student=False, recorder='logits'))

model = dict(
    type='DataFreeDistillation',
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.resnet18_cifar10}},
    teachers=dict(
        res34=dict(
            build_cfg={{_base_.resnet34_cifar10}},
            ckpt_path={{_base_.resnet34_cifar10_ckpt}})),
    generator=dict(
        type='DAFLGenerator',
        img_size=32,
        latent_dim=latent_dim,
        hidden_channels=128,
        out_channels=3,
        bn_eps=1e-5,
        final_activation='tanh',
        final_norm='non_affine'),
    distiller=dict(
        type='ConfigurableDistiller',
        **logit_recorders,
        distill_losses=dict(loss_l1=dict(type='L1Loss', loss_weight=1.0)),
        loss_forward_mappings=dict(loss_l1=logit_mapping)),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        **logit_recorders,
        distill_losses=dict(loss_adv=dict(type='L1Loss', loss_weight=-1.0)),
        loss_forward_mappings=dict(loss_adv=logit_mapping)),
    student_iter=student_iter,
    generator_iter=1,
    student_train_first=True)

train_dataloader = dict(
    batch_size=32,
    dataset=dict(latent_dim=latent_dim, num_classes=10,
                 num_draws=student_iter + 1))

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4)),
    generator=dict(optimizer=dict(type='Adam', lr=1e-3)))
param_scheduler = dict(
    architecture=dict(
        type='MultiStepLR', milestones=[5000, 10000], by_epoch=False),
    generator=dict(
        type='MultiStepLR', milestones=[5000, 10000], by_epoch=False))
train_cfg = dict(max_iters=25000, val_interval=250)
auto_scale_lr = dict(base_batch_size=256)
