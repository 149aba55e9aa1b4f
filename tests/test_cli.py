"""The command line: help for every command, the classify contract, labels, OPML."""

import json

import click
import pytest
from click.testing import CliRunner

from flows.cli import main

CONTRACT_KEYS = {"id", "relevant", "score", "partners", "topics", "lang"}


def walk(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from walk(command, f"{prefix}{name} ")


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "atlaswatch.toml"
    config.write_text(
        '[storage]\npath = "atlaswatch.db"\n[[feeds]]\nurl = "https://news.example/rss"\nname = "News"\n'
    )
    monkeypatch.setenv("ATLASWATCH_CONFIG", str(config))
    return CliRunner()


def test_every_command_has_help():
    commands = dict(walk(main))
    assert {
        "run",
        "poll",
        "digest",
        "demo",
        "serve",
        "classify",
        "retrain",
        "feeds",
        "status",
        "evaluate",
        "label",
        "ui",
        "feeds import-opml",
        "feeds export-opml",
    } <= set(commands)
    for name, command in commands.items():
        assert command.help and len(command.help) > 20, f"`atlaswatch {name}` lacks help text"
        result = CliRunner().invoke(main, [*name.split(), "--help"])
        assert result.exit_code == 0, result.output


def test_classify_contract(runner):
    lines = [
        {
            "id": "a",
            "title": "Morocco and the United States sign a defence cooperation roadmap",
            "text": "Rabat and Washington signed a ten-year roadmap for military cooperation, the Pentagon said.",
        },
        {
            "id": 7,
            "text": "Le Raja de Casablanca a battu le Wydad 2-1 dans le derby.",
            "lang": "fr",
        },
        {"text": ""},
    ]
    stdin = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    result = runner.invoke(main, ["classify"], input=stdin)
    assert result.exit_code == 0, result.output
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in outputs] == ["a", 7, None]
    for output in outputs:
        assert set(output) == CONTRACT_KEYS
        assert isinstance(output["relevant"], bool) and 0.0 <= output["score"] <= 1.0
        assert all(isinstance(code, str) and code != "MA" for code in output["partners"])
    assert outputs[0]["relevant"] and "US" in outputs[0]["partners"] and outputs[0]["lang"] == "en"
    assert (
        not outputs[1]["relevant"] and outputs[1]["partners"] == [] and outputs[1]["lang"] == "fr"
    )
    assert outputs[2] == {
        "id": None,
        "relevant": False,
        "score": 0.0,
        "partners": [],
        "topics": [],
        "lang": "und",
    }


def test_classify_reads_a_file_and_explains(runner, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps(
            {
                "id": "x",
                "text": "Moroccan and French special forces trained together in Ben Guerir "
                "during the Chebec exercise.",
            }
        )
        + "\n"
    )
    result = runner.invoke(main, ["classify", str(source), "--explain"])
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert output["evidence"] and output["model_version"]


@pytest.mark.parametrize(
    "bad", ["not json\n", '{"title": "no text"}\n', "[1, 2]\n", '{"text": 5}\n']
)
def test_classify_bad_input_goes_to_stderr_with_nonzero_exit(runner, bad):
    result = runner.invoke(main, ["classify"], input='{"text": "fine"}\n' + bad)
    assert result.exit_code != 0
    assert result.stdout == ""
    assert "line 2" in result.stderr


def test_label_validates_and_counts(runner, tmp_path):
    from datetime import UTC, datetime

    from storage import open_database, transaction
    from storage.articles import insert_articles

    db = open_database(tmp_path / "atlaswatch.db")
    with transaction(db):
        insert_articles(
            db,
            [
                {
                    "id": "abc",
                    "url": "https://x.example/1",
                    "title": "T",
                    "text": "Body",
                    "fetched_at": datetime.now(UTC).isoformat(),
                }
            ],
        )
    bad = runner.invoke(
        main, ["label", "abc", "--relevant", "--partner", "MA", "--topic", "exercise"]
    )
    assert bad.exit_code != 0 and "never a partner" in bad.output
    unknown = runner.invoke(
        main, ["label", "abc", "--relevant", "--partner", "US", "--topic", "football"]
    )
    assert unknown.exit_code != 0 and "unknown topic" in unknown.output
    missing = runner.invoke(main, ["label", "nope", "--not-relevant"])
    assert missing.exit_code != 0 and "no stored article" in missing.output
    good = runner.invoke(
        main, ["label", "abc", "--relevant", "--partner", "us", "--topic", "exercise"]
    )
    assert good.exit_code == 0 and "1 label" in good.output


def test_opml_round_trip_and_feed_list(runner, tmp_path):
    opml = tmp_path / "in.opml"
    opml.write_text("""<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>
      <outline text="Defence"><outline text="Army &amp; Co" type="rss" xmlUrl="https://army.example/feed"/></outline>
      <outline text="Dup" xmlUrl="https://army.example/feed"/></body></opml>""")
    result = runner.invoke(main, ["feeds", "import-opml", str(opml)])
    assert result.exit_code == 0 and "1 feed(s)" in result.output and "1 new" in result.output
    exported = runner.invoke(main, ["feeds", "export-opml"])
    assert (
        'xmlUrl="https://army.example/feed"' in exported.output
        and 'text="Army &amp; Co"' in exported.output
    )
    assert 'xmlUrl="https://news.example/rss"' in exported.output
    listing = runner.invoke(main, ["feeds"])
    assert "Army & Co" in listing.output and "never" in listing.output


def test_opml_with_bad_urls_or_entities_is_refused(runner, tmp_path):
    evil = tmp_path / "evil.opml"
    evil.write_text(
        '<opml version="2.0"><body><outline xmlUrl="file:///etc/passwd"/></body></opml>'
    )
    result = runner.invoke(main, ["feeds", "import-opml", str(evil)])
    assert result.exit_code != 0 and "only http and https" in result.output
    bomb = tmp_path / "bomb.opml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE o [<!ENTITY a "aaaa">]><opml><body/></opml>')
    assert runner.invoke(main, ["feeds", "import-opml", str(bomb)]).exit_code != 0


def test_status_and_config_errors(runner, tmp_path, monkeypatch):
    result = runner.invoke(main, ["status"])
    assert result.exit_code == 0 and "Articles: 0 stored" in result.output
    (tmp_path / "broken.toml").write_text("[storage\n")
    broken = runner.invoke(main, ["--config", str(tmp_path / "broken.toml"), "status"])
    assert broken.exit_code != 0 and "not valid TOML" in broken.output
