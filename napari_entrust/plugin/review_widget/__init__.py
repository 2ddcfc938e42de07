"""The "Review uncertainty" dock widget, one module per role: regions, edits, re-sample, explain, save.

:mod:`.session` holds what the panels share (the last run's layers, the review state, the regions);
:mod:`.widget` puts the panels together.
"""
