"""Model files: a round trip works; pickles, tampering, untrusted types, a missing metadata
file and another scikit-learn version are each refused with a message that says what to do."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest
import skops.io as sio

from classifiers import (
    AtlasClassifier,
    HashMismatchError,
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
from classifiers.modelfile import TRUSTED_TYPES, file_sha256, metadata_path

DOC = {
    "title": "Morocco and France hold Chebec naval drill",
    "text": "The Royal Moroccan Navy "
    "and the French Navy held the Chebec exercise off Tangier, the FAR said.",
}


class Payload:
    """A type no model file should contain."""

    def __init__(self) -> None:
        self.note = "not a model part"


@pytest.fixture(scope="module")
def model() -> AtlasClassifier:
    return load_model()


@pytest.fixture(scope="module")
def saved(model: AtlasClassifier, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "model.skops"
    save_model(model, path, metrics={"note": "test"})
    return path


@pytest.fixture
def copy(saved: Path, tmp_path: Path) -> Path:
    target = tmp_path / saved.name
    shutil.copy(saved, target)
    shutil.copy(metadata_path(saved), metadata_path(target))
    return target


def write_metadata(path: Path, **changes: object) -> None:
    meta = json.loads(metadata_path(path).read_text())
    meta.update(changes)
    metadata_path(path).write_text(json.dumps(meta))


def assert_says_what_to_do(error: ModelFileError) -> None:
    assert "atlaswatch retrain" in str(error)


def test_round_trip_and_metadata(model: AtlasClassifier, saved: Path) -> None:
    meta = json.loads(metadata_path(saved).read_text())
    assert meta["version"] == model.version
    assert meta["sha256"] == file_sha256(saved)
    assert set(meta) >= {
        "version",
        "sha256",
        "sklearn_version",
        "skops_version",
        "created_at",
        "corpus_sha256",
        "metrics",
        "trusted_types",
    }
    assert set(meta["trusted_types"]) <= TRUSTED_TYPES
    with zipfile.ZipFile(saved) as archive:  # compressed, as STACK-NOTES advises
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    loaded = load_model(saved)
    assert loaded.version == model.version
    assert loaded.classify([DOC], explain=True) == model.classify([DOC], explain=True)


def test_bundled_model_is_small_and_loads() -> None:
    path = bundled_model_path()
    assert path.stat().st_size < 10_000_000
    assert isinstance(load_model(), AtlasClassifier)


def test_pickle_is_refused(model: AtlasClassifier, copy: Path) -> None:
    copy.write_bytes(pickle.dumps(model))
    write_metadata(copy, sha256=file_sha256(copy))  # even with a matching hash
    with pytest.raises(NotSkopsFileError, match="pickle") as caught:
        load_model(copy)
    assert_says_what_to_do(caught.value)


def test_non_model_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    path.write_text("not a model")
    with pytest.raises(NotSkopsFileError, match="not a skops archive"):
        load_model(path)


def test_tampered_file_is_refused(copy: Path) -> None:
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(HashMismatchError, match="SHA-256") as caught:
        load_model(copy)
    assert_says_what_to_do(caught.value)


def test_untrusted_type_is_refused(model: AtlasClassifier, tmp_path: Path) -> None:
    model.payload_ = Payload()  # smuggled in, then written with a consistent metadata file
    try:
        data = sio.dumps(model, compression=zipfile.ZIP_DEFLATED)
    finally:
        del model.payload_
    path = tmp_path / "model.skops"
    path.write_bytes(data)
    shutil.copy(metadata_path(bundled_model_path()), metadata_path(path))
    write_metadata(path, sha256=file_sha256(path))
    with pytest.raises(UntrustedTypesError, match="Payload") as caught:
        load_model(path)
    assert_says_what_to_do(caught.value)


def test_save_refuses_to_write_untrusted_types(model: AtlasClassifier, tmp_path: Path) -> None:
    model.payload_ = Payload()
    try:
        with pytest.raises(UntrustedTypesError, match="TRUSTED_TYPES"):
            save_model(model, tmp_path / "model.skops")
    finally:
        del model.payload_
    assert not (tmp_path / "model.skops").exists()


def test_other_sklearn_version_is_refused(copy: Path) -> None:
    write_metadata(copy, sklearn_version="1.2.2")
    with pytest.raises(VersionMismatchError, match=r"1\.2\.2") as caught:
        load_model(copy)
    assert_says_what_to_do(caught.value)


def test_missing_metadata_is_refused(copy: Path) -> None:
    metadata_path(copy).unlink()
    with pytest.raises(MissingMetadataError, match="no metadata file") as caught:
        load_model(copy)
    assert_says_what_to_do(caught.value)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path / "absent.skops")


def test_errors_share_one_base_class() -> None:
    for error in (
        NotSkopsFileError,
        HashMismatchError,
        UntrustedTypesError,
        VersionMismatchError,
        MissingMetadataError,
        ModelNotFoundError,
    ):
        assert issubclass(error, ModelFileError)
