from .lenet import DFKDLeNet5

__all__ = ['DFKDLeNet5']
from .mobilenet_v2_cifar import MobileNetV2_CIFAR  # noqa: E402
from .resnet_cifar_notes import dfkd_resnet_cifar_backbone  # noqa: E402
from .vgg_cifar import VGG_CIFAR  # noqa: E402
from .wide_resnet_cifar import WideResNet_CIFAR  # noqa: E402

__all__ += [
    'MobileNetV2_CIFAR', 'VGG_CIFAR', 'WideResNet_CIFAR',
    'dfkd_resnet_cifar_backbone'
]
