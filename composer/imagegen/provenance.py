"""What a generated picture carries wherever it goes (EU AI Act Art. 50: content an AI made is
marked as such, in a machine-readable way and for the reader): the caption label, the XMP
packet in every exported copy (IPTC digital source type "trainedAlgorithmicMedia") and the
front matter's list. The one place these words and that packet are decided; the exports call it.
"""
from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from composer.article import Article, Figure, Generated

LABEL = "Generated illustration"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MAX_XMP_PROMPT = 1000  # the prompt in the XMP: enough to say what was asked, never a large payload


def caption_text(figure: Figure) -> str:
    """The caption as exports show it: a generated picture's always opens with the label, so a
    writer can reword the caption but not lose the label (an empty caption is the label alone)."""
    caption = figure.caption.strip()
    if figure.generated is None or figure.image is None:
        return caption
    if caption.lower().startswith(LABEL.lower()):
        return caption  # the writer wrote the label themselves: not twice
    return f"{LABEL}: {caption}" if caption else LABEL


def xmp_packet(generated: Generated) -> bytes:
    """An XMP packet saying the picture was made by a trained model (IPTC Extension's
    DigitalSourceType), with the engine, model, prompt and seed as its description and creator
    tool. Every value is XML-escaped: the prompt is the writer's or the model's text."""
    tool = f"{generated.engine} {generated.model}".strip()
    description = (f"{LABEL}. Prompt: {generated.prompt[:MAX_XMP_PROMPT]} (seed {generated.seed}, "
                   f"{generated.size})")
    xml = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        f' Iptc4xmpExt:DigitalSourceType={quoteattr(DIGITAL_SOURCE_TYPE)}'
        f' xmp:CreatorTool={quoteattr(tool)}>'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(description)}</rdf:li></rdf:Alt>'
        '</dc:description>'
        '</rdf:Description></rdf:RDF></x:xmpmeta>'
        '<?xpacket end="w"?>'
    )
    return xml.encode("utf-8")


def front_matter_entries(article: Article) -> list[dict[str, Any]]:
    """One entry per generated picture shown, numbered as the article's pictures are (1 = the
    first picture): for the .md front matter, which lists them."""
    entries = []
    shown = [b for b in article.blocks if isinstance(b, Figure) and b.image is not None]
    for number, fig in enumerate(shown, 1):
        g = fig.generated
        if g is not None:
            entries.append({"picture": number, "engine": g.engine, "model": g.model, "prompt": g.prompt,
                            "seed": g.seed, "size": g.size, "digital_source_type": DIGITAL_SOURCE_TYPE})
    return entries
