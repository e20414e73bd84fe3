# DAFL (Chen et al., "Data-Free Learning of Student Networks", ICCV 2019)
# on Fashion-MNIST, CPU-sized: LeNet-5 teacher -> LeNet-5-half student.
# Generator loss: one-hot (1) + activation (0.1) + information entropy (5),
# the paper's MNIST weights; the student learns with KD on the same
# (detached) batch. Training reads no image: only latent noise.
_base_ = ['../_base_/data_free_fashionmnist.py']

teacher_ckpt = 'checkpoints/lenet5_fashionmnist.pth'
latent_dim = 100

model = dict(
    type='DataFreeDistillation',
    data_preprocessor={{_base_.data_preprocessor}},
    architecture=dict(cfg_path='mmdfkd::_base_/models/lenet5_half_fashionmnist.py'),
    teachers=dict(
        lenet5=dict(
            build_cfg=dict(cfg_path='mmdfkd::_base_/models/lenet5_fashionmnist.py'),
            ckpt_path=teacher_ckpt)),
    generator=dict(
        type='DAFLGenerator',
        img_size=32,
        latent_dim=latent_dim,
        hidden_channels=32,
        out_channels=1,
        bn_eps=0.8,
        final_activation='tanh',
        final_norm='non_affine'),
    generator_distiller=dict(
        type='ConfigurableDistiller',
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='lenet5.head.fc'),
            features=dict(type='ModuleInputs', source='lenet5.head.fc')),
        distill_losses=dict(
            loss_onehot=dict(type='OnehotLikeLoss', loss_weight=1.0),
            loss_activation=dict(type='ActivationLoss', loss_weight=0.1),
            loss_entropy=dict(type='InformationEntropyLoss', loss_weight=5.0)),
        loss_forward_mappings=dict(
            loss_onehot=dict(
                preds_T=dict(from_student=False, recorder='logits')),
            loss_activation=dict(
                feat_T=dict(from_student=False, recorder='features')),
            loss_entropy=dict(
                preds_T=dict(from_student=False, recorder='logits')))),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='lenet5.head.fc')),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=1.0)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))),
    generator_iter=1,
    student_iter=1,
    reuse_generator_batch=True)

train_dataloader = dict(
    batch_size=128,
    dataset=dict(latent_dim=latent_dim, num_classes=10, num_draws=1))

# DAFL's MNIST recipe: Adam for both, generator lr 0.2, student lr 2e-3
optim_wrapper = dict(
    constructor='SeparateOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='Adam', lr=2e-3)),
    generator=dict(optimizer=dict(type='Adam', lr=0.2)))

# about 15 CPU-minutes on one core of the reference machine
train_cfg = dict(max_iters=3000, val_interval=500)
