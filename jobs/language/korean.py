"""Korean particles that fit the word before them: 은/는, 이/가, 을/를, 과/와, 으로/로.

A particle's form depends on whether the word's last syllable ends in a consonant (받침):
"동네빵집은", "카페는". Digits are read as Korean numbers; a word ending in anything else
(Latin letters, symbols) gets both forms, as Korean writing does when unsure: "SaaS은(는)".
"""

from __future__ import annotations

FIRST, LAST = 0xAC00, 0xD7A3  # the Hangul syllables
RIEUL = 8  # ㄹ as a final: "서울로", not "서울으로"
# does the Korean reading of the digit end in a consonant: 영 일 이 삼 사 오 육 칠 팔 구
DIGIT_FINAL = {"0": 21, "1": RIEUL, "2": 0, "3": 16, "4": 0, "5": 0, "6": 1, "7": RIEUL,
               "8": RIEUL, "9": 0}  # fmt: skip

PAIRS = {"은": "는", "이": "가", "을": "를", "과": "와", "으로": "로"}


def _final(word: str) -> int | None:
    """The last syllable's final consonant (0: none); None when it cannot be told."""
    last = word.rstrip()[-1:] or " "
    if FIRST <= ord(last) <= LAST:
        return (ord(last) - FIRST) % 28
    return DIGIT_FINAL.get(last)


def particle(word: str, after_consonant: str) -> str:
    """`word` with the particle that fits it; `after_consonant` names the pair by its form
    after a consonant: particle("동네빵집", "은") → "동네빵집은", ("카페", "은") → "카페는"."""
    after_vowel = PAIRS[after_consonant]
    final = _final(word)
    if final is None:
        return f"{word}{after_consonant}({after_vowel})"
    if after_consonant == "으로":
        return word + ("로" if final in (0, RIEUL) else "으로")
    return word + (after_consonant if final else after_vowel)
