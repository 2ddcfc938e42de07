"""Why is a region uncertain? Per-modality attribution, its faithfulness, and whole-pipeline effects.

:mod:`.targets` picks the region, :mod:`.crop` defines the score every map explains,
:mod:`.gradient` (Grad-CAM) and :mod:`.intervention` (occlusion) give the two kinds of evidence,
:mod:`.fusion` combines them, :mod:`.faithfulness` measures each map, :mod:`.pipeline_effects`
re-runs the model per modality, :mod:`.explanation` puts it together and :mod:`.files` writes it.
"""
