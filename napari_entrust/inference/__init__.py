"""Running the model on one case: the path from a loaded case to every output map.

:mod:`.normalize` and :mod:`.slices` give the model's input on its grid; :mod:`.encoding` runs
the encoders and EnFuse once per slice; :mod:`.roi` says where hypotheses are drawn;
:mod:`.hypotheses` draws them with the TrustMap statistics; :mod:`.assembly` brings everything
back to the case grid as a :class:`.prediction.Prediction`. :mod:`.engine` runs these in order;
:mod:`.validity` checks the input against the training data; :mod:`.device` and
:mod:`.distributed` say where it runs.
"""
