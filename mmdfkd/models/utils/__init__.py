from .gaussian_mixture import GaussianMixture1D
from .loss_weight_curriculum import LinearWeightCurriculum
from .model_utils import (build_classifier, frozen_parameters, module_mode,
                          unwrap_model)
from .self_paced_weight import SelfPacedWeight

__all__ = [
    'GaussianMixture1D', 'LinearWeightCurriculum', 'SelfPacedWeight',
    'build_classifier', 'frozen_parameters', 'module_mode', 'unwrap_model'
]
