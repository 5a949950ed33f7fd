import pytest

from hdc.data.text import clean, split_paragraphs, split_sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("", []),
        ("   \n\t ", []),
        ("no punctuation at all just words", ["no punctuation at all just words"]),
        ("!!! ... ???", ["!!!", "...", "???"]),
        ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
        ("Directed by J. R. R. Tolkien! Really?", ["Directed by J. R. R. Tolkien!", "Really?"]),
        ("It was e.g. fine. And so was I. Then", ["It was e.g. fine.", "And so was I.", "Then"]),
        ('He said "wow." Then left.', ['He said "wow."', "Then left."]),
        ("a great movie.The plot was weak", ["a great movie.", "The plot was weak"]),
        ("The U.S. army came.", ["The U.S. army came."]),
    ],
)
def test_split_sentences(text, sentences):
    assert split_sentences(clean(text)) == sentences


def test_line_breaks_split_and_entities_unescape():
    text = "First part<br /><br />second part<br>third &amp; last"
    assert split_sentences(clean(text)) == ["First part", "second part", "third & last"]


@pytest.mark.parametrize(
    ("text", "paragraphs"),
    [
        ("", []),
        ("One. Two.", [["One.", "Two."]]),
        ("One.<br /><br />Two. Three.<br />Four", [["One."], ["Two.", "Three.", "Four"]]),  # IMDB: <br /><br />
        ("One\n\n\n\nTwo", [["One"], ["Two"]]),  # several blank lines: one paragraph break
        ("One.\n \t\nTwo.", [["One."], ["Two."]]),  # a line of white space is blank
        ("<br /><br />One.<br /><br />", [["One."]]),  # no empty paragraphs
        ("Mr.\n\nSmith came.", [["Mr. Smith came."]]),  # a sentence continued past a blank line stays whole
    ],
)
def test_split_paragraphs(text, paragraphs):
    assert split_paragraphs(clean(text)) == paragraphs
    assert split_sentences(clean(text)) == [sentence for paragraph in paragraphs for sentence in paragraph]
