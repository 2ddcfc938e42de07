"""napari-entrust: multimodal brain-tumour segmentation that shows where it is unsure, and why."""

__version__ = "0.1.0"
