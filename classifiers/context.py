"""Where the named states and organisations stand in a document, as numbers a model can use.

Two feature sets come from one pass over a document's gazetteer mentions:

- per candidate partner (:func:`candidate_features`): how often, where, in the title or not,
  in the same sentences as Morocco's side, next to which kinds of words. None of them names
  the country, so a partner never seen in training is scored on the same footing;
- per document (:func:`document_features`): how much the piece is about Morocco, whether
  a foreign party appears beside it and how much of it is about civil sectors, which is
  what separates a real defence cooperation story from one naming Morocco in passing or
  reporting a fisheries or university agreement.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from classifiers.gazetteer import SELF, Gazetteer, Mention, arabic_variants
from classifiers.text import TokenizedDocument

# ---------------------------------------------------------------------------------------
# Cue words, as normalised stems (lower case, accents and Arabic variants folded). A token
# matches a stem when it starts with it; Arabic tokens are tried without their proclitics
# and article. Short or ambiguous stems are listed in the EXACT sets instead.
# ---------------------------------------------------------------------------------------
COOPERATION, DEFENCE, PASSING, LINK, BETWEEN, PLACE, EXERCISE = 1, 2, 4, 8, 16, 32, 64
PARTICIPANT, ARTICLE, CIVIL = 128, 256, 512
_FLAGS = (
    COOPERATION,
    DEFENCE,
    PASSING,
    LINK,
    BETWEEN,
    PLACE,
    EXERCISE,
    PARTICIPANT,
    ARTICLE,
    CIVIL,
)
_FLAG_ARRAY = np.array(_FLAGS, dtype=np.uint16)

_STEMS: dict[int, tuple[str, ...]] = {
    COOPERATION: (
        # en
        "cooperat",
        "collaborat",
        "partner",
        "agreement",
        "memorand",
        "signed",
        "signing",
        "bilateral",
        "joint",
        "alongside",
        "allies",
        "alliance",
        "visit",
        "delegation",
        "counterpart",
        "deliver",
        "purchas",
        "acquisit",
        "acquir",
        "contract",
        "approv",
        # "suppl" alone caught the French "supplémentaires" (additional).
        "supply",
        "supplie",
        "exercis",
        "drill",
        "manoeuv",
        "maneuv",
        "training",
        "trained",
        "exchang",
        "sharing",
        "assist",
        "donat",
        "transfer",
        "roadmap",
        "treaty",
        "dialogue",
        "interoper",
        "talks",
        "hosted",
        "hosting",
        # fr
        "cooper",
        "collabor",
        "partenari",
        "protocole",
        "signe",
        "signat",
        "conjoint",
        "allie",
        "visite",
        "rencontr",
        "entretien",
        "reunion",
        "homologue",
        "livr",
        "achat",
        "acqui",
        "contrat",
        "fourni",
        "exercice",
        "entrain",
        "formation",
        "echange",
        "partag",
        "soutien",
        "transfert",
        "traite",
        "comite",
        "accueill",
        # es
        "colabor",
        "socio",
        "acuerdo",
        "memorando",
        # Not "firm": English "firms" (companies) and "firmly".
        "firmad",
        "firman",
        "firmar",
        "conjunt",
        "aliad",
        "alianza",
        "reuni",
        "encuentr",
        "delegacion",
        "homolog",
        "entreg",
        "compra",
        "adquis",
        "contrato",
        "suministr",
        "ejercicio",
        "maniobra",
        "entren",
        "intercambi",
        "compart",
        "asistencia",
        "apoyo",
        "donacion",
        "transferencia",
        "tratado",
        "dialogo",
        # ar
        "تعاون",
        "شراك",
        "اتفاق",
        "مذكره",
        "توقيع",
        "مشترك",
        "تحالف",
        "حليف",
        "زياره",
        "لقاء",
        "اجتماع",
        "مباحث",
        "محادث",
        "وفد",
        "نظير",
        "تسليم",
        "صفقه",
        "شراء",
        "اقتناء",
        "عقد",
        "تزويد",
        "مناور",
        "تمرين",
        "تمارين",
        "تدريب",
        "تكوين",
        "تبادل",
        "تقاسم",
        "دعم",
        "مساعد",
        "حوار",
        "لجنه",
        "خارطه",
    ),
    DEFENCE: (
        # en
        "militar",
        "defen",
        "armed",
        "army",
        "armies",
        "navy",
        "naval",
        "troop",
        "soldier",
        "weapon",
        "missile",
        "drone",
        "aircraft",
        "fighter",
        "helicopter",
        "tank",
        "howitzer",
        "artiller",
        "frigate",
        "corvette",
        "vessel",
        "patrol",
        "securit",
        "intellig",
        "terror",
        "jihad",
        "extremis",
        "cyber",
        "peacekeep",
        "border",
        "coast",
        "gendarm",
        "strateg",
        "command",
        "general",
        "admiral",
        "officer",
        "battalion",
        "brigade",
        "regiment",
        "infantr",
        "combat",
        "warfare",
        "munition",
        "ammunit",
        "radar",
        "marines",
        "airborne",
        "counterterror",
        "forces",
        # fr
        "milit",
        "defens",
        "armee",
        "armement",
        "marine",
        "troupe",
        "soldat",
        "missil",
        "helicop",
        "obusier",
        "fregate",
        "navire",
        "patrouill",
        "renseign",
        "extrem",
        "casques",
        "frontier",
        "garde",
        "amiral",
        "officier",
        "bataill",
        "infanter",
        "guerre",
        # es
        "ejercito",
        "armad",
        "fuerzas",
        "tropa",
        "soldad",
        "dron",
        "tanque",
        "obus",
        "fragata",
        "corbeta",
        "buque",
        "patrull",
        "segur",
        "intelig",
        "yihad",
        "ciber",
        "cascos",
        "fronter",
        "guardia",
        "estrateg",
        "comand",
        "almirant",
        "batall",
        "brigada",
        "regimiento",
        "combate",
        "guerra",
        "municion",
        # ar
        "عسكر",
        "دفاع",
        "جيش",
        "جيوش",
        "قوات",
        # Not "بحري" as a stem: it would match Bahrain, "البحرين".
        "بحريه",
        "بحريا",
        "جنود",
        "جندي",
        "سلاح",
        "اسلح",
        "صاروخ",
        "صواريخ",
        "مسير",
        "طاير",
        "مروحي",
        "دباب",
        "مدفع",
        "فرقاط",
        "سفين",
        "سفن",
        "زورق",
        "دوري",
        "امني",
        "استخبار",
        "مخابرات",
        "ارهاب",
        "متطرف",
        "تطرف",
        "جهادي",
        "سيبران",
        "القبعات",
        "حدود",
        "خفر",
        "درك",
        "استراتيج",
        "جنرال",
        "ضابط",
        "ضباط",
        "كتيب",
        "فوج",
        "قتال",
        "حرب",
        "ذخير",
        "رادار",
    ),
    # Multinational drills: countries listed in them are usually co-participants.
    EXERCISE: (
        "exercis",
        "drill",
        "manoeuv",
        "maneuv",
        "wargam",
        "exercice",
        "manœuv",
        "ejercicio",
        "maniobra",
        "تمرين",
        "تمارين",
        "مناور",
    ),
    # Taking part: "contingents from", "participating nations", "بمشاركة", "participan".
    PARTICIPANT: (
        "contingent",
        "detachment",
        "detachement",
        "destacament",
        "particip",
        "delegations",
        "مشارك",
        "تشارك",
        "يشارك",
        "وحدات",
    ),
    # Civil sectors: a fisheries protocol, a university degree, a ferry line or a health
    # agreement with a foreign partner is cooperation, but not on defence.
    CIVIL: (
        # en
        "fisher",
        "fishing",
        "universit",
        "student",
        "health",
        "nurse",
        "ferry",
        "ferri",
        "flight",
        "airline",
        "touris",
        "trade",
        # Not "invest": joint investigations and investigators are security cooperation.
        "investment",
        "investor",
        "invested",
        "investing",
        "energ",
        "hydrogen",
        "solar",
        "desalin",
        "agricult",
        "educat",
        # Not "vocation": in French it is a purpose ("la vocation du centre").
        "vocational",
        "cultur",
        "football",
        "phosphat",
        "fertili",
        "automotiv",
        "railway",
        "freight",
        "econom",
        "business",
        # fr
        "peche",
        "etudiant",
        "sante",
        "infirmi",
        "commerc",
        "solaire",
        "dessal",
        "agricol",
        "enseignement",
        "investiss",
        "ferrov",
        "ferree",
        # es
        "pesca",
        "pesquer",
        "universidad",
        "estudiant",
        "sanitar",
        "enfermer",
        "vuelo",
        "aerolinea",
        "turism",
        "comerci",
        "inversi",
        "inversor",
        "ferroc",
        "hidrogeno",
        "educaci",
        "futbol",
        "fosfat",
        # ar
        "صيد",
        "جامعه",
        "جامعات",
        "طلاب",
        "صحه",
        "صحيه",
        "ممرض",
        "رحلات",
        "سياح",
        "استثمار",
        "طاقه",
        "هيدروجين",
        "تحليه",
        "فلاح",
        "زراع",
        "تعليمي",
        "ثقاف",
        "فوسفات",
        "اسمده",
        "سيارات",
        "اقتصاد",
        "سكك",
    ),
    PASSING: (
        # en
        "rival",
        "tension",
        "neighbo",
        "adversar",
        "concern",
        "worr",
        # Not "critic": "critical infrastructure" is no criticism.
        "criticis",
        "criticiz",
        "critics",
        "condemn",
        "accus",
        "dispute",
        "meanwhile",
        "whereas",
        "unlike",
        "previous",
        "earlier",
        # fr
        "voisin",
        "inquiet",
        "critiqu",
        "condamn",
        "differend",
        "tandis",
        "auparavant",
        # es
        "vecin",
        "preocup",
        "conden",
        "critican",
        "criticaron",
        "criticad",
        "acus",
        "disputa",
        "mientras",
        "anteriorm",
        # ar
        "منافس",
        "توتر",
        "جيران",
        "الجاره",
        "خصم",
        "قلق",
        "انتقد",
        "ادان",
        "اتهم",
        "نزاع",
        "صراع",
        "بينما",
    ),
}
_EXACT: dict[int, frozenset[str]] = {
    COOPERATION: frozenset(
        {
            "mou",
            "ally",
            "host",
            "hosts",
            "met",
            "meet",
            "meets",
            "meeting",
            "sign",
            "signs",
            "sold",
            "sale",
            "sales",
            "sell",
            "sells",
            "buy",
            "buys",
            "bought",
            "order",
            "ordered",
            "vente",
            "vend",
            "vendu",
            "commande",
            "don",
            "venta",
            "vende",
            # "accord" as a stem caught "according"; "زار" caught "وزارة" (ministry) and
            # "التقى" caught "التقييم" (evaluation).
            "accord",
            "accords",
            "firma",
            "firmas",
            "firmo",
            "زار",
            "زارت",
            "زارا",
            "زاروا",
            "التقي",
            "التقت",
            "التقيا",
            "التقوا",
            "وقع",
            "وقعا",
            "وقعت",
            "بيع",
            "نقل",
        }
    ),
    DEFENCE: frozenset(
        {
            "arms",
            "arm",
            "war",
            "uav",
            "uavs",
            "f",
            "armes",
            "arme",
            "char",
            "chars",
            "paz",
            "arma",
            "armas",
            "امن",
            "الامن",
            "بحري",
            "جوي",
            "الجوي",
            "الجويه",
            "حفظ",
        }
    ),
    PASSING: frozenset(
        {
            "while",
            "before",
            "after",
            "also",
            "avant",
            "apres",
            "aussi",
            "antes",
            "despues",
            "tambien",
            "قبل",
            "بعد",
            "ايضا",
            "critica",
            "criticas",
        }
    ),
    LINK: frozenset({"with", "avec", "con", "مع", "and", "et", "y", "e", "alongside"}),
    BETWEEN: frozenset({"between", "entre", "بين"}),
    # "waters" alone is maritime ("territorial waters"): only the bare word is civil. Words
    # whose stem would catch others: "saludó" (greeted), "تعليمات" (instructions), "fretted".
    CIVIL: frozenset({"water", "eau", "agua", "invest", "invests", "fret", "salud", "تعليم"}),
    PARTICIPANT: frozenset({"part", "parte", "joined", "join", "joins", "nations", "countries"}),
    # Articles between a preposition of place and a name: "in the Central African Republic".
    ARTICLE: frozenset({"the", "le", "la", "les", "l", "el", "los", "las", "del", "du", "des"}),
    # Prepositions of place: "in Congo", "en Centrafrique", "في مالي" name where something
    # happens, not who takes part.
    PLACE: frozenset(
        {"in", "inside", "near", "off", "en", "au", "aux", "dans", "pres", "في", "قرب", "داخل"}
    ),
}
_STEM_SETS = {flag: frozenset(stems) for flag, stems in _STEMS.items()}


def _stem_hit(word: str, stems: frozenset[str]) -> bool:
    return any(word[:k] in stems for k in range(3, min(len(word), 14) + 1))


@lru_cache(maxsize=50_000)
def cue_flags(norm: str) -> int:
    """Bitmask of the cue classes a normalised token belongs to."""
    forms = arabic_variants(norm)
    forms += [f[2:] for f in forms if f.startswith("ال") and len(f) > 4]
    flags = 0
    for flag in _FLAGS:
        exact = _EXACT.get(flag, frozenset())
        stems = _STEM_SETS.get(flag)
        if any(f in exact or (stems and _stem_hit(f, stems)) for f in forms):
            flags |= flag
    return flags


# ---------------------------------------------------------------------------------------
# One document, analysed once
# ---------------------------------------------------------------------------------------
WINDOW = 8  # tokens either side of a mention that count as its neighbourhood
NEAR = 5  # a candidate this close to a mention of Morocco's side is "next to" it
_PAD = 64  # running counts extend this far past the last token (> WINDOW + longest term)


@dataclass(slots=True)
class Analysis:
    """A tokenised document with its gazetteer mentions and cue flags."""

    doc: TokenizedDocument
    mentions: list[Mention]
    cues: list[int]
    bounds: list[tuple[int, int]]
    prefix: dict[int, list[int]]  # running_counts(cues)
    own: list[Mention] = field(default_factory=list)
    foreign: dict[str, list[Mention]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    candidate_rows: tuple[list[str], np.ndarray] | None = None  # built on first use

    @property
    def candidates(self) -> list[str]:
        """Foreign codes by first mention."""
        return list(self.foreign)

    def window_count(self, flag: int, windows: list[tuple[int, int]]) -> int:
        """Tokens of cue class ``flag`` over several windows (``0 <= lo``, ``hi`` at most
        ``WINDOW`` plus a term's length past the end)."""
        prefix = self.prefix[flag]
        return sum([prefix[hi] - prefix[lo] for lo, hi in windows])

    def count(self, flag: int, lo: int, hi: int) -> int:
        """Tokens of cue class ``flag`` among tokens ``lo`` to ``hi`` (clipped to the doc)."""
        prefix = self.prefix[flag]
        hi = min(hi, len(prefix) - 1)
        return prefix[hi] - prefix[min(max(lo, 0), hi)]


def running_counts(cues: list[int]) -> dict[int, list[int]]:
    """For each cue class, the tokens of that class before each position: every class at once,
    one array and one cumulative sum (every document's features count cues). Padded past the
    end with the total, so a window running over the last token needs no clipping (windows
    reach at most ``WINDOW`` plus a term's length beyond it)."""
    hits = (np.array([0, *cues], dtype=np.uint16)[:, None] & _FLAG_ARRAY) != 0
    return {
        flag: counts + counts[-1:] * _PAD
        for flag, counts in zip(_FLAGS, np.cumsum(hits, axis=0).T.tolist(), strict=True)
    }


def analyse(doc: TokenizedDocument, gazetteer: Gazetteer) -> Analysis:
    """Find the mentions of ``doc`` and the cue class of each of its tokens."""
    mentions = gazetteer.find(doc)
    cues = list(map(cue_flags, doc.norms))
    mentions = _resolve_ambiguous(mentions)
    analysis = Analysis(doc, mentions, cues, doc.bounds, running_counts(cues))
    for m in mentions:
        if m.code == SELF or m.kind == "self":
            analysis.own.append(m)
        else:
            analysis.foreign.setdefault(m.code, []).append(m)
            analysis.kinds[m.code] = m.kind
    return analysis


def _resolve_ambiguous(mentions: list[Mention]) -> list[Mention]:
    """A term shared by several codes ("Congolese": CD and CG) goes to the codes that the
    document also names unambiguously; when none is, every reading stays a candidate."""
    if len({m.token for m in mentions}) == len(mentions):
        return mentions  # the usual case: one code per matched term
    by_token: dict[int, list[Mention]] = defaultdict(list)
    for m in mentions:
        by_token[m.token].append(m)
    sure = {ms[0].code for ms in by_token.values() if len({m.code for m in ms}) == 1}
    kept: list[Mention] = []
    for ms in by_token.values():
        if len({m.code for m in ms}) > 1 and any(m.code in sure for m in ms):
            ms = [m for m in ms if m.code in sure]
        kept.extend(ms)
    return kept


def _log(x: float) -> float:
    return math.log1p(x)


def _sentence_cues(analysis: Analysis, sentences: Iterable[int], flag: int) -> int:
    return analysis.window_count(flag, [analysis.bounds[s] for s in sentences])


# ---------------------------------------------------------------------------------------
# Per candidate
# ---------------------------------------------------------------------------------------
TERM_TYPES = ("name", "demonym", "capital", "institution", "official", "programme")
CANDIDATE_FEATURES: tuple[str, ...] = (
    "mentions_log",
    "mention_share",
    "is_top",
    "rank_inv",
    "n_candidates_log",
    "first_pos",
    "last_pos",
    "early",
    "in_title",
    "title_with_own",
    "in_lead",
    "sentences_log",
    "cooc_own_log",
    "cooc_own_share",
    "near_own",
    "near_own_log",
    "own_proximity",
    "coop_in_cooc_log",
    "coop_window_log",
    "defence_window_log",
    "defence_sentences_log",
    "passing_window_log",
    "link_before",
    "between",
    "crowd_mean",
    "tail_only",
    "types_distinct",
    *(f"type_{t}" for t in TERM_TYPES),
    "is_org",
    "own_mentions_log",
    "own_in_title",
    "doc_tokens_log",
    "rival_share",
    "after_place",
    "org_in_doc",
    "with_top",
    "listed_with_other",
    "beside_force",
    "doc_has_programme",
    "doc_exercise_log",
    "defence_cooc_log",
    "strong_cooc_log",
    "exercise_sentence_share",
    "exercise_window_log",
    "participant_window_log",
    "list_size_log",
    "list_with_own",
)


def candidate_features(analysis: Analysis) -> tuple[list[str], np.ndarray]:
    """Codes of the foreign candidates and one feature row per candidate (worked out once per
    analysis: scoring and evidence both need them)."""
    if analysis.candidate_rows is None:
        analysis.candidate_rows = _candidate_features(analysis)
    return analysis.candidate_rows


def _candidate_features(analysis: Analysis) -> tuple[list[str], np.ndarray]:
    codes = analysis.candidates
    if not codes:
        return [], np.zeros((0, len(CANDIDATE_FEATURES)))
    doc, cues = analysis.doc, analysis.cues
    n_tokens = max(doc.n_tokens, 1)
    counts = {c: len(analysis.foreign[c]) for c in codes}
    total = sum(counts.values())
    order = sorted(codes, key=lambda c: (-counts[c], analysis.foreign[c][0].token))
    rank = {c: i + 1 for i, c in enumerate(order)}
    own_tokens = sorted(m.token for m in analysis.own)
    own_sentences = {m.sentence for m in analysis.own}
    own_in_title = any(m.sentence < doc.n_title_sentences for m in analysis.own)
    sentence_codes: dict[int, set[str]] = defaultdict(set)
    for code in codes:
        for m in analysis.foreign[code]:
            sentence_codes[m.sentence].add(code)
    lead = _lead_sentences(doc)
    top_sentences = {m.sentence for m in analysis.foreign[order[0]]}
    org_in_doc = any(analysis.kinds.get(c) == "org" for c in codes)
    has_programme = any(m.term_type == "programme" for c in codes for m in analysis.foreign[c])
    foreign_tokens = sorted(m.token for c in codes for m in analysis.foreign[c])
    exercise_log = _log(analysis.count(EXERCISE, 0, doc.n_tokens))
    chains = _enumerations(analysis)
    rows = []
    for code in codes:
        ms = analysis.foreign[code]
        first, last = ms[0].token, ms[-1].token
        sentences = {m.sentence for m in ms}
        cooc = sentences & own_sentences
        distances = [_nearest(own_tokens, m.token) for m in ms] if own_tokens else []
        nearest = min(distances, default=10_000)
        n_near = sum(d <= NEAR for d in distances)
        window = [(max(m.token - WINDOW, 0), m.token + m.n_tokens + WINDOW) for m in ms]
        types = [m.term_type for m in ms]
        mine = {m.token for m in ms}
        place = sum(_after_place(cues, m) for m in ms) / len(ms)
        lists = [chains[m.token] for m in ms if m.token in chains]
        rows.append(
            [
                _log(counts[code]),
                counts[code] / total,
                float(rank[code] == 1),
                1.0 / rank[code],
                _log(len(codes)),
                first / n_tokens,
                last / n_tokens,
                float(first / n_tokens < 0.15),
                float(any(s < doc.n_title_sentences for s in sentences)),
                float(own_in_title and any(s < doc.n_title_sentences for s in sentences)),
                float(bool(sentences & lead)),
                _log(len(sentences)),
                _log(len(cooc)),
                len(cooc) / len(sentences),
                float(n_near > 0),
                _log(n_near),
                1.0 / (1.0 + nearest / NEAR),
                _log(_sentence_cues(analysis, cooc, COOPERATION)),
                _log(analysis.window_count(COOPERATION, window)),
                _log(analysis.window_count(DEFENCE, window)),
                _log(_sentence_cues(analysis, sentences, DEFENCE)),
                _log(analysis.window_count(PASSING, window)),
                float(any(m.token > 0 and cues[m.token - 1] & LINK for m in ms)),
                float(any(analysis.count(BETWEEN, m.token - 4, m.token) for m in ms)),
                sum(len(sentence_codes[s]) - 1 for s in sentences) / len(sentences),
                float(first / n_tokens > 0.8),
                len(set(types)) / len(TERM_TYPES),
                *(types.count(t) / len(types) for t in TERM_TYPES),
                float(analysis.kinds.get(code) == "org"),
                _log(len(analysis.own)),
                float(own_in_title),
                _log(doc.n_tokens),
                max((counts[o] for o in codes if o != code), default=0) / total,
                place,
                float(org_in_doc),
                float(code != order[0] and bool(sentences & top_sentences)),
                float(any(_has_other_near(foreign_tokens, m.token, mine) for m in ms)),
                float(
                    any(analysis.count(DEFENCE, m.token - 2, m.token + m.n_tokens + 2) for m in ms)
                ),
                float(has_programme),
                exercise_log,
                _log(sum(analysis.count(DEFENCE, *analysis.bounds[s]) > 0 for s in cooc)),
                _log(sum(_is_strong(analysis, s) for s in cooc)),
                sum(analysis.count(EXERCISE, *analysis.bounds[s]) > 0 for s in sentences)
                / len(sentences),
                _log(analysis.window_count(EXERCISE, window)),
                _log(analysis.window_count(PARTICIPANT, window)),
                _log(max((len(codes_) for codes_, _ in lists), default=1) - 1),
                float(any(with_own for _, with_own in lists)),
            ]
        )
    return codes, np.asarray(rows, dtype=np.float64)


def _is_strong(analysis: Analysis, sentence: int) -> bool:
    """A sentence naming both sides with defence and cooperation words: the core of a
    cooperation report, as opposed to a side mention ("the Libyan dialogue in Rabat")."""
    lo, hi = analysis.bounds[sentence]
    return analysis.count(DEFENCE, lo, hi) > 0 and analysis.count(COOPERATION, lo, hi) > 0


def _after_place(cues: list[int], m: Mention) -> bool:
    """ "in Congo", "en Centrafrique", "في مالي", "بمالي", "in the Central African Republic",
    "en la República Centroafricana": a place, not a party."""
    if "ب" in m.proclitic:
        return True
    before = m.token - 1
    if before > 0 and cues[before] & ARTICLE:
        before -= 1
    return before >= 0 and bool(cues[before] & PLACE)


def _enumerations(analysis: Analysis) -> dict[int, tuple[frozenset[str], bool]]:
    """For each mention's first token, the codes of the enumeration it belongs to ("Senegal,
    Tunisia and Italy", "Moroccan, US and French troops", "وإيطاليا وتونس") and whether
    Morocco's side is one of them. Mentions chain when nothing but punctuation, a link word
    ("and", "et", "y", "with") or an article separates them ("Qatar, the United States and
    the United Kingdom")."""
    mentions = sorted(analysis.mentions, key=lambda m: m.token)
    out: dict[int, tuple[frozenset[str], bool]] = {}
    group: list[Mention] = []

    def close() -> None:
        codes = frozenset(m.code for m in group if m.code != SELF and m.kind != "self")
        with_own = any(m.code == SELF or m.kind == "self" for m in group)
        for m in group:
            out[m.token] = (codes, with_own)

    for m in mentions:
        if group:
            prev = group[-1]
            between = analysis.cues[prev.token + prev.n_tokens : m.token]
            listed = len(between) <= 2 and all(c & (LINK | ARTICLE) for c in between)
            if not (m.sentence == prev.sentence and listed):
                close()
                group = []
        group.append(m)
    if group:
        close()
    return out


def _nearest(sorted_tokens: list[int], token: int) -> int:
    """Distance from ``token`` to the closest of ``sorted_tokens`` (not empty)."""
    i = bisect_left(sorted_tokens, token)
    near = sorted_tokens[max(i - 1, 0) : i + 1]
    return min(abs(t - token) for t in near)


def _has_other_near(foreign_tokens: list[int], token: int, mine: set[int]) -> bool:
    """Another candidate within three tokens: "Tunisian and Senegalese contingents"."""
    lo, hi = bisect_left(foreign_tokens, token - 3), bisect_right(foreign_tokens, token + 3)
    return any(t not in mine for t in foreign_tokens[lo:hi])


def _lead_sentences(doc: TokenizedDocument) -> set[int]:
    """The first two body sentences, where a news lead names the parties."""
    return {doc.n_title_sentences, doc.n_title_sentences + 1}


# ---------------------------------------------------------------------------------------
# Per document (relevance context)
# ---------------------------------------------------------------------------------------
DOCUMENT_FEATURES: tuple[str, ...] = (
    "no_own",
    "own_mentions_log",
    "own_in_title",
    "own_first_pos",
    "own_share",
    "own_sentence_share",
    "n_candidates_log",
    "cooc_any",
    "cooc_max_log",
    "near_any",
    "coop_in_own_log",
    "defence_in_own_log",
    "coop_in_cooc_log",
    "defence_in_cooc_log",
    "defence_density",
    "title_foreign_and_own",
    "civil_density",
)


def document_features(analysis: Analysis) -> np.ndarray:
    """One row of document-level context features (see :data:`DOCUMENT_FEATURES`)."""
    doc = analysis.doc
    n_tokens = max(doc.n_tokens, 1)
    own, n_sentences = analysis.own, max(len(doc.sentences), 1)
    own_sentences = {m.sentence for m in own}
    n_foreign = sum(len(v) for v in analysis.foreign.values())
    cooc_per_code = [
        len({m.sentence for m in ms} & own_sentences) for ms in analysis.foreign.values()
    ]
    cooc_sentences = {
        m.sentence for ms in analysis.foreign.values() for m in ms if m.sentence in own_sentences
    }
    own_tokens = sorted(m.token for m in own)
    near = bool(own_tokens) and any(
        _nearest(own_tokens, m.token) <= NEAR for ms in analysis.foreign.values() for m in ms
    )
    title = set(range(doc.n_title_sentences))
    foreign_title = any(m.sentence in title for ms in analysis.foreign.values() for m in ms)
    return np.array(
        [
            float(not own),
            _log(len(own)),
            float(bool(own_sentences & title)),
            own[0].token / n_tokens if own else 1.0,
            len(own) / max(len(own) + n_foreign, 1),
            len(own_sentences) / n_sentences,
            _log(len(analysis.foreign)),
            float(bool(cooc_sentences)),
            _log(max(cooc_per_code, default=0)),
            float(near),
            _log(_sentence_cues(analysis, own_sentences, COOPERATION)),
            _log(_sentence_cues(analysis, own_sentences, DEFENCE)),
            _log(_sentence_cues(analysis, cooc_sentences, COOPERATION)),
            _log(_sentence_cues(analysis, cooc_sentences, DEFENCE)),
            analysis.count(DEFENCE, 0, n_tokens) / n_tokens,
            float(foreign_title and bool(own_sentences & title)),
            # A fisheries, university or ferry agreement reads like a defence one to the
            # words "cooperation agreement"; its sector words tell it apart.
            analysis.count(CIVIL, 0, n_tokens) / n_tokens,
        ],
        dtype=np.float64,
    )


def own_sentence_words(analysis: Analysis) -> list[str]:
    """Normalised words of the title and of the sentences naming Morocco's side."""
    doc = analysis.doc
    keep = set(range(doc.n_title_sentences)) | {m.sentence for m in analysis.own}
    words: list[str] = []
    for s in sorted(keep):
        lo, hi = analysis.bounds[s]
        words.extend(doc.norms[lo:hi])
    return words


# Changes whenever the features above change meaning or order: a model fitted under another
# schema cannot be used (its scorers expect other columns), and loading says so.
FEATURE_SCHEMA = "5:" + ",".join(CANDIDATE_FEATURES) + "|" + ",".join(DOCUMENT_FEATURES)
