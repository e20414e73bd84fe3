from .activation_loss import ActivationLoss
from .agreement_masked_kl import AgreementMaskedKLDivergence
from .attention_transfer_loss import ATLoss
from .bn_statistics_loss import BNStatisticsLoss
from .coupled_feature_alignment_loss import CoupledFeatureAlignmentLoss
from .image_prior_losses import ImageL2NormLoss, TotalVariationLoss
from .in_batch_info_nce_loss import InBatchInfoNCELoss
from .information_entropy_loss import InformationEntropyLoss
from .instance_contrastive_loss import InstanceContrastiveLoss
from .js_divergence import JSDivergence
from .kl_divergence import KLDivergence
from .l1_loss import L1Loss
from .onehot_like_loss import OnehotLikeLoss
from .pseudo_inverse_feature_adversarial_loss import \
    PseudoInverseFeatureAdversarialLoss
from .reality_gap_loss import RealityGapLoss
from .relation_feature_projection import RelationFeatureProjection
from .relation_refinement_loss import RelationRefinementLoss
from .self_paced_distillation_loss import SelfPacedDistillationLoss
from .self_paced_info_nce_distillation_loss import \
    SelfPacedInfoNCEDistillationLoss

__all__ = [
    'ActivationLoss', 'AgreementMaskedKLDivergence', 'ATLoss',
    'BNStatisticsLoss', 'CoupledFeatureAlignmentLoss', 'ImageL2NormLoss',
    'InBatchInfoNCELoss', 'InformationEntropyLoss', 'InstanceContrastiveLoss',
    'JSDivergence', 'KLDivergence', 'L1Loss', 'OnehotLikeLoss',
    'PseudoInverseFeatureAdversarialLoss', 'RealityGapLoss',
    'RelationFeatureProjection', 'RelationRefinementLoss',
    'SelfPacedDistillationLoss', 'SelfPacedInfoNCEDistillationLoss',
    'TotalVariationLoss'
]
