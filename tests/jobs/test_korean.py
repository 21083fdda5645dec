"""Offline text a founder reads as natural Korean: particles fit the word before them, and
no developer's note is left in what the user (or the PDF) sees."""

from __future__ import annotations

import pytest

from jobs.kinds.business_plan import offline_plan
from jobs.kinds.evaluation import offline_evaluation
from jobs.language.korean import particle

ANSWERS = {"projectName": "동네빵집", "industry": "식품 소매", "targetCustomers": "출근길 직장인",
           "problem": "아침을 거르는 직장인이 많다", "solution": "빵 정기 구독",
           "businessModel": "월 구독료"}  # fmt: skip


@pytest.mark.parametrize(
    ("word", "pair", "written"),
    [
        ("동네빵집", "은", "동네빵집은"), ("카페", "은", "카페는"),
        ("직장인", "을", "직장인을"), ("주부", "을", "주부를"),
        ("학생", "이", "학생이"), ("회사", "이", "회사가"),
        ("빵", "과", "빵과"), ("커피", "과", "커피와"),
        ("부산", "으로", "부산으로"), ("서울", "으로", "서울로"), ("대구", "으로", "대구로"),
        ("2030 세대", "을", "2030 세대를"), ("3", "을", "3을"), ("2", "을", "2를"),
        ("SaaS", "은", "SaaS은(는)"),  # no Korean reading to go by: both forms
    ],
)  # fmt: skip
def test_the_particle_fits_the_last_syllable(word: str, pair: str, written: str):
    assert particle(word, pair) == written


@pytest.mark.parametrize("owner", ["주부", "출근길 직장인"])
def test_the_offline_plan_has_no_particle_placeholders(owner: str):
    text = offline_plan(ANSWERS | {"projectName": "카페", "targetCustomers": owner}, "ko")
    assert "(는)" not in text and "(를)" not in text
    assert f"카페는 식품 소매 분야에서 {particle(owner, '을')} 위한 사업입니다" in text


def test_the_offline_evaluation_says_nothing_of_api_keys():
    plan = {"sections": [{"key": "market", "content": "시장 " * 40}]}
    for language in ("ko", "en"):
        feedback = offline_evaluation(plan, language)["overallFeedback"]
        assert "GEMINI" not in feedback and "API" not in feedback
