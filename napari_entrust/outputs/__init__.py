"""What a prediction leaves behind: its files, their names and styles, and where they came from.

:mod:`.catalog` is the one table of a prediction's outputs (file, napari layer, storage, style);
:mod:`.prediction_folder` writes and reads a prediction folder; :mod:`.provenance` records input
hashes, model and edits beside a saved mask.
"""
