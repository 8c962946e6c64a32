"""British -> American spelling, so "licence" and "license" are one term.

Applied by the tokenizer (to passages and questions alike) before stemming.
Only listed word families are rewritten: a general "-ise -> -ize" rule would
also turn "promise" or "exercise" into non-words.
"""

from __future__ import annotations

import re

# Whole-word stems (a word starting with the British stem and continuing with
# one of _ENDINGS is rewritten to the American stem plus the same ending).
_STEMS = {
    "licence": "license",
    "defence": "defense",
    "offence": "offense",
    "pretence": "pretense",
    "practis": "practic",
    "programme": "program",
    "catalogue": "catalog",
    "analogue": "analog",
    "dialogue": "dialog",
    "centre": "center",
    "theatre": "theater",
    "metre": "meter",
    "litre": "liter",
    "fibre": "fiber",
    "calibre": "caliber",
    "manoeuvr": "maneuver",
    "aluminium": "aluminum",
    "tyre": "tire",
    "grey": "gray",
    "plough": "plow",
    "sceptic": "skeptic",
    "jewellery": "jewelry",
    "cheque": "check",
    "paediatric": "pediatric",
    "oestrogen": "estrogen",
    "haemorrhag": "hemorrhag",
    "anaemi": "anemi",
    "anaesthe": "anesthe",
    "leukaemi": "leukemi",
    "diarrhoea": "diarrhea",
    "foetus": "fetus",
    "foetal": "fetal",
    "oesophag": "esophag",
    "tumour": "tumor",
    "colour": "color",
    "favour": "favor",
    "honour": "honor",
    "labour": "labor",
    "neighbour": "neighbor",
    "behaviour": "behavior",
    "harbour": "harbor",
    "humour": "humor",
    "rumour": "rumor",
    "vapour": "vapor",
    "flavour": "flavor",
    "endeavour": "endeavor",
    "armour": "armor",
    "vigour": "vigor",
    "odour": "odor",
    "travell": "travel",
    "cancell": "cancel",
    "modell": "model",
    "labell": "label",
    "fuell": "fuel",
    "signall": "signal",
    "counsell": "counsel",
}
for _verb in """
    organis recognis realis criticis apologis authoris capitalis categoris civilis emphasis
    finalis globalis harmonis hospitalis legalis liberalis maximis minimis mobilis modernis
    monopolis nationalis normalis optimis penalis privatis prioritis publicis rationalis
    specialis stabilis standardis summaris symbolis sympathis utilis visualis centralis
    characteris colonis democratis digitis economis energis familiaris formalis generalis
    immunis industrialis internationalis jeopardis memoris militaris neutralis patronis
    polaris popularis scrutinis stigmatis subsidis terroris theoris trivialis unionis
    urbanis vaporis westernis sanitis localis personalis randomis customis
    """.split():
    _STEMS[_verb] = _verb[:-1] + "z"
for _verb in ("analys", "paralys", "catalys", "dialys"):
    _STEMS[_verb] = _verb[:-1] + "z"

_ENDINGS = r"(?:e|es|ed|ing|er|ers|ation|ations|ational|s|d|ly|al|ally)?"
# "emphasis" is also an English noun: only its verb forms are rewritten.
_NOUN_CLASHES = {"emphasis": "emphasis", "analysis": "analysis", "paralysis": "paralysis", "dialysis": "dialysis"}
_PATTERN = re.compile(
    r"^(" + "|".join(sorted(map(re.escape, _STEMS), key=len, reverse=True)) + r")(" + _ENDINGS + r")$"
)


# The American spellings whose first letter differs from the British one's: that letter -> the British first letters.
FIRST_LETTERS_CHANGED: dict[str, tuple[str, ...]] = {}
for _british, _american in _STEMS.items():
    if _british[0] not in (_american[0], *FIRST_LETTERS_CHANGED.get(_american[0], ())):
        FIRST_LETTERS_CHANGED[_american[0]] = (*FIRST_LETTERS_CHANGED.get(_american[0], ()), _british[0])


def americanise(word: str) -> str:
    """The American spelling of a lowercase word (unchanged if not a listed family)."""
    if word in _NOUN_CLASHES:
        return word
    match = _PATTERN.match(word)
    if match is None:
        return word
    return _STEMS[match.group(1)] + match.group(2)
