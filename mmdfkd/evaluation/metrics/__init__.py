from .agreement import Agreement

__all__ = ['Agreement']
