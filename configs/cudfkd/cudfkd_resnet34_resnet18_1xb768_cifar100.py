# CuDFKD (Li et al., arXiv 2208.13648) on CIFAR-100, ResNet-34 -> ResNet-18,
# with the recipe of the official code (../_base_/algorithms/cudfkd.py) and the
# settings of the code's script for this pair
# (scripts/cudfkd/cudfkd_cifar100_resnet34_resnet18.sh). Settings: batch 768,
# 300 epochs of 40 iterations (1 generator step + 10 student steps), KD
# distance L1, T 5, lambda_0 1.0, alpha 2e-05 per student step, a constant
# adversarial weight 1. The script also passes --memory: every round's batch
# joins an image pool and the student trains on crop/flip views of the pool,
# not on fresh generator batches; here a reservoir bank of 307,200 images (10
# epochs' worth, a uniform sample of every batch made, as uniform sampling of
# the code's unbounded pool) in float16 disk shards under <work
# dir>/memory_bank. Reported: 75.87 (AdaDFKD README). Validation every epoch
# (the code reports the best epoch).
_base_ = [
    '../_base_/algorithms/cudfkd.py',
    '../_base_/data_free_cifar100.py',
    '../_base_/models/pairs/cifar100_resnet34_resnet18.py',
]

epochs = 300
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    architecture={{_base_.student}},
    teachers=dict(teacher={{_base_.teacher}}),
    generator=dict(
        img_size=32,
        out_channels=3,
        output_normalization=dict(
            mean={{_base_.data_preprocessor.mean}},
            std={{_base_.data_preprocessor.std}})),
    distiller=dict(distill_losses=dict(loss_kd=dict(
        tau=5.0,
        self_paced=dict(lambda_0=1.0, alpha=2e-05)))),
    generator_distiller=dict(distill_losses=dict(
        loss_balance=dict(tau=5.0))),
    loss_weight_schedules=dict(
        loss_adv=dict(start=1.0, slope=0.0, begin=0, end=0)),
    memory_bank=dict(
        type='SyntheticMemoryBank',
        capacity=10 * 40 * 768,
        policy='reservoir',
        dtype='float16',
        storage='disk',
        storage_dir='{work_dir}/memory_bank'))

train_dataloader = dict(
    batch_size=768, dataset=dict(latent_dim=512, num_draws=1))
train_cfg = dict(max_iters=epochs * 40, val_interval=40)
default_hooks = dict(checkpoint=dict(interval=400))
auto_scale_lr = dict(base_batch_size=768)
