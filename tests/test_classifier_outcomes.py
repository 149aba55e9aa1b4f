"""Defined outcomes of classify() on awkward input, and the shape of its results."""

from __future__ import annotations

import time

import pytest

from classifiers import AtlasClassifier, detect_language, load_model

KEYS = {"relevant", "score", "partners", "topics", "lang", "model_version"}

FR_VISIT = {
    "title": "Le chef d'état-major espagnol reçu à Rabat",
    "text": (
        "L'inspecteur général des Forces armées royales a reçu mardi à Rabat le chef "
        "d'état-major de la défense espagnol. Les deux responsables ont passé en revue la "
        "coopération militaire entre le Maroc et l'Espagne, notamment les exercices conjoints "
        "et la formation des officiers, et ont signé un plan de coopération pour l'année."
    ),
}
AR_DIACRITICS = {
    "title": "المَغْرِبُ وَالإِمَارَاتُ يُوَقِّعَانِ اتِّفَاقِيَّةَ تَعَاوُنٍ عَسْكَرِيٍّ",
    "text": (
        "وَقَّعَ المَغْرِبُ وَدَوْلَةُ الإمارات العربية المتحدة، اليوم بالرباط، اتفاقيةً للتعاون "
        "العسكري تشمل التكوين وتبادل الخبرات والتمارين المشتركة بين القوات المسلحة الملكية "
        "والقوات المسلحة الإماراتية، وذلك خلال زيارة رئيس أركان القوات المسلحة الإماراتية."
    ),
}
AR_PLAIN = {
    "title": "المغرب والامارات يوقعان اتفاقيه تعاون عسكري",
    "text": AR_DIACRITICS["text"].replace("الإمارات", "الامارات").replace("ـ", ""),
}


@pytest.fixture(scope="module")
def clf() -> AtlasClassifier:
    return load_model()


def test_results_keep_order_and_contract(clf: AtlasClassifier) -> None:
    docs = [FR_VISIT, {"text": "Le PSG s'impose 3-1 face à Lyon."}, AR_PLAIN]
    out = clf.classify(docs)
    assert len(out) == 3
    for r in out:
        assert set(r) == KEYS
        assert isinstance(r["relevant"], bool) and 0.0 <= r["score"] <= 1.0
        assert r["model_version"] == clf.version
        assert "MA" not in r["partners"]
        if not r["relevant"]:
            assert r["partners"] == [] and r["topics"] == []
    assert out[0]["relevant"] and out[0]["partners"] == ["ES"]
    assert not out[1]["relevant"]


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_empty_text_is_not_relevant_with_undetermined_language(
    clf: AtlasClassifier, text: str
) -> None:
    (r,) = clf.classify([{"text": text}])
    assert r == {
        "relevant": False,
        "score": 0.0,
        "partners": [],
        "topics": [],
        "lang": "und",
        "model_version": clf.version,
    }


def test_empty_text_with_explain_has_empty_evidence(clf: AtlasClassifier) -> None:
    (r,) = clf.classify([{"text": ""}], explain=True)
    assert r["evidence"] == {"relevant": {"sentence": "", "features": []}}


@pytest.mark.parametrize("word", ["Morocco", "المغرب", "armée", "NATO"])
def test_one_word_is_a_prediction_not_an_error(clf: AtlasClassifier, word: str) -> None:
    (r,) = clf.classify([{"text": word}], explain=True)
    assert set(r) == KEYS | {"evidence"} and not r["relevant"]


def test_relevant_pieces_always_have_a_partner_and_a_topic(clf: AtlasClassifier) -> None:
    docs = [{"text": "Morocco"}, {"title": "Morocco and France", "text": ""}, FR_VISIT, AR_PLAIN]
    for r in clf.classify(docs):
        assert bool(r["partners"]) == bool(r["topics"]) == r["relevant"]


def test_huge_text_is_truncated_and_bounded_in_time(clf: AtlasClassifier) -> None:
    body = (FR_VISIT["text"] + " ") * 1_000
    huge = {"title": FR_VISIT["title"], "text": body[:200_000]}
    assert len(huge["text"]) == 200_000
    started = time.perf_counter()
    (r,) = clf.classify([huge], explain=True)
    assert time.perf_counter() - started < 5.0
    assert r["relevant"] and r["partners"] == ["ES"]
    assert len(r["evidence"]["relevant"]["sentence"]) <= 400


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        (
            "Марокко и Испания подписали соглашение о военном сотрудничестве в Рабате; "
            "министры обсудили совместные учения и подготовку офицеров.",
            "ru",
        ),
        (
            "Marokko und Spanien haben in Rabat ein Abkommen über militärische Zusammenarbeit "
            "unterzeichnet; die Minister sprachen über gemeinsame Übungen.",
            "de",
        ),
    ],
)
def test_other_languages_get_a_prediction_and_their_code(
    clf: AtlasClassifier, text: str, lang: str
) -> None:
    (r,) = clf.classify([{"text": text}], explain=True)
    assert r["lang"] == lang
    assert set(r) == KEYS | {"evidence"} and 0.0 <= r["score"] <= 1.0


def test_given_language_is_kept(clf: AtlasClassifier) -> None:
    (r,) = clf.classify([{**FR_VISIT, "lang": "fr"}])
    assert r["lang"] == "fr"


def test_arabic_diacritics_and_alef_variants_read_alike(clf: AtlasClassifier) -> None:
    with_marks, plain = clf.classify([AR_DIACRITICS, AR_PLAIN])
    for r in (with_marks, plain):
        assert r["relevant"] and r["lang"] == "ar"
        assert r["partners"] == ["AE"]
        assert "agreement" in r["topics"]
    assert abs(with_marks["score"] - plain["score"]) < 0.1


def test_explain_gives_a_sentence_and_features_for_every_tag(clf: AtlasClassifier) -> None:
    (r,) = clf.classify([FR_VISIT], explain=True)
    evidence = r["evidence"]
    expected = (
        {"relevant"} | {f"partner:{p}" for p in r["partners"]} | {f"topic:{t}" for t in r["topics"]}
    )
    assert set(evidence) == expected
    for key, item in evidence.items():
        assert item["sentence"], key
        assert item["sentence"] in FR_VISIT["text"] + FR_VISIT["title"]
        assert item["features"] and all(isinstance(f, str) for f in item["features"]), key


def test_detect_language() -> None:
    assert detect_language("") == "und"
    assert detect_language("  12 345  ") == "und"
    assert detect_language(FR_VISIT["text"]) == "fr"
    assert detect_language(AR_PLAIN["text"]) == "ar"
    assert detect_language("Marruecos y España firman un acuerdo de defensa en Rabat.") == "es"
