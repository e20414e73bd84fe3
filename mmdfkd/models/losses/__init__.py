from .activation_loss import ActivationLoss
from .agreement_masked_kl import AgreementMaskedKLDivergence
from .attention_transfer_loss import ATLoss
from .bn_statistics_loss import BNStatisticsLoss
from .image_prior_losses import ImageL2NormLoss, TotalVariationLoss
from .information_entropy_loss import InformationEntropyLoss
from .instance_contrastive_loss import InstanceContrastiveLoss
from .js_divergence import JSDivergence
from .kl_divergence import KLDivergence
from .l1_loss import L1Loss
from .onehot_like_loss import OnehotLikeLoss
from .self_paced_distillation_loss import SelfPacedDistillationLoss

__all__ = [
    'ActivationLoss', 'AgreementMaskedKLDivergence', 'ATLoss',
    'BNStatisticsLoss', 'ImageL2NormLoss', 'TotalVariationLoss',
    'InformationEntropyLoss', 'InstanceContrastiveLoss', 'JSDivergence',
    'KLDivergence', 'L1Loss', 'OnehotLikeLoss', 'SelfPacedDistillationLoss'
]
