"""Model files: skops (zip-deflated) plus a JSON metadata file beside it.

Loading never unpickles anything. A file is refused, each time with its own error and a
message saying what to do, when it is not a skops archive (a pickle, say), when its
metadata file is missing, when its SHA-256 differs from the recorded one, when it was
written by another scikit-learn version, or when it holds a type outside the pinned list
below. Only then is it loaded, trusting exactly the pinned types it contains.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import sklearn
import skops
import skops.io as sio

from classifiers.context import FEATURE_SCHEMA
from classifiers.model import AtlasClassifier

MODELS_DIR = Path(__file__).parent / "models"
BUNDLED_MODEL = MODELS_DIR / "atlaswatch-classifier.skops"
RETRAIN_HINT = (
    "run `atlaswatch retrain` to build a new model, or remove the [classifier] model "
    "setting to fall back on the bundled one"
)

# Every non-builtin type a model file may contain. skops asks about anything it does not
# trust by default; we compare its answer against this list and never trust more.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "classifiers.model.AtlasClassifier",
        "classifiers.ngrams.NgramTfidf",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


class ModelFileError(Exception):
    """A model file cannot be used; the message says why and what to do."""


class ModelNotFoundError(ModelFileError):
    """There is no model file at the given path."""


class NotSkopsFileError(ModelFileError):
    """The file is not a skops archive (for example a pickle): it is never loaded."""


class MissingMetadataError(ModelFileError):
    """The metadata file beside the model is missing or unreadable."""


class HashMismatchError(ModelFileError):
    """The model file's SHA-256 differs from the one recorded in its metadata."""


class VersionMismatchError(ModelFileError):
    """The model was written by another scikit-learn version than the installed one."""


class UntrustedTypesError(ModelFileError):
    """The model file contains types outside the pinned trusted list."""


class IncompatibleModelError(ModelFileError):
    """The model was fitted by a version of atlaswatch whose features differ from this one."""


class CorruptModelError(ModelFileError):
    """The archive passed every check but does not hold a fitted AtlasClassifier."""


def bundled_model_path() -> Path:
    """Path of the model shipped in ``classifiers/models/``."""
    return BUNDLED_MODEL


