"""Reviewing predictions: the uncertain regions of one case, a reviewer's edits, and many cases ranked.

:mod:`.regions` finds and explains the uncertain regions, :mod:`.edits` records what a reviewer
decided, :mod:`.recovery` autosaves it, :mod:`.worklist` predicts a folder of cases and lists them
riskiest first.
"""
