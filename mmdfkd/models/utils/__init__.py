from .gaussian_mixture import GaussianMixture1D
from .model_utils import (build_classifier, frozen_parameters, module_mode,
                          unwrap_model)

__all__ = [
    'GaussianMixture1D', 'build_classifier', 'frozen_parameters',
    'module_mode', 'unwrap_model'
]
