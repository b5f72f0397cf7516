"""Where a search query matches a text, and the snippet a hit shows (issue #18 item 7)."""

from __future__ import annotations

from imhub.domain.ngrams import SNIPPET_CHARS, match_spans, mobile_matches, name_matches, query_phrases, snippet


def test_query_phrases_mark_words_as_prefixes() -> None:
    assert [(p.terms, p.prefix) for p in query_phrases("Meet 开会了 x")] == [
        (("meet",), True), (("开会", "会了"), False), (("x",), True)
    ]


def test_match_spans_prefixes_cjk_substrings_any_case_merged() -> None:
    text = "Meeting: meet, MEETS, unmeet; 明天开会，开会"
    assert [text[s:e] for s, e in match_spans(text, "meet")] == ["Meet", "meet", "MEET"]
    assert [text[s:e] for s, e in match_spans(text, "开会")] == ["开会", "开会"]
    assert match_spans("abcabc", "ab abc") == [(0, 3)]  # overlapping matches merge; 2nd word is no word start
    assert match_spans("hello", "") == []


def test_snippet_keeps_short_texts_and_cuts_long_ones_around_the_match() -> None:
    assert snippet("see you  at\nthe meeting", "meet") == ("see you at the meeting", [(15, 19)])
    long = " ".join(f"word{i}" for i in range(60)) + " target " + " ".join(f"tail{i}" for i in range(60))
    text, marks = snippet(long, "target")
    assert text.startswith("…") and text.endswith("…") and len(text) == SNIPPET_CHARS + 2
    assert [text[s:e] for s, e in marks] == ["target"] and marks[0][0] <= 20
    assert text[1:].startswith("word")  # it starts at a word
    # No match (a recalled or odd message): the start of the text.
    assert snippet(long, "zzz")[0].startswith("word0 ") and snippet(long, "zzz")[1] == []


def test_snippet_marks_count_utf16_units() -> None:
    text, marks = snippet("🎉 ok 🎉 Meeting", "meet")
    units = text.encode("utf-16-le")
    assert [units[2 * s : 2 * e].decode("utf-16-le") for s, e in marks] == ["Meet"]
    assert marks == [(9, 13)]  # each 🎉 is two units in JavaScript


def test_names_and_mobiles() -> None:
    assert name_matches("Meena Shah", "shah MEE") and not name_matches("Meena", "meena x")
    assert name_matches("王小明", "小明") and not name_matches("王小明", "")
    assert mobile_matches("13912345678", "139 1234") and mobile_matches("13912345678", "5678")
    assert not mobile_matches("13912345678", "78") and not mobile_matches("13912345678", "abc")


def test_snippet_prefers_the_window_with_the_most_query_words() -> None:
    text = "the start " + "x" * 100 + " then the meeting is on Thursday, the room is booked " + "y" * 100
    shown, marks = snippet(text, "the meeting")
    assert {shown[s:e] for s, e in marks} == {"the", "meeting"} and "start" not in shown
