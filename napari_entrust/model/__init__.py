"""The EnTrust model: EnFuse → SegDiff → TrustMap, and the checkpoints that hold it.

:mod:`.entrust_net` puts together one MONAI UNet per modality and :mod:`.enfuse` (modality
weights, consensus, specific and conflict features); :mod:`.denoiser` and :mod:`.segdiff` draw the
K hypotheses (DDIM, η, probing, inpainting); :mod:`.trustmap` turns them into calibrated
uncertainty. :mod:`.config` describes a model, :mod:`.checkpoint` saves and loads it.
"""
