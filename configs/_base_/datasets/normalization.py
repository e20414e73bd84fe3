# The data preprocessor of every dataset: the only place where the
# normalisation constants live. Every dataset config inherits this file and
# picks its entry, e.g.
#   data_preprocessor = {{_base_.cifar10_data_preprocessor}}
# The whole table is in every chain that reads one dataset, so a CIFAR-100
# config that inherits its CIFAR-10 sibling finds the CIFAR-100 entry too
# (mmengine forbids the same key in two bases, so it cannot inherit this file
# a second time through cifar100_eval.py).
#
# mmpretrain's ClsDataPreprocessor works on 0-255 pixels: mean and std below
# are the usual 0-1 values times 255.

# CIFAR-10: mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010), the
# constants of mmpretrain and of the DFKD repositories (DAFL, CMI, Fast,
# NAYER).
cifar10_data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=10,
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=False)  # mmpretrain's CIFAR datasets already yield RGB arrays

# CIFAR-100: mmpretrain's mean (0.50707, 0.48655, 0.44092) and std (0.26733,
# 0.25644, 0.27615). The CMI/Fast/NAYER code rounds them to (0.5071, 0.4867,
# 0.4408) and (0.2675, 0.2565, 0.2761): at most 0.00017 apart, under 0.1 % of
# a std.
cifar100_data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=100,
    mean=[129.304, 124.070, 112.434],
    std=[68.170, 65.392, 70.418],
    to_rgb=False)

# Tiny-ImageNet (64x64, 200 classes): mean = std = 0.5 per channel, as in
# NAYER, CPNet and AdaDFKD. Its JPEGs are decoded by OpenCV (BGR), hence
# to_rgb=True: the reference teachers were trained on RGB tensors.
tinyimagenet_data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=200,
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=True)

# Fashion-MNIST (grey): mean 0.2860, std 0.3530 of the training set.
fashionmnist_data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=10,
    mean=[72.94],
    std=[90.0],
    to_rgb=False)
