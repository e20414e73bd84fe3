from .data_free_distillation import DataFreeDistillation
from .deep_inversion import DeepInversionDistillation

__all__ = ['DataFreeDistillation', 'DeepInversionDistillation']
