"""The multilingual gazetteer proposes candidates; the scorer is fair to unseen partners."""

from __future__ import annotations

import pytest

from classifiers import AtlasClassifier, load_corpus, load_model
from classifiers.gazetteer import Gazetteer, arabic_variants
from classifiers.text import fold, normalize, tokenize_document


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_file()


def codes(gazetteer: Gazetteer, text: str) -> list[str]:
    return [m.code for m in gazetteer.find_in_text(text)]


def test_arabic_normalisation() -> None:
    assert normalize("الإمارات") == normalize("الامارات") == normalize("الأمارات")
    assert normalize("المَغْرِبُ") == "المغرب"
    assert normalize("العسكريـــة") == normalize("العسكرية") == "العسكريه"  # tatweel, taa marbuta
    assert normalize("مصطفى") == normalize("مصطفي")  # alef maqsura


@pytest.mark.parametrize("text", ["الإمارات", "الامارات", "والإمارات", "بالإمارات", "الإِمَارَات"])
def test_arabic_forms_find_the_emirates(gazetteer: Gazetteer, text: str) -> None:
    assert codes(gazetteer, f"وقع المغرب اتفاقا مع {text}") == ["MA", "AE"]


def test_arabic_proclitics_are_stripped_only_for_matching() -> None:
    assert "المغرب" in arabic_variants("والمغرب")
    assert "الولايات" in arabic_variants("للولايات")
    assert "فرنسا" in arabic_variants("بفرنسا")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Les Émirats arabes unis et le Maroc", "AE"),
        ("Les Emirats arabes unis et le Maroc", "AE"),
        ("une frégate israélienne", "IL"),
        ("une frégate israelienne", "IL"),
        ("l'armée américaine", "US"),
        ("los militares estadounidenses", "US"),
        ("el ministro de Defensa español", "ES"),
        ("la marine sénégalaise", "SN"),
        ("l'exercice Khaan Quest en Mongolie", "MN"),
        ("les marines kényane et seychelloise", "SC"),
        ("تمرين متعدد الجنسيات بمنغوليا", "MN"),
        ("tropas nepalíes y afganas", "NP"),
    ],
)
def test_accents_and_demonyms(gazetteer: Gazetteer, text: str, code: str) -> None:
    assert code in codes(gazetteer, text)


def test_case_keeps_short_acronyms_apart_from_words(gazetteer: Gazetteer) -> None:
    assert "US" in codes(gazetteer, "US troops landed in Agadir")
    assert "US" not in codes(gazetteer, "Let us hope the talks go well")
    assert "UN" in codes(gazetteer, "Le chef de l'ONU et un diplomate")
    assert codes(gazetteer, "un diplomate") == []


def test_morocco_side_is_its_own_kind(gazetteer: Gazetteer) -> None:
    found = gazetteer.find_in_text("Les Forces armées royales et la Marine royale marocaine")
    assert {m.kind for m in found} == {"self"}
    assert gazetteer.candidates("Le Maroc et la France") == ["FR"]


def test_place_names_containing_a_country_are_not_that_country(gazetteer: Gazetteer) -> None:
    assert codes(gazetteer, "patrouille dans le golfe de Guinée") == []
    assert codes(gazetteer, "a port call in the Indian Ocean") == []
    # Spellings of one blocker differing only in case: the lenient one holds.
    assert codes(gazetteer, "manœuvres dans l'océan Indien") == []
    assert codes(gazetteer, "Océan Indien : une frégate en escale") == []
    assert codes(gazetteer, "patrullas en el océano Índico") == []


def test_digits_do_not_make_short_model_names_match(gazetteer: Gazetteer) -> None:
    assert codes(gazetteer, "Su hermano compró un F-16") == []


def test_tokens_keep_case_and_fold_accents() -> None:
    doc = tokenize_document("Titre", "L'Armée française. Ejército español")
    assert doc.surfaces[:3] == ["Titre", "L", "Armee"]
    assert doc.norms[-2:] == ["ejercito", "espanol"]
    assert fold("Émirats") == "Emirats"


UNSEEN = {
    "title": "Vietnam and Morocco sign defence cooperation memorandum in Rabat",
    "text": (
        "Morocco and Vietnam signed a memorandum of understanding on defence cooperation on "
        "Tuesday in Rabat, during a visit by Vietnam's deputy defence minister. The agreement "
        "covers officer training, exchanges between military academies and cooperation in "
        "peacekeeping, the Vietnamese delegation said after talks with Abdellatif Loudiyi. "
        "Hanoi has been expanding its defence ties in Africa."
    ),
}


def test_unseen_partner_gets_a_candidate_and_a_fair_score(gazetteer: Gazetteer) -> None:
    seen = {p for e in load_corpus("all") for p in e["partners"]}
    assert "VN" not in seen  # the point of the test: no example names Vietnam as partner
    assert "VN" in gazetteer.candidates(UNSEEN["text"])
    clf: AtlasClassifier = load_model()
    (result,) = clf.classify([UNSEEN])
    assert result["relevant"]
    assert result["partners"] == ["VN"]
