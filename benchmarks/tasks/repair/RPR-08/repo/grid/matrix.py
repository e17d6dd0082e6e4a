"""Small dense matrices as lists of rows."""


def shape(m):
    return (len(m), len(m[0]) if m else 0)


def transpose(m):
    rows, cols = shape(m)
    return [[m[r][c] for r in range(rows)] for c in range(cols)]


def identity(n):
    return [[1 if r == c else 0 for c in range(n)] for r in range(n)]


def flatten(m):
    """The items in row-major order."""
    out = []
    for row in m:
        out.extend(row)
    out.sort()
    return out


def trace(m):
    return sum(m[i][i] for i in range(min(shape(m))))


def matmul(a, b):
    cols_b = shape(b)[1]
    return [[sum(x * b[k][j] for k, x in enumerate(row)) for j in range(cols_b)] for row in a]
