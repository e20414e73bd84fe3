# CuDFKD (Li et al., arXiv 2208.13648) on CIFAR-10, WRN-40-2 -> WRN-40-1, with
# the recipe of the official code (../_base_/algorithms/cudfkd.py) and the
# settings of the code's script for this pair
# (scripts/cudfkd/cudfkd_cifar10_wrn402_wrn161.sh, which trains WRN-40-1
# despite its name). Settings: batch 1024, 250 epochs of 40 iterations (1
# generator step + 10 student steps), KD distance KL, T 20, lambda_0 2.0, alpha
# 0.0001 per student step, a constant adversarial weight 1. The script also
# passes --memory: every round's batch joins an image pool and the student
# trains on crop/flip views of the pool, not on fresh generator batches; here a
# reservoir bank of 409,600 images (10 epochs' worth, a uniform sample of every
# batch made, as uniform sampling of the code's unbounded pool) in float16 disk
# shards under <work dir>/memory_bank; one latent draw per iteration (the
# student samples the bank). Reported: 93.18 (AdaDFKD README). Validation every
# epoch (the code reports the best epoch).
_base_ = [
    '../_base_/algorithms/cudfkd.py',
    '../_base_/data_free_cifar10.py',
    '../_base_/models/pairs/cifar10_wrn40_2_wrn40_1.py',
]

epochs = 250
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
        distance='kl'))),
    loss_weight_schedules=dict(
        loss_adv=dict(start=1.0, slope=0.0, begin=0, end=0)),
    memory_bank=dict(
        type='SyntheticMemoryBank',
        capacity=10 * 40 * 1024,
        policy='reservoir',
        dtype='float16',
        storage='disk',
        storage_dir='{work_dir}/memory_bank'))

train_dataloader = dict(
    batch_size=1024, dataset=dict(latent_dim=512, num_draws=1))
train_cfg = dict(max_iters=epochs * 40, val_interval=40)
default_hooks = dict(checkpoint=dict(interval=400))
auto_scale_lr = dict(base_batch_size=1024)
