"""Title casing for headings and book titles."""

SMALL_WORDS = frozenset(
    {"a", "an", "and", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to"}
)


def title_case(text):
    """Every word capitalised, except small words after the first, which are lower-cased."""
    words = text.split()
    out = []
    for i, word in enumerate(words):
        lower = word.lower()
        if i > 0 and lower in SMALL_WORDS:
            out.append(word)
        else:
            out.append(word.capitalize())
    return " ".join(out)


def sentence_case(text):
    return text[:1].upper() + text[1:].lower()


def swap_case_words(text):
    return " ".join(word.swapcase() for word in text.split())


def acronym(text):
    """The capitalised first letters of the words that are not small words."""
    return "".join(w[0].upper() for w in text.split() if w.lower() not in SMALL_WORDS)
