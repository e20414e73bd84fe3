from .activation_loss import ActivationLoss
from .attention_transfer_loss import ATLoss
from .bn_statistics_loss import BNStatisticsLoss
from .image_prior_losses import ImageL2NormLoss, TotalVariationLoss
from .information_entropy_loss import InformationEntropyLoss
from .js_divergence import JSDivergence
from .kl_divergence import KLDivergence
from .l1_loss import L1Loss
from .onehot_like_loss import OnehotLikeLoss

__all__ = [
    'ActivationLoss', 'ATLoss', 'BNStatisticsLoss', 'ImageL2NormLoss',
    'TotalVariationLoss', 'InformationEntropyLoss', 'JSDivergence',
    'KLDivergence', 'L1Loss', 'OnehotLikeLoss'
]
