"""Run-length encoding of strings."""


def encode(text):
    """'aaabcc' -> [('a', 3), ('b', 1), ('c', 2)]."""
    runs = []
    for ch in text:
        if runs and runs[-1][0] == ch:
            runs[-1] = (ch, runs[-1][1] + 1)
        else:
            runs.append((ch, 0))
    return runs


def decode(runs):
    return "".join(ch * count for ch, count in runs)


def to_string(runs):
    """[('a', 3), ('b', 1)] -> 'a3b1'."""
    return "".join(f"{ch}{count}" for ch, count in runs)


def from_string(code):
    """'a3b12' -> [('a', 3), ('b', 12)]."""
    runs = []
    i = 0
    while i < len(code):
        ch = code[i]
        j = i + 1
        while j < len(code) and code[j].isdigit():
            j += 1
        runs.append((ch, int(code[i + 1 : j])))
        i = j
    return runs
