"""Which series of a DICOM study is T1, T1ce, T2 and FLAIR: a site's own names first, then the
words of the series' description, then its sequence parameters.

Sites name series in their own ways ("AX T1 POST", "t1_mprage_tra_KM", "3D FLAIR SPACE"), so a
user can say which is which (``--series t1ce=POST`` or ``ENTRUST_SERIES="t1ce=POST;flair=7"``: a
series number, or words of its description). Series that are plainly something else (diffusion,
perfusion, susceptibility, derived maps) are never matched. When two series fit one modality the
acquisition is preferred to a reformat; if that does not settle it, the user is asked to name it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from ..errors import InputError
from .dicom_series import DicomSeries
from .modalities import DISPLAY_NAMES, MODALITIES, canonical_modality

#: the environment variable holding a site's series names, for the napari reader (no options there)
SERIES_ENV = "ENTRUST_SERIES"

_NOT_STRUCTURAL = re.compile(
    r"diffusion|\bdwi\b|\bdti\b|\badc\b|trace|tensor|\bb ?0\b|b ?1000|\bswi\b|swan|t2 ?\*|t2star|\bgre\b.*\bhemo|"
    r"perf|\bdsc\b|\bdce\b|\basl\b|\bmip\b|\bminip\b|\bfa\b|spectro|\bmrs\b|bold|fmri|resting",
)
_FLAIR = re.compile(r"flair|\bt2 ?f\b|dark ?fluid|\btirm\b|\bfl(air)?\b")
_CONTRAST = re.compile(r"post|\+ ?c\b|\bc ?\+|\bgd\b|gado|\bgad\b|contrast|\bce\b|\bt1 ?c\b|\bkm\b|enhanc|\bdotarem")
_T1 = re.compile(r"\bt1|mprage|mp ?rage|\bspgr\b|bravo|\btfl\b|\bvibe\b|\bt1 ?n\b")
_T2 = re.compile(r"\bt2")


def series_text(series: DicomSeries) -> str:
    """The words a series is known by: description, protocol and sequence name, lower case."""
    return _words(" ".join(str(series.attribute(a, "")) for a in ("SeriesDescription", "ProtocolName", "SequenceName")))


def _by_parameters(series: DicomSeries) -> str | None:
    """T1 / T1ce / T2 / FLAIR from repetition, echo and inversion times and a contrast agent, if clear."""
    try:
        tr, te = float(series.attribute("RepetitionTime", 0) or 0), float(series.attribute("EchoTime", 0) or 0)
        ti = float(series.attribute("InversionTime", 0) or 0)
    except (TypeError, ValueError):
        return None
    contrast = bool(str(series.attribute("ContrastBolusAgent", "")).strip())
    if ti >= 1500 and te >= 60:
        return "flair"
    if te >= 60 and tr >= 1500 and ti == 0:
        return "t2"
    if 0 < te <= 30 and (0 < tr <= 1000 or 500 <= ti <= 1300):
        return "t1ce" if contrast else "t1"
    return None


def guess_modality(series: DicomSeries) -> str | None:
    """The modality a series' description (then its parameters) says it is; None if it says nothing clear."""
    text = series_text(series)
    if _NOT_STRUCTURAL.search(text):
        return None
    if _T1.search(text):  # before FLAIR: "T1 FLAIR" is a T1-weighted sequence
        contrast = _CONTRAST.search(text) or str(series.attribute("ContrastBolusAgent", "")).strip()
        return "t1ce" if contrast else "t1"
    if _FLAIR.search(text):
        return "flair"
    if _T2.search(text):
        return "t2"
    return _by_parameters(series)


def parse_series_names(text: str | None) -> dict[str, str]:
    """``"t1ce=POST;flair=7"`` (``;`` or ``,`` between entries) -> ``{"t1ce": "POST", "flair": "7"}``."""
    names: dict[str, str] = {}
    for entry in re.split(r"[;,]", text or ""):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        if not sep or not value.strip():
            raise ValueError(f"series name {entry.strip()!r} is not MODALITY=NUMBER-OR-WORDS")
        mod = canonical_modality(key)
        if mod == "seg":
            raise ValueError("a label map cannot be read from a DICOM image series")
        names[mod] = value.strip()
    return names


