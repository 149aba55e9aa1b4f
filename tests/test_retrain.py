"""Retraining through Prefect: analysts' labels in, a promoted model out, used by `classify`."""

import json
import os
import shutil
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from prefect.artifacts import Artifact

from classifiers.modelfile import bundled_model_path, metadata_path
from flows.cli import main
from flows.modelstore import cached_model
from storage import open_database
from storage.labels import add_label
from storage.registry import promoted_model

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_retrain_promotes_a_model_that_classify_then_uses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "atlaswatch.toml"
    config.write_text('[storage]\npath = "atlaswatch.db"\n[classifier]\nmodels_dir = "models"\n')
    monkeypatch.setenv("ATLASWATCH_CONFIG", str(config))
    db = open_database(tmp_path / "atlaswatch.db")
    now = datetime.now(UTC).isoformat()
    add_label(
        db,
        relevant=True,
        partners=["KR"],
        topics=["procurement"],
        at=now,
        lang="en",
        title="Seoul offers K9 howitzers to Rabat",
        text="South Korea's Hanwha Aerospace presented its K9 self-propelled howitzer to the Royal Armed "
        "Forces, with a delivery contract for Morocco under discussion in Seoul.",
    )
    add_label(
        db,
        relevant=False,
        partners=[],
        topics=[],
        at=now,
        lang="fr",
        title="Le Maroc et l'Espagne signent un accord sur le tourisme",
        text="Rabat et Madrid veulent attirer davantage de visiteurs grâce à une campagne commune.",
    )
    runner = CliRunner()
    result = runner.invoke(main, ["retrain", "--force"])
    assert result.exit_code == 0, result.output
    assert "promoted" in result.output and "(2 labels of yours)" in result.output
    row = promoted_model(db)
    assert row is not None and (tmp_path / "models").is_dir()
    version = row["version"]
    report = Artifact.get("model-report").data
    assert version in report and "analysts' labels" in report

    classified = runner.invoke(
        main,
        ["classify", "--explain"],
        input=json.dumps(
            {
                "id": 1,
                "text": "Morocco and the United States opened the African Lion exercise in Tan-Tan.",
            }
        )
        + "\n",
    )
    assert classified.exit_code == 0, classified.output
    assert json.loads(classified.stdout)["model_version"] == version
    status = runner.invoke(main, ["status"])
    assert version in status.output and "Last retrain" in status.output


def test_a_worker_keeps_its_model_until_the_file_changes(tmp_path):
    path = tmp_path / "model.skops"
    shutil.copyfile(bundled_model_path(), path)
    shutil.copyfile(metadata_path(bundled_model_path()), metadata_path(path))
    first = cached_model(path)
    assert cached_model(path) is first
    later = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(later, later))  # the file replaced in place, as a copy would
    assert cached_model(path) is not first
