//! Page numbers of the admin lists.

/// Rows per page of every admin list.
pub(crate) const PAGE_SIZE: i64 = 25;

/// Where a list is: the page shown, how many there are, and links to the neighbours.
pub(crate) struct Pager {
    pub page: i64,
    pub pages: i64,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

impl Pager {
    /// The page asked for in a query, clamped to a sane range (1 when absent).
    pub(crate) fn requested(page: Option<i64>) -> i64 {
        page.unwrap_or(1).clamp(1, 1_000_000)
    }

    /// The row offset of `page`.
    pub(crate) fn offset(page: i64) -> i64 {
        (page - 1) * PAGE_SIZE
    }

    /// The pager of `page` in a list of `total` rows; `href` links to another page.
    pub(crate) fn new(page: i64, total: i64, href: impl Fn(i64) -> String) -> Self {
        let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
        Pager {
            page,
            pages,
            prev_href: (page > 1).then(|| href(page - 1)),
            next_href: (page < pages).then(|| href(page + 1)),
        }
    }
}
