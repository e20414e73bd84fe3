# ZSKT (Micaelli & Storkey, NeurIPS 2019) on CIFAR-10, ResNet-34 ->
# ResNet-18 (Fast's table: 93.32). The paper's recipe: batch 128, latent
# 100, per iteration 1 generator step maximising KL(p_T || p_S) and 10
# student steps minimising KL + 250 * attention transfer on the four stage
# outputs, Adam lr 2e-3 for both with cosine annealing, 80k iterations.
_base_ = [
    '../_base_/data_free_cifar10.py',
    '../_base_/models/resnet_cifar.py',
]

latent_dim = 100
student_iter = 10
stages = ('layer1', 'layer2', 'layer3', 'layer4')

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
        final_activation=None,
        final_norm='affine'),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc'),
            **{s: dict(type='ModuleOutputs', source=f'backbone.{s}')
               for s in stages}),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='res34.head.fc'),
            **{s: dict(type='ModuleOutputs', source=f'res34.backbone.{s}')
               for s in stages}),
        distill_losses=dict(
            loss_kl=dict(type='KLDivergence', tau=1.0),
            **{f'loss_at_{s}': dict(type='ATLoss', loss_weight=250.0)
               for s in stages}),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')),
            **{f'loss_at_{s}': dict(
                s_feature=dict(from_student=True, recorder=s),
                t_feature=dict(from_student=False, recorder=s))
               for s in stages})),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='res34.head.fc')),
        distill_losses=dict(
            loss_adv=dict(
                type='KLDivergence',
                tau=1.0,
                loss_weight=-1.0,
                teacher_detach=False)),
        loss_forward_mappings=dict(
            loss_adv=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))),
    student_iter=student_iter,
    generator_iter=1)

train_dataloader = dict(
    batch_size=128,
    dataset=dict(latent_dim=latent_dim, num_classes=10,
                 num_draws=student_iter + 1))

optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='Adam', lr=2e-3)),
    generator=dict(optimizer=dict(type='Adam', lr=2e-3)))
param_scheduler = dict(
    architecture=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0),
    generator=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0))
train_cfg = dict(max_iters=80000, val_interval=1000)
