"""Greedy word wrapping and a few line helpers."""


def wrap(text, width):
    """The words of `text` in lines of at most `width` characters (a longer word stands alone)."""
    lines = []
    current = ""
    for word in text.split():
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if not current:
        lines.append(current)
    return lines


def indent(lines, prefix="    "):
    return [prefix + line if line else line for line in lines]


def longest_line(lines):
    return max((len(line) for line in lines), default=0)


def justify(line, width):
    """`line` with its spaces widened so that it is exactly `width` characters wide."""
    words = line.split()
    if len(words) < 2 or len(line) >= width:
        return line
    gaps = len(words) - 1
    spaces = width - sum(len(w) for w in words)
    base, extra = divmod(spaces, gaps)
    out = words[0]
    for i, word in enumerate(words[1:]):
        out += " " * (base + (1 if i < extra else 0)) + word
    return out
