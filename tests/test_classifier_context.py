"""Context features: candidates that are exercise co-participants or mission hosts, and
documents about civil sectors."""

from __future__ import annotations

import pytest

from classifiers.context import (
    CANDIDATE_FEATURES,
    CIVIL,
    COOPERATION,
    DEFENCE,
    DOCUMENT_FEATURES,
    FEATURE_SCHEMA,
    PASSING,
    analyse,
    candidate_features,
    cue_flags,
    document_features,
)
from classifiers.gazetteer import Gazetteer
from classifiers.text import normalize, tokenize_document


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_file()


def features(gazetteer: Gazetteer, text: str) -> dict[str, dict[str, float]]:
    codes, rows = candidate_features(analyse(tokenize_document("", text), gazetteer))
    named = [dict(zip(CANDIDATE_FEATURES, row, strict=True)) for row in rows]
    return dict(zip(codes, named, strict=True))


def test_schema_names_every_candidate_feature() -> None:
    assert FEATURE_SCHEMA.startswith("5:")
    assert all(name in FEATURE_SCHEMA for name in CANDIDATE_FEATURES)


@pytest.mark.parametrize(
    "text",
    [
        "Moroccan troops took part in the exercise with units from Senegal, Tunisia and Italy.",
        "Des contingents tunisiens, sénégalais et italiens participent à l'exercice au Maroc.",
        "تشارك القوات المغربية في التمرين إلى جانب وحدات من السنغال وتونس وإيطاليا.",
    ],
)
def test_exercise_co_participants_are_one_enumeration(gazetteer: Gazetteer, text: str) -> None:
    found = features(gazetteer, text)
    assert set(found) == {"SN", "TN", "IT"}
    for row in found.values():
        assert row["list_size_log"] > 0  # two others in the same list
        assert row["exercise_sentence_share"] == 1.0
    assert max(row["participant_window_log"] for row in found.values()) > 0


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("Moroccan peacekeepers joined the UN mission in the Central African Republic.", "CF"),
        ("Les Casques bleus marocains de l'ONU en République centrafricaine.", "CF"),
        ("Cascos azules marroquíes de la ONU en la República Centroafricana.", "CF"),
        ("ضباط مغاربة يلتحقون ببعثة الأمم المتحدة في جنوب السودان", "SS"),
    ],
)
def test_a_mission_host_is_named_as_a_place(gazetteer: Gazetteer, text: str, host: str) -> None:
    assert features(gazetteer, text)[host]["after_place"] == 1.0


def test_enumerations_skip_articles_and_include_moroccos_side(gazetteer: Gazetteer) -> None:
    found = features(
        gazetteer, "Troops from Qatar, the United States, the United Kingdom and Morocco."
    )
    assert set(found) == {"QA", "US", "GB"}
    assert all(row["list_size_log"] > 0.6 and row["list_with_own"] for row in found.values())


def test_a_partner_named_with_is_not_a_place(gazetteer: Gazetteer) -> None:
    found = features(gazetteer, "Morocco and Spain signed a defence agreement on Monday.")
    assert found["ES"]["after_place"] == 0.0
    assert found["ES"]["list_with_own"] == 1.0


@pytest.mark.parametrize(
    ("title", "civil"),
    [
        ("Morocco and Mauritania renew fisheries cooperation agreement", True),
        ("Pêche artisanale : Rabat et Dakar signent un accord de coopération", True),
        ("Marruecos y España firman un acuerdo de cooperación universitaria", True),
        ("تجديد اتفاق التعاون في مجال الصيد البحري بين المغرب وموريتانيا", True),
        ("Morocco and Mauritania renew naval cooperation agreement", False),
    ],
)
def test_civil_sector_words_set_the_civil_density(
    gazetteer: Gazetteer, title: str, civil: bool
) -> None:
    row = document_features(analyse(tokenize_document(title, ""), gazetteer))
    assert (dict(zip(DOCUMENT_FEATURES, row, strict=True))["civil_density"] > 0) == civil


# Stems match word prefixes in every language, so a short one catches unrelated words:
# joint investigations are security cooperation, not investment; "saludó" is a greeting.
@pytest.mark.parametrize(
    ("word", "flag"),
    [
        ("investigation", CIVIL),
        ("investigators", CIVIL),
        ("investigación", CIVIL),
        ("investigadores", CIVIL),
        ("saludó", CIVIL),
        ("Ferrol", CIVIL),
        ("vocation", CIVIL),
        ("للتعليمات", CIVIL),
        ("بتعليمات", CIVIL),
        ("according", COOPERATION),
        ("firms", COOPERATION),
        ("supplémentaires", COOPERATION),
        ("وزارة", COOPERATION),
        ("التقييم", COOPERATION),
        ("البحرين", DEFENCE),
        ("critical", PASSING),
    ],
)
def test_stems_do_not_catch_unrelated_words(word: str, flag: int) -> None:
    assert not cue_flags(normalize(word)) & flag


@pytest.mark.parametrize(
    ("word", "flag"),
    [
        ("investment", CIVIL),
        ("investors", CIVIL),
        ("investissements", CIVIL),
        ("inversión", CIVIL),
        ("inversores", CIVIL),
        ("salud", CIVIL),
        ("ferry", CIVIL),
        ("ferroviaire", CIVIL),
        ("vocational", CIVIL),
        ("والتعليم", CIVIL),
        ("التعليمية", CIVIL),
        ("accord", COOPERATION),
        ("firmado", COOPERATION),
        ("supplied", COOPERATION),
        ("زار", COOPERATION),
        ("التقى", COOPERATION),
        ("البحرية", DEFENCE),
        ("البحري", DEFENCE),
        ("criticised", PASSING),
        ("críticas", PASSING),
    ],
)
def test_narrowed_stems_still_catch_their_words(word: str, flag: int) -> None:
    assert cue_flags(normalize(word)) & flag
