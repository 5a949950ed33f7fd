"""Raw text -> clean text -> sentences. Pure Python, no torch: the one place where text is cut up."""

import html
import re

# IMDB marks paragraphs with <br /> tags and escapes a few characters as HTML entities.
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)

# A sentence ends after . ! ? and one closing quote or bracket (captured, to stay with the sentence),
# followed by white space or glued to a capitalised word after a lower-case one ("a great movie.The
# plot ..."); and at line breaks. No look-behind before the punctuation keeps the scan fast.
_BOUNDARY = re.compile(r"([.!?]+[\"')\]]?)(?:\s+|(?<=[a-z]{2}[.!?])(?=[A-Z]))|\s*\n\s*")

# A piece that ends in a title or an initial ("Mr.", "Dr.", "J.") does not end a sentence.
_ABBREVIATION = re.compile(
    r"(?:^|\W)(?:(?i:mr|mrs|ms|dr|st|sgt|capt|lt|col|gen|prof|jr|sr|vs|mt|e\.g|i\.e)|[A-HJ-Z])\.$"
)
_ABBREVIATION_SPAN = 8  # the longest match above ("-prof.") fits in a sentence's last 8 characters


def clean(text: str) -> str:
    """Undo the web markup of review text: <br /> becomes a line break, entities become characters."""
    return html.unescape(_LINE_BREAK.sub("\n", text))


def split_sentences(text: str) -> list[str]:
    """Split cleaned text into non-empty sentences; text without punctuation is one sentence."""
    parts = _BOUNDARY.split(text)  # text, its end punctuation (None at a line break), text, ...
    sentences: list[str] = []
    for piece, end in zip(parts[::2], [*parts[1::2], None], strict=True):
        piece = (piece + end if end else piece).strip()
        if not piece:
            continue
        if sentences and _ABBREVIATION.search(sentences[-1], max(0, len(sentences[-1]) - _ABBREVIATION_SPAN)):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences
