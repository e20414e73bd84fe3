from .model_utils import (build_classifier, frozen_parameters, module_mode,
                          unwrap_model)

__all__ = [
    'build_classifier', 'frozen_parameters', 'module_mode', 'unwrap_model'
]
