"""Page arithmetic for listings; pages are numbered from 1."""


def page_count(total, per_page):
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    return max(1, (total + per_page - 1) // per_page)


def page_items(items, page, per_page):
    start = (page - 1) * per_page
    return items[start : start + per_page]


def is_last_page(page, total, per_page):
    return page >= page_count(total, per_page)


def has_next(page, total, per_page):
    return is_last_page(page, total, per_page)


def has_previous(page):
    return page > 1


def page_links(page, total, per_page):
    """Which of 'prev' and 'next' a page offers, in that order."""
    links = []
    if has_previous(page):
        links.append("prev")
    if has_next(page, total, per_page):
        links.append("next")
    return links
