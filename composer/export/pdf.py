"""article.pdf: the exported page itself (html_document, the same stylesheet) laid out for print
by WeasyPrint. The stylesheet's print rules give page numbers and keep each figure with its
caption (assets/article.css, @media print).

WeasyPrint needs Pango, a system library: where it cannot load, PdfUnavailable says so in one
line and the bundle's other formats are written all the same.
"""
from __future__ import annotations

from composer.export.base import FormatUnavailable


class PdfUnavailable(FormatUnavailable):
    """WeasyPrint or a system library it needs (Pango) is missing."""


def pdf_bytes(document_html: str) -> bytes:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: cannot load library 'libpango-1.0-0'
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PdfUnavailable(f"PDF not exported: WeasyPrint cannot load ({reason}); "
                             "install it with its system libraries (Debian: libpango-1.0-0)") from None
    # The page holds only embedded pictures (data: URLs): nothing else is fetched, no file, no network.
    fetcher = weasyprint.URLFetcher(allowed_protocols={"data"})
    return weasyprint.HTML(string=document_html, url_fetcher=fetcher).write_pdf()
