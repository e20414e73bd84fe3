from .lenet import DFKDLeNet5

__all__ = ['DFKDLeNet5']
