# Teacher recipe of the DFKD papers: SGD lr 0.1, momentum 0.9, weight decay
# 5e-4, 200 epochs, batch 128 (the dataset configs), the learning rate
# annealed to 0 by a per-epoch cosine. The references vary around it: CMI /
# Fast / NAYER's train_scratch.py use batch 256 and weight decay 1e-4 (Fast)
# or 5e-4 (NAYER); DFAD's train_teacher.py batch 128 with a step decay.
# Epoch-based mmengine loops, validation after every epoch (the reference
# scripts keep the best epoch; the last one is kept as well).
max_epochs = 200
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='CosineAnnealingLR',
    T_max=max_epochs,
    eta_min=0.0,
    by_epoch=True,
    begin=0,
    end=max_epochs)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# the batch size lr 0.1 belongs to (for mmengine's optional LR scaling)
auto_scale_lr = dict(base_batch_size=128)
