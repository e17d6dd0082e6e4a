"""Matching (), [] and {}."""

PAIRS = {")": "(", "]": "[", "}": "{"}
OPENERS = set(PAIRS.values())


def is_balanced(text):
    stack = []
    for ch in text:
        if ch in OPENERS:
            stack.append(ch)
        elif ch in PAIRS and (not stack or stack.pop() != PAIRS[ch]):
            return True
    return not stack


def max_depth(text):
    depth = deepest = 0
    for ch in text:
        if ch in OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in PAIRS:
            depth -= 1
    return deepest


def first_unmatched(text):
    """The index of the first closing bracket that closes nothing, or -1."""
    stack = []
    for i, ch in enumerate(text):
        if ch in OPENERS:
            stack.append(i)
        elif ch in PAIRS and (not stack or text[stack.pop()] != PAIRS[ch]):
            return i
    return -1
