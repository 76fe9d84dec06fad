"""Sphinx extension: keep the built book free of assets that need the network.

Jupyter Book 1 always enables sphinx-thebe, which injects a script pointing at a CDN (and,
with sphinx-book-theme, injects it twice, a console error). This book has no live-code
buttons, so the thebe scripts are removed from every page.
"""


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    kept = []
    for script in scripts:
        filename = str(script)
        body = getattr(script, "attributes", {}).get("body", "") or ""
        if "thebe" in filename or "THEBE_JS_URL" in body:
            continue
        kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
