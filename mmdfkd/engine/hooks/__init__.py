from .synthetic_image_visualization_hook import SyntheticImageVisualizationHook

__all__ = ['SyntheticImageVisualizationHook']
