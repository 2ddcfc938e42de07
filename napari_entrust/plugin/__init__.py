"""The napari plugin: the only package that imports napari or Qt; a thin layer over the library.

napari's contributions (``napari.yaml``): :mod:`.reader`, :mod:`.writer`, :mod:`.sample_data`, and
the two dock widgets, :mod:`.run_widget` and :mod:`.review_widget`. Layers and cases meet in
:mod:`.layer_data` (case / prediction → layer tuples), :mod:`.layer_input` (layers → case) and
:mod:`.layer_updates` (results updated in place by name); :mod:`.worker` runs the library's
generators in a thread with progress and Cancel.
"""
