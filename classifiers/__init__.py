"""atlaswatch's classifier: relevance, partners and topics of news on Morocco's defence
and security cooperation, in English, French, Arabic and Spanish.

    >>> clf = load_model()                      # the bundled model
    >>> clf.classify([{"text": "...", "title": "..."}], explain=True)

Each result: ``relevant`` (bool), ``score`` (0..1), ``partners`` (codes, never MA),
``topics``, ``lang``, ``model_version`` and, with ``explain=True``, ``evidence``: for every
tag the supporting sentence and the features that weighed most. Empty text is not relevant
with score 0 and language ``und``; long text is cut to a bounded length; partners and
topics are empty when a piece is not relevant.
"""

from classifiers.evaluation import evaluate, report_markdown, write_report
from classifiers.model import TOPICS, AtlasClassifier
from classifiers.modelfile import (
    CorruptModelError,
    HashMismatchError,
    IncompatibleModelError,
    MissingMetadataError,
    ModelFileError,
    ModelNotFoundError,
    NotSkopsFileError,
    UntrustedTypesError,
    VersionMismatchError,
    bundled_model_path,
    load_model,
    save_model,
)
from classifiers.text import detect_language
from classifiers.training import load_corpus, train

__all__ = [
    "TOPICS",
    "AtlasClassifier",
    "CorruptModelError",
    "HashMismatchError",
    "IncompatibleModelError",
    "MissingMetadataError",
    "ModelFileError",
    "ModelNotFoundError",
    "NotSkopsFileError",
    "UntrustedTypesError",
    "VersionMismatchError",
    "bundled_model_path",
    "detect_language",
    "evaluate",
    "load_corpus",
    "load_model",
    "report_markdown",
    "save_model",
    "train",
    "write_report",
]
