"""``table.html``: the sortable, filterable samples table. Pure (returns HTML).

The rows live in ``data/index.js`` (see ``data.table_payload``); ``assets/table.js``
filters, sorts and pages them in the browser. This module only writes the
page's frame: the filter box, the per-column selects and the empty table.
"""

from __future__ import annotations

from pipeline.report import layout

HELP = ("Type words to match any column, or <code>genre:pop</code>, <code>split=valid</code>, "
        "<code>duration&gt;60</code>, <code>language_probability&lt;0.9</code>, <code>has:page</code>; "
        "terms combine with AND. Click a heading to sort.")


def render_table_page(total_rows: int, pages: int) -> str:
    """The samples page for an index of ``total_rows`` rows of which ``pages`` have a page."""
    controls = (
        '<div class="controls">'
        '<input id="filter" type="search" placeholder="filter: pop  tier:high  duration&gt;60" '
        'autocomplete="off" spellcheck="false">'
        '<select id="f-split"></select><select id="f-genre"></select><select id="f-tier"></select>'
        '<select id="f-language"></select>'
        '<label><input id="pagesonly" type="checkbox"> with page only</label>'
        '</div><div class="controls"><span><span id="rowcount">0</span> of <span id="total">0</span> samples</span>'
        '<button id="prev">&larr; prev</button><span id="pageinfo"></span><button id="next">next &rarr;</button>'
        '<select id="pagesize"><option>50</option><option selected>100</option><option>250</option>'
        '<option>1000</option></select><span class="muted">rows a page</span></div>'
    )
    body = (f"<h1>Samples <small>{total_rows:,} in the index, {pages:,} with a page</small></h1>"
            + layout.section("Index", controls + '<div style="overflow-x:auto"><table id="samples" class="grid">'
                             "<thead><tr></tr></thead><tbody></tbody></table></div>", note=HELP))
    return layout.page("songshard samples", body, depth=0, scripts=("data/index.js", "assets/table.js"),
                       active="table.html")
