"""Raw text -> clean text -> paragraphs of sentences. Pure Python, no torch: the one place where text is cut up."""

import html
import re

# IMDB marks paragraphs with <br /> tags and escapes a few characters as HTML entities.
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)

# A sentence ends after . ! ? and one closing quote or bracket (captured, to stay with the sentence),
# followed by white space or glued to a capitalised word after a lower-case one ("a great movie.The
# plot ..."); and at line breaks. The white space is captured too: a blank line in it ends a paragraph.
# No look-behind before the punctuation keeps the scan fast.
_BOUNDARY = re.compile(r"([.!?]+[\"')\]]?)(\s+|(?<=[a-z]{2}[.!?])(?=[A-Z]))|(\s*\n\s*)")

# A piece that ends in a title or an initial ("Mr.", "Dr.", "J.") does not end a sentence.
_ABBREVIATION = re.compile(
    r"(?:^|\W)(?:(?i:mr|mrs|ms|dr|st|sgt|capt|lt|col|gen|prof|jr|sr|vs|mt|e\.g|i\.e)|[A-HJ-Z])\.$"
)
_ABBREVIATION_SPAN = 8  # the longest match above ("-prof.") fits in a sentence's last 8 characters


def clean(text: str) -> str:
    """Undo the web markup of review text: <br /> becomes a line break, entities become characters."""
    return html.unescape(_LINE_BREAK.sub("\n", text))


def split_paragraphs(text: str) -> list[list[str]]:
    """Split cleaned text into paragraphs (at blank lines: IMDB's <br /><br />, a double newline
    elsewhere) of non-empty sentences; text without punctuation or blank lines is one sentence, one
    paragraph. A sentence continued past a blank line (after an abbreviation) stays in its first
    paragraph, so the sentences do not depend on where paragraphs end."""
    parts = [*_BOUNDARY.split(text), None, None, None]  # text, end punctuation, white space after it, line break, ...
    paragraphs: list[list[str]] = []
    sentences: list[str] = []  # of the paragraph being read
    for i in range(0, len(parts) - 3, 4):
        piece, end, space, line_break = parts[i : i + 4]
        piece = (piece + end if end else piece).strip()
        last = sentences or (paragraphs[-1] if paragraphs else None)  # where the previous sentence is
        if piece and last and _ABBREVIATION.search(last[-1], max(0, len(last[-1]) - _ABBREVIATION_SPAN)):
            last[-1] = f"{last[-1]} {piece}"
        elif piece:
            sentences.append(piece)
        if sentences and (space or line_break or "").count("\n") >= 2:  # white space holding a blank line
            paragraphs.append(sentences)
            sentences = []
    return paragraphs + [sentences] if sentences else paragraphs


def split_sentences(text: str) -> list[str]:
    """The sentences of cleaned text, paragraphs ignored."""
    return [sentence for paragraph in split_paragraphs(text) for sentence in paragraph]
