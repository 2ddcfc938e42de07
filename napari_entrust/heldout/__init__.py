"""A second, independent case generator that no model trains on: the yardstick of generalisation.

It shares none of the training phantom's code for anatomy, lesion shapes or contrast:
:mod:`.anatomy` voxelises FreeSurfer's fsaverage5 surfaces (not the MNI volumes), :mod:`.lesions`
builds tumours from unions of ellipsoids in four families, :mod:`.contrast` renders 3 T tissue
parameters with other sequences and another imaging chain, :mod:`.events` places disagreement
events of other sizes (and misregisters any modality). :mod:`.case` writes a case as BraTS 2023
files on a 240 × 240 × 155, 1 mm, LPS grid, with its ground truth, as a held-out test set would be.
"""
