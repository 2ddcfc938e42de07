"""The sample and test data: a brain-tumour phantom rendered from real anatomy with known conflict.

:func:`.phantom.make_phantom` builds a case: :mod:`.anatomy` (MNI templates) → :mod:`.lesion`
(tumour and conflict blobs at 1 mm) → :mod:`.render` (partial volume, MR contrasts, imaging
chain) → :mod:`.conflict` (footprints and raters); :mod:`.writing` saves it like a BraTS or MSD case.
"""
