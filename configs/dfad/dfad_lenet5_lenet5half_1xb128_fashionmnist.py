# DFAD (Fang et al., "Data-Free Adversarial Distillation", arXiv 1912.11006)
# on Fashion-MNIST, CPU-sized: LeNet-5 -> LeNet-5-half. Per iteration 5
# student steps minimise the L1 logit discrepancy on fresh generator batches,
# then 1 generator step maximises it (L1 with weight -1), as in the paper and
# MMRazor's recipe. CPU departures: generator hidden_channels 32 (not 128),
# batch 128 (not 256).
_base_ = ['../_base_/data_free_fashionmnist.py']

teacher_ckpt = 'checkpoints/lenet5_fashionmnist.pth'
latent_dim = 256
student_iter = 5

logit_recorders = dict(
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(
        logits=dict(type='ModuleOutputs', source='lenet5.head.fc')))
logit_mapping = dict(
    s_feature=dict(from_student=True, recorder='logits'),
    t_feature=dict(from_student=False, recorder='logits'))

model = dict(
    type='DataFreeDistillation',
    data_preprocessor={{_base_.data_preprocessor}},
    architecture=dict(cfg_path='mmdfkd::_base_/models/lenet5_half_fashionmnist.py'),
    teachers=dict(
        lenet5=dict(
            build_cfg=dict(cfg_path='mmdfkd::_base_/models/lenet5_fashionmnist.py'),
            ckpt_path=teacher_ckpt)),
    # DFAD's GeneratorA: Tanh then a non-affine BN standardises the images
    generator=dict(
        type='DAFLGenerator',
        img_size=32,
        latent_dim=latent_dim,
        hidden_channels=32,
        out_channels=1,
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
    batch_size=128,
    dataset=dict(latent_dim=latent_dim, num_classes=10,
                 num_draws=student_iter + 1))

# DFAD: student SGD lr 0.1, momentum 0.9, wd 5e-4; generator Adam lr 1e-3
optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4)),
    generator=dict(optimizer=dict(type='Adam', lr=1e-3)))

# about 15 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=1200, val_interval=200)
