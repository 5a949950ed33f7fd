"""Raw text -> clean text -> sentences. Pure Python, no torch: the one place where text is cut up."""

import html
import re

# IMDB marks paragraphs with <br /> tags and escapes a few characters as HTML entities.
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)

# A sentence ends at a line break, or at . ! ? (possibly followed by a closing quote or bracket)
# followed by white space or glued to a capitalised word ("a great movie.The plot ...").
_BOUNDARY = re.compile(
    r"\s*\n\s*"
    r"|(?<=[.!?])\s+"
    r"|(?<=[.!?][\"')\]])\s+"
    r"|(?<=[a-z]{2}[.!?])(?=[A-Z])"
)

# A piece that ends in a title or an initial ("Mr.", "Dr.", "J.") does not end a sentence.
_ABBREVIATION = re.compile(
    r"(?:^|\W)(?:(?i:mr|mrs|ms|dr|st|sgt|capt|lt|col|gen|prof|jr|sr|vs|mt|e\.g|i\.e)|[A-HJ-Z])\.$"
)


def clean(text: str) -> str:
    """Undo the web markup of review text: <br /> becomes a line break, entities become characters."""
    return html.unescape(_LINE_BREAK.sub("\n", text))


def split_sentences(text: str) -> list[str]:
    """Split cleaned text into non-empty sentences; text without punctuation is one sentence."""
    sentences: list[str] = []
    for piece in _BOUNDARY.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if sentences and _ABBREVIATION.search(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences
