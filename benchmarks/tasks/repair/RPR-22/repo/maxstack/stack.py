"""A stack that knows its largest item in constant time."""


class MaxStack:
    def __init__(self):
        self._items = []
        self._maxes = []

    def push(self, value):
        self._items.append(value)
        self._maxes.append(max(value, self._maxes[-1]) if self._maxes else value)

    def pop(self):
        if not self._items:
            raise IndexError("pop from an empty stack")
        return self._items.pop()

    def peek(self):
        if not self._items:
            raise IndexError("peek at an empty stack")
        return self._items[-1]

    def max(self):
        if not self._maxes:
            raise ValueError("max of an empty stack")
        return self._maxes[-1]

    def __len__(self):
        return len(self._items)