def _words(text: str) -> str:
    """Lower case, separators as spaces: how a series' words and a user's are compared."""
    return re.sub(r"[_\-/.,()]+", " ", text.lower()).strip()


def _named(series: list[DicomSeries], wanted: str) -> list[DicomSeries]:
    """The series a user's name picks: its series number, or words of its description."""
    by_number = [s for s in series if s.number == wanted]
    return by_number or [s for s in series if _words(wanted) in series_text(s)]


def _one(candidates: list[DicomSeries]) -> list[DicomSeries]:
    """Of several candidates for one modality, the acquisition over reformats, if that settles it."""
    originals = [s for s in candidates if not s.derived]
    return originals if len(originals) == 1 else candidates


def match_modalities(
    series: list[DicomSeries], names: Mapping[str, str] | None = None, *, where: str = ""
) -> dict[str, DicomSeries]:
    """One series per modality; an :class:`InputError` naming the series when that cannot be said."""
    if names is None:
        try:
            names = parse_series_names(os.environ.get(SERIES_ENV))
        except ValueError as exc:
            raise InputError(SERIES_ENV, f"{exc} (the environment variable {SERIES_ENV})") from None
    found: dict[str, list[DicomSeries]] = {}
    for mod, wanted in names.items():
        found[mod] = _named(series, wanted)
        if not found[mod]:
            listed = "; ".join(s.label for s in series) or "none"
            raise InputError(where, f"no series is named {wanted!r} (asked for {DISPLAY_NAMES[mod]}); series: {listed}")
    taken = {id(s) for hits in found.values() for s in hits}
    for s in series:
        mod = guess_modality(s) if id(s) not in taken else None
        if mod is not None and mod not in names:
            found.setdefault(mod, []).append(s)
    problems = []
    for mod in MODALITIES:
        hits = _one(found.get(mod, []))
        if len(hits) > 1:
            problems.append(
                f"{len(hits)} series fit {DISPLAY_NAMES[mod]}: "
                + "; ".join(s.label for s in hits)
                + f"; name the one to use, e.g. --series {mod}={hits[0].number}"
            )
        found[mod] = hits
    missing = [m for m in MODALITIES if not found[m]]
    if missing:
        matched = {id(s) for m in MODALITIES for s in found[m]}
        others = "; ".join(s.label for s in series if id(s) not in matched) or "none"
        problems.insert(
            0,
            f"no series could be matched to {', '.join(DISPLAY_NAMES[m] for m in missing)}"
            f" (series not matched: {others}); name them, e.g. --series {missing[0]}=SERIES-NUMBER,"
            f" or set {SERIES_ENV}",
        )
    if problems:
        first, *rest = problems
        raise InputError(where, first, more=[(where, p) for p in rest])
    return {m: found[m][0] for m in MODALITIES}


def check_one_study(matched: dict[str, DicomSeries]) -> list[str]:
    """Refuse series of several patients or studies (their positions are not comparable); notes on
    series of one study with different frames of reference (positions may not line up)."""
    for attribute, what in (("PatientID", "patients"), ("StudyInstanceUID", "studies")):
        values = {str(s.attribute(attribute, "")) for s in matched.values()}
        if len(values) > 1:
            listed = "; ".join(f"{DISPLAY_NAMES[m]}: {s.label}" for m, s in matched.items())
            raise InputError(
                next(iter(matched.values())).folder,
                f"the series matched come from {len(values)} {what} ({listed}); open one study at a time",
            )
    frames = {str(s.attribute("FrameOfReferenceUID", "")) for s in matched.values()}
    if len(frames) > 1:
        return [
            f"the series have {len(frames)} frames of reference: they are placed by their patient positions,"
            " which line up only if the patient did not move between them"
        ]
    return []
