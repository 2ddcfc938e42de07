"""Training: phantom or labelled cases → random crops → the shared loop → a checkpoint.

:mod:`.cases` prepares cases on the model grid, :mod:`.crops` draws augmented crops, :mod:`.loop`
is the optimiser loop every model shares, :mod:`.backbone` and :mod:`.independence` are EnTrust's
losses, :mod:`.calibration` fits the TrustMap's head, :mod:`.pipeline` runs them in order.
"""