def metadata_path(path: str | Path) -> Path:
    """The metadata file of a model file: same name, ``.json`` suffix."""
    return Path(path).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(
    clf: AtlasClassifier,
    path: str | Path,
    *,
    metrics: dict | None = None,
    corpus_sha256: str | None = None,
) -> dict[str, Any]:
    """Write ``clf`` to ``path`` (skops, zip-deflated) and its metadata beside it.

    ``metrics`` are the headline held-out figures (default: the cross-validated figures
    from training, under a key that says so); ``corpus_sha256`` identifies the bundled
    corpus the model was trained from (default: the current one).
    """
    if not isinstance(clf, AtlasClassifier) or not hasattr(clf, "version_"):
        raise ValueError("save_model needs a fitted AtlasClassifier")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = sio.dumps(clf, compression=zipfile.ZIP_DEFLATED)
    contained = sorted(sio.get_untrusted_types(data=data))
    unpinned = sorted(set(contained) - TRUSTED_TYPES)
    if unpinned:  # a developer added a part: pin its type on purpose, not by accident
        raise UntrustedTypesError(
            f"refusing to save: the model holds types not in TRUSTED_TYPES: {unpinned}; "
            "add them to classifiers/modelfile.py after checking they are safe to load"
        )
    if corpus_sha256 is None:
        from classifiers.training import corpus_sha256 as current_corpus_sha256

        corpus_sha256 = current_corpus_sha256()
    _write_atomically(path, data)
    metadata = {
        "format": "skops",
        "version": clf.version_,
        "sha256": hashlib.sha256(data).hexdigest(),
        "sklearn_version": sklearn.__version__,
        "skops_version": skops.__version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "corpus_sha256": corpus_sha256,
        "n_train": int(clf.n_train_),
        "metrics": metrics if metrics is not None else {"cross_validated": clf.cv_scores_},
        "trusted_types": contained,
    }
    text = json.dumps(metadata, indent=1, sort_keys=True, default=float) + "\n"
    _write_atomically(metadata_path(path), text.encode("utf-8"))
    return metadata


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a model file; raises :class:`MissingMetadataError`."""
    meta = metadata_path(path)
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MissingMetadataError(
            f"model {path} has no metadata file {meta.name} beside it, so its hash and "
            f"scikit-learn version cannot be checked; {RETRAIN_HINT}"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise MissingMetadataError(
            f"metadata file {meta} is unreadable ({exc}); {RETRAIN_HINT}"
        ) from exc
    if not isinstance(data, dict) or not {"sha256", "sklearn_version"} <= data.keys():
        raise MissingMetadataError(
            f"metadata file {meta} lacks sha256 or sklearn_version; {RETRAIN_HINT}"
        )
    return data


def _check_format(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head == b"PK\x03\x04" and zipfile.is_zipfile(path):
        return
    kind = "a pickle" if head[:1] == b"\x80" else "not a skops archive"
    raise NotSkopsFileError(
        f"refusing to load {path}: it is {kind}, and atlaswatch only loads skops files "
        f"(unpickling can run arbitrary code); {RETRAIN_HINT}"
    )


def _check_hash(path: Path, metadata: dict[str, Any]) -> None:
    actual = file_sha256(path)
    if actual != metadata["sha256"]:
        raise HashMismatchError(
            f"refusing to load {path}: its SHA-256 is {actual[:12]}… but its metadata "
            f"records {str(metadata['sha256'])[:12]}…, so the file was changed or damaged "
            f"after it was written; {RETRAIN_HINT}"
        )


def _check_sklearn_version(path: Path, metadata: dict[str, Any]) -> None:
    if metadata["sklearn_version"] != sklearn.__version__:
        raise VersionMismatchError(
            f"refusing to load {path}: it was written with scikit-learn "
            f"{metadata['sklearn_version']} and {sklearn.__version__} is installed, and "
            f"fitted models are not portable across versions; {RETRAIN_HINT} with this "
            "installation"
        )


def _check_types(path: Path) -> list[str]:
    try:
        contained = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises several kinds on a damaged archive
        raise CorruptModelError(f"cannot read {path} as skops ({exc}); {RETRAIN_HINT}") from exc
    unpinned = sorted(set(contained) - TRUSTED_TYPES)
    if unpinned:
        raise UntrustedTypesError(
            f"refusing to load {path}: it contains types outside atlaswatch's trusted list: "
            f"{', '.join(unpinned)}; only use model files written by atlaswatch itself; "
            f"{RETRAIN_HINT}"
        )
    return list(contained)


def load_model(path: str | Path | None = None) -> AtlasClassifier:
    """Load a fitted :class:`AtlasClassifier` (None: the bundled model), after the checks
    in the module docstring; raises a :class:`ModelFileError` subclass otherwise."""
    path = Path(path) if path is not None else bundled_model_path()
    if not path.is_file():
        hint = (
            "reinstall atlaswatch or rebuild it with `python -m classifiers.build`"
            if path == bundled_model_path()
            else RETRAIN_HINT
        )
        raise ModelNotFoundError(f"no model file at {path}; {hint}")
    _check_format(path)
    metadata = read_metadata(path)
    _check_hash(path, metadata)
    _check_sklearn_version(path, metadata)
    trusted = _check_types(path)
    try:
        clf = sio.load(path, trusted=trusted)
    except Exception as exc:
        raise CorruptModelError(f"cannot load {path} ({exc}); {RETRAIN_HINT}") from exc
    if not isinstance(clf, AtlasClassifier) or not hasattr(clf, "version_"):
        raise CorruptModelError(f"{path} does not hold a fitted AtlasClassifier; {RETRAIN_HINT}")
    if getattr(clf, "feature_schema_", None) != FEATURE_SCHEMA:
        raise IncompatibleModelError(
            f"refusing to use {path}: it was fitted by another version of atlaswatch whose "
            f"classifier features differ from this one's; {RETRAIN_HINT}"
        )
    return clf
