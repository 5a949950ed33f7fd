import pytest

from hdc.data.text import clean, split_sentences


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
