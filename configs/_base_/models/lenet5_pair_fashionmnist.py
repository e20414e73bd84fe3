# The Fashion-MNIST pair of the CPU bench: LeNet-5 teacher (trained by
# configs/teachers/lenet5_fashionmnist.py) -> LeNet-5-half student.
lenet5_half_student = dict(
    cfg_path='mmdfkd::_base_/models/lenet5_half_fashionmnist.py')
lenet5_teacher = dict(
    build_cfg=dict(cfg_path='mmdfkd::_base_/models/lenet5_fashionmnist.py'),
    ckpt_path='checkpoints/lenet5_fashionmnist.pth')
