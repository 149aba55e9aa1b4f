"""Near-duplicate story clusters: one wire story reprinted with small edits is one story.

The dispatches below were written for these tests. Each is reprinted three times the way outlets
do it: their own dateline and credit line, another headline, a sentence cut or added, a typo.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.render import render_digest
from alerts.selection import build_groups
from flows.dedupe import (
    MIN_WORDS,
    NUM_HASHES,
    SIMILARITY_THRESHOLD,
    StoryIndex,
    assign_clusters,
    fingerprint,
    normalise,
    signature,
    similar,
    similarity,
)
from flows.extract import extract_page
from flows.fetch import FetchResult
from storage import open_database, transaction
from storage.articles import insert_articles, recent_fingerprints


@dataclass(frozen=True)
class Dispatch:
    name: str
    title: str
    sentences: tuple[str, ...]


AFRICAN_LION = Dispatch(
    "en-african-lion",
    "Morocco and US open African Lion exercise with record number of troops",
    (
        "Morocco and the United States opened the annual African Lion military exercise on Monday, with more than 8,000 troops from twenty countries taking part in drills across the kingdom, the Royal Armed Forces said in a statement.",
        "The exercise, led by US Africa Command, will run for two weeks in the regions of Agadir, Tan-Tan, Tiznit, Kenitra and Ben Guerir.",
        "Units will train in desert manoeuvres, airborne operations, maritime interdiction and the response to chemical, biological and radiological threats.",
        "A field hospital will also treat civilians in remote villages as part of a humanitarian programme run alongside the drills.",
        "This year's edition is the largest since the exercise began in 2004, according to officials from both countries.",
        "Observers from NATO and several African armies were invited to follow the live-fire phase planned near Cap Draa at the end of the month.",
        "Washington considers Rabat a major non-NATO ally, and the two countries signed a ten-year defence cooperation roadmap in 2020.",
        "The Moroccan army has bought F-16 fighter jets, Apache helicopters and air defence systems from American manufacturers in recent years.",
        "A US embassy spokesperson said the exercise showed the depth of a partnership that goes back more than two centuries.",
    ),
)

JAVELIN = Dispatch(
    "en-javelin-sale",
    "US approves possible sale of Javelin anti-tank missiles to Morocco",
    (
        "The US State Department has approved the possible sale of 612 Javelin anti-tank missiles and related equipment to Morocco, in a deal valued at about 260 million dollars, the Defense Security Cooperation Agency said on Thursday.",
        "The package includes 200 command launch units, training simulators, spare parts and technical support from American contractors.",
        "The agency said the sale would improve the security of a major non-NATO ally that remains an important force for political stability in North Africa.",
        "It added that the missiles would help the Royal Armed Forces meet current and future threats and would not alter the basic military balance in the region.",
        "Congress has thirty days to object before the sale can go ahead, although lawmakers rarely block such notifications.",
        "The principal contractors are the Javelin joint venture of Raytheon and Lockheed Martin, based in Tucson and Orlando.",
        "Morocco has stepped up its arms purchases since 2020, buying drones, air defence systems and artillery from the United States, Israel and Turkey.",
        "Algeria, its neighbour and rival, remains the biggest military spender in Africa.",
    ),
)

# The same event two weeks later: a different story that shares names, places and phrases.
AFRICAN_LION_ENDS = Dispatch(
    "en-african-lion-ends",
    "African Lion exercise ends with live-fire drill at Cap Draa",
    (
        "The African Lion exercise ended on Friday with a live-fire demonstration near Cap Draa, where Moroccan and American artillery, helicopters and fighter jets struck targets in the desert before an audience of generals and diplomats.",
        "The inspector general of the Royal Armed Forces thanked the participating countries and said the training had improved the ability of the armies to work together.",
        "The commander of the US Army's task force for Africa said the two weeks of drills had been the most complex in the history of the exercise.",
        "Soldiers from Ghana, Senegal, Tunisia and Chad took part for the first time in the final phase, which included a simulated evacuation of civilians.",
        "The medical teams that accompanied the troops saw more than 5,000 patients in villages near Tata and Akka during the exercise.",
        "Washington considers Rabat a major non-NATO ally, and the two countries signed a ten-year defence cooperation roadmap in 2020.",
        "The next edition is expected to be held in Morocco, Tunisia, Ghana and Senegal next spring.",
    ),
)

CAESAR = Dispatch(
    "fr-caesar",
    "Le Maroc commande des canons Caesar à la France",
    (
        "Le Maroc a commandé trente-six canons automoteurs Caesar au groupe français KNDS, a annoncé mardi le ministère des Armées à Paris, confirmant une information de la presse spécialisée.",
        "Le contrat, dont le montant n'a pas été rendu public, comprend la formation des artilleurs marocains et un soutien logistique sur plusieurs années.",
        "Les premières pièces doivent être livrées aux Forces armées royales à la fin de l'année prochaine, selon une source proche du dossier.",
        "Ce canon de 155 millimètres, monté sur camion, a été largement utilisé par l'armée ukrainienne depuis 2022, ce qui a renforcé sa réputation à l'exportation.",
        "Rabat dispose déjà de matériels français, notamment des hélicoptères Puma et une frégate multimissions.",
        "Cette commande intervient après plusieurs années de tensions diplomatiques entre les deux pays, apaisées par la visite d'État du président français à Rabat à l'automne 2024.",
        "Paris avait alors reconnu le plan d'autonomie marocain pour le Sahara comme la seule base d'une solution politique.",
        "Le Maroc a également acquis ces dernières années des drones turcs, des systèmes israéliens de défense aérienne et des avions américains.",
    ),
)

TURKEY_AR = Dispatch(
    "ar-turkey-industry",
    "المغرب وتركيا يوقعان اتفاقا للتعاون في مجال الصناعات الدفاعية",
    (
        "وقع المغرب وتركيا، يوم الأربعاء في الرباط، اتفاقا للتعاون في مجال الصناعات الدفاعية يشمل تبادل الخبرات والتكوين والبحث العلمي، حسب ما أفاد به بلاغ للقيادة العامة للقوات المسلحة الملكية.",
        "وجرى توقيع الاتفاق على هامش الاجتماع الثالث للجنة العسكرية المشتركة بين البلدين، بحضور مسؤولين عسكريين كبار من الجانبين.",
        "وينص الاتفاق على إمكانية إنشاء وحدات لصيانة الطائرات المسيرة وتجميع بعض مكوناتها في المملكة.",
        "وكان المغرب قد اقتنى خلال السنوات الأخيرة عددا من الطائرات المسيرة من طراز بيرقدار تي بي 2 وأقنجي من الشركات التركية.",
        "وأكد الجانبان، حسب البلاغ، رغبتهما في تعزيز الشراكة الاستراتيجية وتوسيع التعاون ليشمل التدريب المشترك وتبادل الزيارات بين المدارس العسكرية.",
        "وتسعى الرباط منذ سنوات إلى تطوير صناعة دفاعية وطنية، وقد صادق البرلمان سنة 2020 على قانون ينظم أنشطة تصنيع الأسلحة والذخيرة.",
        "ويرى خبراء أن هذا التوجه يهدف إلى تقليص الاعتماد على الواردات وخلق فرص شغل للمهندسين الشباب.",
        "ومن المنتظر أن يعقد الاجتماع المقبل للجنة في أنقرة خلال السنة القادمة.",
    ),
)

NAVANTIA = Dispatch(
    "es-navantia",
    "Navantia construirá un patrullero para la Marina Real marroquí",
    (
        "El astillero público español Navantia construirá un buque patrullero de altura para la Marina Real de Marruecos, según confirmaron el martes fuentes del Ministerio de Defensa en Madrid.",
        "El contrato, valorado en unos 120 millones de euros, se firmó en Rabat y prevé la entrega del barco en un plazo de tres años.",
        "La embarcación, de 87 metros de eslora, se fabricará en las instalaciones de San Fernando, en Cádiz, y dará trabajo a cientos de personas durante su construcción.",
        "El patrullero servirá para la vigilancia de las aguas marroquíes, la lucha contra el tráfico de personas y de drogas y las operaciones de salvamento en el Atlántico.",
        "Es el primer gran pedido militar de Marruecos a la industria española en más de una década.",
        "La cooperación en materia de seguridad entre ambos países se ha intensificado desde que Madrid respaldó en 2022 el plan de autonomía marroquí para el Sáhara Occidental.",
        "Las dos armadas realizan además maniobras conjuntas cada año en el estrecho de Gibraltar.",
        "Los sindicatos del astillero celebraron la noticia, que llega en un momento de escasa carga de trabajo.",
    ),
)


@dataclass(frozen=True)
class Reprint:
    """How one outlet reprints a dispatch."""

    headline: str | None = None  # None keeps the wire's headline
    dateline: str = ""
    credit: str = ""
    drop: tuple[int, ...] = ()  # sentences cut
    add: tuple[tuple[int, str], ...] = ()  # (position, sentence) added
    replace: tuple[tuple[str, str], ...] = ()  # small edits: typos, reworded phrases, spelling


def reprint(dispatch: Dispatch, edits: Reprint) -> tuple[str, str]:
    sentences = [s for i, s in enumerate(dispatch.sentences) if i not in edits.drop]
    for position, sentence in sorted(edits.add, reverse=True):
        sentences.insert(position, sentence)
    body = " ".join(sentences)
    for old, new in edits.replace:
        assert old in body, f"{dispatch.name}: {old!r} not in the text"
        body = body.replace(old, new, 1)
    body = f"{edits.dateline} {body}\n\n{edits.credit}".strip()
    return edits.headline or dispatch.title, body


REPRINTS: dict[str, list[Reprint]] = {
    AFRICAN_LION.name: [
        Reprint(
            dateline="RABAT, May 12 (Wire) -", credit="Reporting by Staff; Editing by the Wire desk"
        ),
        Reprint(
            headline="African Lion 2025: 8,000 soldiers gather in Morocco for US-led drills",
            dateline="Rabat (Maghreb Daily) —",
            credit="© 2025 Maghreb Daily. All rights reserved. Follow us for more defence news.",
            drop=(5,),
            replace=(("manoeuvres", "maneuvers"), ("airborne", "airbrone")),
        ),
        Reprint(
            headline="Biggest ever African Lion exercise begins in Morocco",
            dateline="AGADIR —",
            credit="Read more: Morocco's defence spending hits new high",
            add=(
                (
                    4,
                    "Local authorities in Tan-Tan closed several roads near the training grounds for the duration of the exercise.",
                ),
            ),
            replace=(("on Monday", "Monday"),),
        ),
    ],
    CAESAR.name: [
        Reprint(
            dateline="PARIS, 3 juin (Agence) -",
            credit="(Rédaction de l'Agence, édité par le service Afrique)",
        ),
        Reprint(
            headline="Artillerie : Rabat achète 36 Caesar français",
            dateline="Paris —",
            credit="Cet article vous a été proposé par Le Quotidien. Abonnez-vous pour lire la suite de nos analyses.",
            drop=(7,),
            replace=(("Forces armées royales", "FAR"), ("largement", "largment")),
        ),
        Reprint(
            headline="Défense : le Maroc se dote de canons Caesar",
            credit="Avec AFP",
            add=(
                (
                    3,
                    "Ces canons remplaceront des pièces d'artillerie tractées datant des années 1980.",
                ),
            ),
            replace=(("mardi", "ce mardi"),),
        ),
    ],
    TURKEY_AR.name: [
        Reprint(dateline="الرباط (وكالة) -", credit="(تحرير القسم الدولي)"),
        Reprint(
            headline="اتفاق دفاعي جديد بين الرباط وأنقرة يشمل الطائرات المسيّرة",
            dateline="الرباط - جريدة المساء:",
            credit="جميع الحقوق محفوظة لجريدة المساء © 2025",
            drop=(6,),
            # Spelling differences that normalisation absorbs: diacritics, tatweel, hamza forms,
            # taa marbuta, and a typo that it does not.
            replace=(
                ("اتفاقا للتعاون", "اتفاقاً للتعاون"),
                ("المغرب وتركيا،", "المغـــرب وتركيا،"),
                ("إمكانية", "امكانية"),
                ("الأخيرة", "الاخيره"),
                ("الاستراتيجية", "الإستراتيجية"),
                ("التدريب", "التدرب"),
            ),
        ),
        Reprint(
            headline="تعاون عسكري مغربي تركي في مجال الصناعات الدفاعية",
            credit="المصدر: وكالات",
            add=(
                (
                    2,
                    "ويأتي هذا الاتفاق بعد زيارة قام بها وفد عسكري تركي إلى عدد من المنشآت العسكرية المغربية.",
                ),
            ),
            replace=(("يوم الأربعاء", "الأربعاء"),),
        ),
    ],
    NAVANTIA.name: [
        Reprint(
            dateline="MADRID, 14 oct (Agencia) -",
            credit="(Redacción de Agencia, editado por la mesa internacional)",
        ),
        Reprint(
            headline="Marruecos encarga a Navantia un patrullero de 120 millones",
            dateline="Cádiz —",
            credit="© Diario del Sur. Suscríbete para seguir leyendo nuestra información de Defensa.",
            drop=(7,),
            replace=(("embarcación", "embarcacion"), ("salvamento", "salvamneto")),
        ),
        Reprint(
            headline="La Marina Real de Marruecos tendrá un patrullero español",
            credit="Con información de agencias",
            add=((5, "El Gobierno marroquí no ha hecho comentarios sobre el acuerdo."),),
            replace=(("el martes", "este martes"),),
        ),
    ],
}
DISPATCHES = {
    d.name: d for d in (AFRICAN_LION, JAVELIN, AFRICAN_LION_ENDS, CAESAR, TURKEY_AR, NAVANTIA)
}


def versions(name: str) -> list[tuple[str, str]]:
    return [reprint(DISPATCHES[name], edits) for edits in REPRINTS[name]]


def fingerprints(name: str) -> list[str]:
    return [fingerprint(title, body) for title, body in versions(name)]


def test_wire_texts_are_wire_sized():
    for name in DISPATCHES:
        words = len(" ".join(DISPATCHES[name].sentences).split())
        assert 110 <= words <= 210, (name, words)


def test_normalisation_folds_case_accents_arabic_spellings_and_punctuation():
    assert (
        normalise("L'Armée  ROYALE—marocaine : « Été » naïve\u00adté")
        == "l armee royale marocaine ete naivete"
    )
    assert normalise("Défense, Sáhara; Çà") == "defense sahara ca"
    assert normalise("اتفاقاً إمكانية آمنة المغـــرب الأخيرة القادمة على ٢٠٢٥") == normalise(
        "اتفاقا امكانية امنة المغرب الاخيره القادمه علي 2025"
    )
    assert normalise("ﻷ") == "لا"  # presentation forms fold to letters
    # Marks stay inside words.
    assert normalise("हिन्दी समाचार, 北京：新华社！") == "हिन्दी समाचार 北京 新华社"


def test_fingerprint_is_compact_hex_and_deterministic():
    title, body = versions(AFRICAN_LION.name)[0]
    value = fingerprint(title, body)
    assert value == fingerprint(title, body)
    assert value.startswith("m2:") and len(value) == 3 + 4 * NUM_HASHES
    int(value[3:], 16)
    assert (
        signature(value) is not None
        and signature("m1:" + value[3:]) is None
        and signature("m2:zz") is None
    )
    assert similarity(value, value) == 1.0


@pytest.mark.parametrize("name", sorted(REPRINTS))
def test_reprints_with_small_edits_are_one_story(name):
    prints = fingerprints(name)
    for a, b in itertools.combinations(prints, 2):
        assert similarity(a, b) >= SIMILARITY_THRESHOLD + 0.1, similarity(a, b)
        assert similar(a, b)
    clusters = assign_clusters(
        [{"id": f"{name}-{i}", "fingerprint": fp} for i, fp in enumerate(prints)], []
    )
    assert set(clusters.values()) == {f"{name}-0"}


def test_different_stories_on_the_same_subject_are_not_clustered():
    wires = {
        name: fingerprint(DISPATCHES[name].title, " ".join(DISPATCHES[name].sentences))
        for name in DISPATCHES
    }
    reprinted = {name: fingerprints(name) for name in REPRINTS}
    for (one, a), (other, b) in itertools.combinations(wires.items(), 2):
        assert similarity(a, b) < SIMILARITY_THRESHOLD / 2, (one, other, similarity(a, b))
    # Two Morocco-US stories, and the same exercise's opening and closing: no cluster.
    for first, second in (
        ("en-african-lion", "en-javelin-sale"),
        ("en-african-lion", "en-african-lion-ends"),
    ):
        for a in [wires[first], *reprinted[first]]:
            assert not similar(a, wires[second])
    for (one, a), (other, b) in itertools.combinations(
        [(name, fp) for name, fps in reprinted.items() for fp in fps], 2
    ):
        if one != other:
            assert not similar(a, b), (one, other)


def test_tiny_and_empty_texts_never_cluster():
    tiny = (
        "Morocco and the United States opened the African Lion exercise on Monday, the army said."
    )
    assert len(tiny.split()) < MIN_WORDS
    assert fingerprint("", "") == "" and fingerprint("African Lion opens", tiny) == ""
    assert not similar("", "") and similarity(None, "") == 0.0
    new = [
        {"id": "a", "fingerprint": fingerprint("African Lion opens", tiny)},
        {"id": "b", "fingerprint": fingerprint("African Lion opens", tiny)},
        {"id": "c", "fingerprint": None},
        {"id": "d", "fingerprint": "not a fingerprint"},
    ]
    recent = [{"id": "old", "fingerprint": "", "cluster_id": "old"}]
    assert assign_clusters(new, recent) == {"a": "a", "b": "b", "c": "c", "d": "d"}


def test_unspaced_scripts_fall_back_to_character_shingles():
    story = (
        "摩洛哥与美国周一启动年度非洲狮联合军事演习，来自二十个国家的八千多名士兵参加在王国各地举行的训练。"
        "演习由美国非洲司令部主导，为期两周，地点包括阿加迪尔、坦坦和盖尔基尔。部队将进行沙漠机动、空降行动和海上拦截训练。"
        "野战医院还将为偏远村庄的平民提供治疗。官员表示，今年的演习是二零零四年以来规模最大的一次。"
    )
    edited = story.replace("周一", "本周一").replace("野战医院还将为偏远村庄的平民提供治疗。", "")
    other = (
        "美国国务院批准向摩洛哥出售标枪反坦克导弹及相关设备，交易金额约为二亿六千万美元。该套装包括发射装置、训练模拟器和备件。"
        "国会有三十天时间提出反对意见，但议员很少阻止此类交易。摩洛哥自二零二零年以来加快了武器采购，从美国、以色列和土耳其购买无人机和防空系统。"
    )
    assert len(story.split()) < MIN_WORDS  # few "words" by spaces, yet plenty of text
    a, b, c = (
        fingerprint("非洲狮演习", story),
        fingerprint("非洲狮演习开幕", edited),
        fingerprint("标枪导弹", other),
    )
    assert a and similar(a, b) and not similar(a, c)
    assert fingerprint("", story[:60]) == ""


def test_new_articles_join_the_cluster_of_a_stored_report():
    stored, first, second = fingerprints(CAESAR.name)
    recent = [
        {"id": "stored", "fingerprint": stored, "cluster_id": "stored"},
        {
            "id": "javelin",
            "fingerprint": fingerprint(JAVELIN.title, " ".join(JAVELIN.sentences)),
            "cluster_id": "javelin",
        },
        {"id": "joined", "fingerprint": second, "cluster_id": "stored"},
    ]
    new = [
        {"id": "late", "fingerprint": first, "published": "2025-06-03T12:00:00+00:00"},
        {
            "id": "navantia",
            "fingerprint": fingerprints(NAVANTIA.name)[0],
            "published": "2025-06-03T10:00:00+00:00",
        },
        {
            "id": "navantia-2",
            "fingerprint": fingerprints(NAVANTIA.name)[1],
            "published": "2025-06-03T11:00:00+00:00",
        },
    ]
    assert assign_clusters(new, recent) == {
        "late": "stored",
        "navantia": "navantia",
        "navantia-2": "navantia",
    }


def test_within_a_batch_the_earliest_report_names_the_cluster():
    prints = fingerprints(NAVANTIA.name)
    new = [
        {"id": "third", "fingerprint": prints[2], "published": "2025-10-14T11:00:00+02:00"},
        {"id": "first", "fingerprint": prints[0], "published": "2025-10-14T08:30:00+00:00"},
        {
            "id": "second",
            "fingerprint": prints[1],
            "published": None,
            "fetched_at": "2025-10-14T09:15:00+00:00",
        },
    ]
    assert assign_clusters(new, []) == {"first": "first", "second": "first", "third": "first"}


def test_a_story_index_knows_the_batches_it_was_told_were_stored():
    prints = fingerprints(NAVANTIA.name)
    stories = StoryIndex([])
    first = [{"id": "first", "fingerprint": prints[0], "published": "2025-10-14T08:30:00+00:00"}]
    later = [{"id": "later", "fingerprint": prints[1], "published": "2025-10-14T09:30:00+00:00"}]
    assert stories.assign(first) == {"first": "first"}
    assert stories.assign(later) == {"later": "later"}  # assigning alone stores nothing
    stories.remember([{**first[0], "cluster_id": "first"}])
    assert stories.assign(later) == {"later": "first"}
    stored = [{"id": "wire", "fingerprint": prints[2], "cluster_id": "wire"}]
    assert StoryIndex(stored).assign(later) == {"later": "wire"}


def _noise_fingerprints(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocabulary = [f"w{n}" for n in range(5000)]
    return [fingerprint("", " ".join(rng.choices(vocabulary, k=60))) for _ in range(count)]


def test_assign_clusters_scales_to_ten_thousand_recent_and_a_thousand_new():
    prints = _noise_fingerprints(11_000, seed=7)
    recent = [
        {"id": f"r{i}", "fingerprint": fp, "cluster_id": f"r{i}"}
        for i, fp in enumerate(prints[:10_000])
    ]
    new = [{"id": f"n{i}", "fingerprint": fp} for i, fp in enumerate(prints[10_000:])]
    wire = fingerprints(AFRICAN_LION.name)
    recent.append({"id": "lion", "fingerprint": wire[0], "cluster_id": "lion"})
    new.append({"id": "lion-again", "fingerprint": wire[1]})
    clusters = assign_clusters(new, recent)
    assert len(clusters) == 1001
    assert clusters["lion-again"] == "lion"
    assert all(clusters[f"n{i}"] == f"n{i}" for i in range(1000))


def _article(identifier: str, title: str, text: str, fetched_at: str, **extra) -> dict:
    row = {
        "id": identifier,
        "url": f"https://news.example/{identifier}",
        "feed_url": "https://news.example/feed",
        "title": title,
        "text": text,
        "published": None,
        "fetched_at": fetched_at,
        "fingerprint": fingerprint(title, text),
        "cluster_id": identifier,
        "extraction_status": "ok",
    }
    row.update(extra)
    return row


def test_recent_fingerprints_round_trip_through_sqlite(tmp_path: Path):
    db = open_database(tmp_path / "atlaswatch.db")
    (t0, b0), (t1, b1), _ = versions(NAVANTIA.name)
    rows = [
        _article("old", t0, b0, "2025-10-01T08:00:00+00:00"),
        _article(
            "wire", t0, b0, "2025-10-13T08:00:00+00:00", published="2025-10-13T07:45:00+00:00"
        ),
        _article("copy", t1, b1, "2025-10-13T09:00:00+00:00", cluster_id="wire"),
        _article("tiny", "Short", "Only a few words here.", "2025-10-13T10:00:00+00:00"),
    ]
    with transaction(db):
        insert_articles(db, rows)
    recent = recent_fingerprints(db, "2025-10-07T00:00:00+00:00")
    assert [row["id"] for row in recent] == ["wire", "copy"]
    assert recent[0] == {
        "id": "wire",
        "fingerprint": rows[1]["fingerprint"],
        "cluster_id": "wire",
        "published": "2025-10-13T07:45:00+00:00",
        "fetched_at": "2025-10-13T08:00:00+00:00",
    }
    assert recent[1]["cluster_id"] == "wire"
    assert signature(recent[0]["fingerprint"]) is not None
    # The whole path: a later reprint finds its story through the database.
    title, body = versions(NAVANTIA.name)[2]
    new = [
        {
            "id": "later",
            "fingerprint": fingerprint(title, body),
            "fetched_at": "2025-10-14T08:00:00+00:00",
        }
    ]
    assert assign_clusters(new, recent) == {"later": "wire"}


FEEDS = {"wire": "https://wire.example/feed", "daily": "https://daily.example/rss"}
START = datetime(2025, 6, 3, 9, 0, tzinfo=UTC)


def _feed_database(path: Path) -> Any:
    from storage import feeds as feed_store

    db = open_database(path)
    feed_store.sync_feeds(db, [(url, name) for name, url in FEEDS.items()], START)
    return db


def _store_poll(
    db: Any, feed: str, stories: list[tuple[str, tuple[str, str]]], now: datetime, known: Any = None
) -> list[dict]:
    """One feed's batch of extracted articles through the poll's storing step."""
    from flows.extract import Extraction
    from flows.parse import Entry
    from flows.poll import article_record, store_feed_poll
    from flows.settings import load_settings

    articles = []
    for slug, (title, text) in stories:
        link = f"{FEEDS[feed].rsplit('/', 1)[0]}/{slug}"
        entry = Entry(link, link, title, text[:200], link, "", None, slug)
        articles.append(article_record(entry, Extraction("ok", text), FEEDS[feed], now))
    result = FetchResult(FEEDS[feed], FEEDS[feed], 200, b"<rss/>")
    store_feed_poll(
        db,
        {"url": FEEDS[feed]},
        result,
        articles,
        [],
        load_settings(None, env={}),
        now,
        len(articles),
        known,
    )
    return articles


def test_poll_stores_a_reprint_from_another_feed_in_the_first_reports_cluster(tmp_path: Path):
    db = _feed_database(tmp_path / "atlaswatch.db")
    start = START

    def poll(feed: str, stories: list[tuple[str, tuple[str, str]]], now: datetime) -> list[dict]:
        return _store_poll(db, feed, stories, now)

    caesar, navantia = versions(CAESAR.name), versions(NAVANTIA.name)
    wire = poll("wire", [("caesar", caesar[0]), ("navantia", navantia[0])], start)
    assert all(a["fingerprint"].startswith("m2:") for a in wire)
    # A fingerprint an older version made is made again from the stored text: the story holds.
    db.execute(
        "UPDATE articles SET fingerprint = ? WHERE id = ?",
        ["m1:" + "0" * 4 * NUM_HASHES, wire[0]["id"]],
    )
    daily = poll(
        "daily",
        [
            ("canons", caesar[1]),
            ("javelin", (JAVELIN.title, " ".join(JAVELIN.sentences))),
            ("brief", ("Bref", "Le Maroc commande des canons.")),
        ],
        start + timedelta(hours=2),
    )
    stored = {row["url"].rsplit("/", 1)[1]: row for row in db["articles"].rows}
    assert (
        stored["canons"]["cluster_id"] == stored["caesar"]["id"] == stored["caesar"]["cluster_id"]
    )
    assert stored["caesar"]["fingerprint"] == wire[0]["fingerprint"]
    assert stored["javelin"]["cluster_id"] == stored["javelin"]["id"]
    assert stored["navantia"]["cluster_id"] == stored["navantia"]["id"]
    assert (
        stored["brief"]["cluster_id"] == stored["brief"]["id"]
        and stored["brief"]["fingerprint"] == ""
    )
    assert daily[0]["cluster_id"] == wire[0]["id"]
    # A week later the wire's copy is out of the window: a late reprint starts its own story.
    late = poll("daily", [("again", caesar[2])], start + timedelta(days=8))
    assert late[0]["cluster_id"] == late[0]["id"]


def test_a_poll_clusters_with_what_another_process_stored_while_it_ran(tmp_path: Path):
    from flows.poll import load_stories

    path = tmp_path / "atlaswatch.db"
    ours = _feed_database(path)
    caesar = versions(CAESAR.name)
    # Our poll reads the recent stories; then another process stores the wire's dispatch...
    stories = load_stories(ours, START)
    _store_poll(_feed_database(path), "wire", [("caesar", caesar[0])], START)
    # ...and our poll, storing a reprint, still finds it.
    (reprint,) = _store_poll(
        ours, "daily", [("canons", caesar[1])], START + timedelta(hours=1), stories
    )
    wire_id = ours.execute("SELECT id FROM articles WHERE url LIKE '%wire.example%'").fetchone()[0]
    assert reprint["cluster_id"] == wire_id


def test_digest_shows_a_story_once_with_the_earliest_outlet_first():
    (t0, b0), (t1, b1), (t2, b2) = versions(AFRICAN_LION.name)
    javelin_title, javelin_text = JAVELIN.title, " ".join(JAVELIN.sentences)
    tagged = {"partners": ["US"], "topics": ["joint_exercises"], "evidence": {}, "lang": "en"}
    items = [
        # Its local time reads earlier than the wire's, but it came out after the wire's copy.
        _article(
            "daily",
            t1,
            b1,
            "2025-05-12T10:20:00+00:00",
            published="2025-05-12T06:00:00-04:00",
            feed_name="Maghreb Daily",
            **tagged,
        ),
        _article(
            "wire",
            t0,
            b0,
            "2025-05-12T09:00:00+00:00",
            published="2025-05-12T06:05:00Z",
            feed_name="The Wire",
            **tagged,
        ),
        # A date without a time: it does not jump ahead of reports timed that same day.
        _article(
            "agadir",
            t2,
            b2,
            "2025-05-12T10:30:00+00:00",
            published="2025-05-12",
            feed_name="Agadir Post",
            **tagged,
        ),
        _article(
            "javelin",
            javelin_title,
            javelin_text,
            "2025-05-12T11:00:00+00:00",
            published="2025-05-12T10:00:00+00:00",
            feed_name="Defense Desk",
            **tagged,
        ),
    ]
    new = [{k: item[k] for k in ("id", "fingerprint", "published", "fetched_at")} for item in items]
    clusters = assign_clusters(new, [])
    assert clusters["daily"] == clusters["wire"] == clusters["agadir"] != clusters["javelin"]
    for item in items:
        item["cluster_id"] = clusters[item["id"]]

    groups = build_groups(items, {"US": "United States"})
    stories = [story for group in groups for story in group.items]
    assert len(stories) == 2
    lion = next(story for story in stories if "daily" in story.article_ids)
    assert lion.outlet == "The Wire" and lion.title == t0
    assert lion.published == "2025-05-12"
    assert sorted(lion.article_ids) == ["agadir", "daily", "wire"]
    assert [outlet for outlet, _ in lion.also_reported_by] == ["Maghreb Daily", "Agadir Post"]

    generated = datetime(2025, 5, 13, 7, 0, tzinfo=UTC)
    subject, text, html = render_digest(groups, generated_at=generated)
    assert "2 new stories" in subject
    assert text.count(t0) == 1 and t1 not in text and t2 not in text
    assert (
        "Also reported by: Maghreb Daily <https://news.example/daily>, Agadir Post <https://news.example/agadir>"
        in text
    )
    assert text.index("The Wire") < text.index("Also reported by")
    assert html.count(t0) == 1 and "Maghreb Daily" in html


def test_digest_lists_an_outlet_that_reprinted_its_own_story_once():
    (t0, b0), (t1, b1), _ = versions(CAESAR.name)
    items = [
        _article(
            "a",
            t0,
            b0,
            "2025-06-03T09:00:00+00:00",
            published="2025-06-03T08:00:00+00:00",
            feed_name="Agence",
        ),
        _article(
            "b",
            t1,
            b1,
            "2025-06-03T10:00:00+00:00",
            published="2025-06-03T09:00:00+00:00",
            feed_name="Le Quotidien",
        ),
        _article(
            "c",
            t1,
            b1,
            "2025-06-03T11:00:00+00:00",
            published="2025-06-03T10:00:00+00:00",
            feed_name="Le Quotidien",
        ),
        _article(
            "d",
            t0,
            b0,
            "2025-06-03T12:00:00+00:00",
            published="2025-06-03T11:00:00+00:00",
            feed_name="Agence",
        ),
    ]
    for item in items:
        item["cluster_id"] = "a"
    (story,) = build_groups(items, {})[0].items
    assert story.outlet == "Agence"
    assert story.article_ids == ["a", "b", "c", "d"]
    assert [outlet for outlet, _ in story.also_reported_by] == ["Le Quotidien"]


def _truth_texts(pages: Path) -> dict[str, tuple[str, str]]:
    """(title, text) of every page with a full true text; pages with only required snippets are skipped."""
    texts: dict[str, tuple[str, str]] = {}
    for path in sorted(pages.glob("*/*.truth.*")):
        stem = str(path.relative_to(pages)).split(".truth.")[0]
        if path.suffix == ".txt":
            title = texts.get(stem, ("", ""))[0]
            texts[stem] = (title, path.read_text(encoding="utf-8"))
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        body = data.get("articleBody") or data.get("body")
        if isinstance(body, dict):
            parts = list(body.get("summary") or [])
            for section in body.get("sections") or []:
                parts += list(section.get("headline") or []) + list(section.get("paragraphs") or [])
            body = "\n".join(parts)
        previous = texts.get(stem, ("", ""))[1]
        if body or previous:
            texts[stem] = (data.get("title") or "", body or previous)
    return texts


@pytest.mark.realworld
def test_no_two_real_articles_cluster(shared_dir: Path):
    """60 real articles from 48 publishers in 8 languages: every pair stays apart.

    Pages whose truth file lists only snippets the text must contain (and the one page without
    a truth file) are represented by what the extractor takes from the page.
    """
    pages = shared_dir / "realworld" / "pages"
    texts = _truth_texts(pages)
    assert len(texts) >= 35
    for page in sorted(pages.glob("*/*.html")):
        stem = str(page.relative_to(pages)).removesuffix(".html")
        if stem not in texts:
            extracted = extract_page(page.read_bytes(), "text/html", "https://publisher.example/")
            texts[stem] = (extracted["title"], extracted["text"])
    assert len(texts) == len(list(pages.glob("*/*.html")))
    prints = {stem: fingerprint(title, text) for stem, (title, text) in texts.items()}
    assert sum(1 for fp in prints.values() if fp) >= 55
    worst = max(
        (similarity(prints[a], prints[b]), a, b)
        for a, b in itertools.combinations(sorted(prints), 2)
    )
    assert worst[0] < SIMILARITY_THRESHOLD / 2, worst
    clusters = assign_clusters([{"id": stem, "fingerprint": fp} for stem, fp in prints.items()], [])
    assert all(stem == cluster for stem, cluster in clusters.items())


@pytest.mark.realworld
def test_real_articles_still_cluster_with_edited_copies_of_themselves(shared_dir: Path):
    """A reprint of a real article (new headline, last paragraph cut, a credit line, a typo) finds it."""
    texts = _truth_texts(shared_dir / "realworld" / "pages")
    for stem, (title, text) in texts.items():
        original = fingerprint(title, text)
        paragraphs = [p for p in text.split("\n") if p.strip()]
        if not original or len(paragraphs) < 4:
            continue
        body = "\n".join(paragraphs[:-1]) + "\n© Another Outlet. All rights reserved."
        words = body.split()
        words[len(words) // 2] = words[len(words) // 2][::-1]
        copy = fingerprint("Reprinted: " + (title or paragraphs[0][:60]), " ".join(words))
        assert similar(original, copy), (stem, similarity(original, copy))
