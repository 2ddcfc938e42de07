"""Reading cases and writing files: where every volume enters and every output leaves.

The path of one volume: :mod:`.case_files` says which file holds which modality, :mod:`.nifti`
reads it, :mod:`.loader` checks it, reorders it to RAS+ (:mod:`.geometry`) and resamples it onto
the reference grid, giving a :class:`.case.Case`. Labels are translated by :mod:`.labels`;
modality names by :mod:`.modalities`. :mod:`.files` writes anything atomically.
"""
