"""Decoding and extraction of article pages."""

from flows.extract import MIN_TEXT_CHARS, choose_text, decode_html, extract_page, is_extractable

PAGE = """<html><head><meta charset="{charset}"><title>T</title></head><body>
<nav><a href="/">Accueil</a> <a href="/maroc">Maroc</a></nav>
<div class="cookie">Nous utilisons des cookies.</div>
<article><h1>Une coopération naïve</h1>
<p>{body}</p><p>{body}</p></article>
<section class="comments"><div class="comment"><p>COMMENTAIRE: achetez plus de F-16 aux Américains!</p></div></section>
</body></html>"""
BODY = "Le ministre a rencontré son homologue pour parler de la coopération, une démarche jugée naïve par certains."


def test_declared_charset_wins_and_latin1_survives():
    content = PAGE.format(charset="iso-8859-1", body=BODY).encode("latin-1")
    assert "naïve" in decode_html(content, "text/html")
    assert "naïve" in decode_html(content, "text/html; charset=ISO-8859-1")


def test_undeclared_latin1_falls_back_without_mangling():
    content = PAGE.replace('<meta charset="{charset}">', "").format(body=BODY).encode("latin-1")
    assert "naïve" in decode_html(content, "text/html")


def test_header_charset_overrides_a_wrong_meta():
    content = PAGE.format(charset="utf-8", body=BODY).encode("cp1252")
    assert "naïve" in decode_html(content, "text/html; charset=windows-1252")


def test_extraction_keeps_the_article_and_drops_comments_and_menus():
    content = PAGE.format(charset="utf-8", body=BODY).encode()
    result = extract_page(content, "text/html; charset=utf-8", "https://o.example/a")
    assert "homologue" in result["text"] and "naïve" in result["text"]
    assert "COMMENTAIRE" not in result["text"] and "cookies" not in result["text"]


def test_fallback_to_the_feed_summary_says_why():
    fallback = choose_text({"text": ""}, "The summary.")
    assert (
        fallback.status == "fallback"
        and fallback.text == "The summary."
        and "no article text" in fallback.note
    )
    kept = choose_text(
        {"text": "x" * MIN_TEXT_CHARS, "title": "", "author": "", "date": ""}, "short"
    )
    assert kept.status == "ok"


def test_binary_types_are_not_extracted():
    assert is_extractable("text/html; charset=utf-8")
    assert not is_extractable("application/pdf")
    assert not is_extractable("image/jpeg")
