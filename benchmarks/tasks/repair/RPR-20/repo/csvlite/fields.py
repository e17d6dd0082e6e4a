"""A small reader for comma-separated lines (no quoting)."""


def split_fields(line):
    """The fields of `line`, without the spaces around them."""
    return [field for field in line.split(",")]


def parse_row(line, types):
    """The fields converted by `types`, one callable per column."""
    fields = split_fields(line)
    if len(fields) != len(types):
        raise ValueError(f"expected {len(types)} fields, got {len(fields)}")
    return [convert(field) for convert, field in zip(types, fields)]


def join_fields(values):
    return ",".join(str(v) for v in values)


def column(lines, index):
    return [split_fields(line)[index] for line in lines]
