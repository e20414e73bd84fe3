# ZSKT (Micaelli & Storkey, "Zero-shot Knowledge Transfer via Adversarial
# Belief Matching", NeurIPS 2019) on Fashion-MNIST, CPU-sized. Per iteration
# 1 generator step maximises KL(p_T || p_S), then 10 student steps minimise
# KL(p_T || p_S) + 250 * attention transfer on the two convolutional stages.
_base_ = ['../_base_/data_free_fashionmnist.py']

teacher_ckpt = 'checkpoints/lenet5_fashionmnist.pth'
latent_dim = 100
student_iter = 10

model = dict(
    type='DataFreeDistillation',
    data_preprocessor={{_base_.data_preprocessor}},
    architecture=dict(cfg_path='mmdfkd::_base_/models/lenet5_half_fashionmnist.py'),
    teachers=dict(
        lenet5=dict(
            build_cfg=dict(cfg_path='mmdfkd::_base_/models/lenet5_fashionmnist.py'),
            ckpt_path=teacher_ckpt)),
    # ZSKT's generator: no Tanh, ends in an affine BN
    generator=dict(
        type='DAFLGenerator',
        img_size=32,
        latent_dim=latent_dim,
        hidden_channels=32,
        out_channels=1,
        bn_eps=1e-5,
        final_activation=None,
        final_norm='affine'),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc'),
            stage1=dict(type='ModuleOutputs', source='backbone.relu1'),
            stage2=dict(type='ModuleOutputs', source='backbone.relu2')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='lenet5.head.fc'),
            stage1=dict(type='ModuleOutputs', source='lenet5.backbone.relu1'),
            stage2=dict(type='ModuleOutputs', source='lenet5.backbone.relu2')),
        distill_losses=dict(
            loss_kl=dict(type='KLDivergence', tau=1.0),
            loss_at1=dict(type='ATLoss', loss_weight=250.0),
            loss_at2=dict(type='ATLoss', loss_weight=250.0)),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')),
            loss_at1=dict(
                s_feature=dict(from_student=True, recorder='stage1'),
                t_feature=dict(from_student=False, recorder='stage1')),
            loss_at2=dict(
                s_feature=dict(from_student=True, recorder='stage2'),
                t_feature=dict(from_student=False, recorder='stage2')))),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='lenet5.head.fc')),
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

# ZSKT: Adam for both networks, lr about 1e-3 (2e-3 student here), cosine
optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='Adam', lr=2e-3)),
    generator=dict(optimizer=dict(type='Adam', lr=1e-3)))
param_scheduler = dict(
    architecture=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0),
    generator=dict(type='CosineAnnealingLR', by_epoch=False, eta_min=0))

# about 15 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=1000, val_interval=200)
