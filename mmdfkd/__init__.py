"""mmdfkd: data-free knowledge distillation on the OpenMMLab stack."""
from .version import __version__

__all__ = ['__version__']
