"""The browser editor: compose an illustrated article, edit it block by block, export it.

    python app.py [--model embedded|gguf:PATH|xcomposer2[:ID_OR_PATH]|openai:URL] [--library FOLDER]
                  [--data DIR] [--host 127.0.0.1] [--port 7860] [--auth USER:PASS]

Gradio UI only: layout and event wiring. What a writer's events do is composer.editor_session's
(one EditorSession per browser tab, held in a SessionRegistry and closed when the tab closes);
articles are saved under the data folder by composer.workspace, and the browser keeps only the
id of its article, so a reload or a browser restart loses nothing. Only events that run the
model share the model's queue; everything else (selecting, text edits, swaps, undo/redo,
export) runs at once, whoever is composing.
"""
from __future__ import annotations

import argparse
import hashlib
import html
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import gradio as gr

from composer.article import Article, Figure, Paragraph
from composer.check import attribution_of, check_article, flag_lines, flags_of, marked_sentences, note_passages
from composer.editor_session import (
    EditorSession,
    Proposal,
    SessionRegistry,
    Update,
    block_key,
    display_name,
    figure_prompt,
    photo_statuses,
    picture_name,
    picture_options,
)
from composer.export import warm_up as export_warm_up
from composer.images import MAX_FILE_BYTES, ImageError, LoadedImage
from composer.interface_text import LABELS_ZH, interface_language, say, wait_words
from composer.job_clock import JobClock
from composer.planner import edit as edits
from composer.planner.request import RequestError, parse_seed, request_from_json
from composer.planner.segment import segment
from composer.retrieval import LibraryError
from composer.services import ServiceError, Services, add_to_library, library_summary, load_services, plural
from composer.shown_files import ShownFiles
from composer.workspace import Workspace
from composer.writers import WriterArticles

MODEL = "model"  # the concurrency group of every event that runs the model
IMAGEGEN = "imagegen"  # the image engine's own queue: a picture never waits behind a model edit, nor one for it
PRIVATE = "private"  # UI-only events: not listed on the API page, not callable from programs

# The article pane reads like the exported page (assets/article.css): serif prose, quiet
# captions; each block's tools stay small under it. Columns wrap to full width on narrow screens.
EDITOR_CSS = """
#article, #draft { --prose: "Iowan Old Style", "Palatino Linotype", Palatino, Georgia, "Noto Serif",
  "Liberation Serif", "DejaVu Serif", "Noto Serif CJK SC", serif; }
#article .article-title { font-family: var(--prose); font-size: 2.1rem; line-height: 1.15; margin: 0.4rem 0 0.8rem; }
#article .c-block, #article .c-block .styler, #article .c-block .block { border: none !important; box-shadow: none;
  background: transparent; }
#article .c-block { margin: 0 0 0.6rem; }
#article .c-block .row { background: transparent; }
#article .block-text textarea { font-family: var(--prose); font-size: 1.08rem; line-height: 1.65; color: #1f1d1a;
  background: transparent; border: 1px solid transparent; padding: 0.2rem 0.3rem; }
#article .block-text textarea:hover, #article .block-text textarea:focus { border-color: #e4ded4; background: #fdfcf9; }
#article .c-heading .block-text textarea { font-size: 1.45rem; font-weight: 700; line-height: 1.25; }
#article .block-tools { gap: 0.3rem; opacity: 0.55; }
#article .c-block:hover .block-tools, #article .c-block:focus-within .block-tools { opacity: 1; }
#article .block-tools button { flex: 0 0 auto; min-width: 0; }
#article .figure-image img { border-radius: 4px; }
#article .caption textarea { font-family: var(--prose); font-style: italic; text-align: center; color: #6b655c; }
#article .empty-slot { color: #8a3b12; }
#article .generated-badge { display: inline-block; font: 600 0.75rem/1.4 system-ui, sans-serif; color: #fff;
  background: #5b4a8a; border-radius: 3px; padding: 0 0.4rem; margin: 0.2rem 0; }
#article .candidates { gap: 0.5rem; flex-wrap: wrap; }
#article .candidates button.thumb { flex: 0 0 auto; min-width: 0; display: flex; flex-direction: column;
  gap: 0.2rem; padding: 0.25rem; font-size: 0.8rem; font-weight: 400; max-width: 8.5rem; }
#article .candidates button.thumb img { width: 8rem; height: 6rem; object-fit: cover; border-radius: 3px;
  margin: 0; }
#article .candidates-label { font-size: 0.85rem; color: #6b655c; }
#article .claims { font-size: 0.9rem; color: #6b4a12; background: #fff8e6; border-left: 3px solid #e0a526;
  padding: 0.3rem 0.6rem; margin: 0.2rem 0 0.3rem; }
#article .proposal { background: #f3f8f1; border-left: 3px solid #6aa84f !important; padding: 0.3rem 0.6rem; }
#article .proposal-text p { font-family: var(--prose); font-size: 1.05rem; line-height: 1.6; margin: 0.2rem 0; }
#article .proposal-label { font-size: 0.85rem; color: #3d6b2a; }
#article .proposal .block-tools { opacity: 1; }
#article .claims blockquote { margin: 0.2rem 0 0; font-style: italic; }
#article .claims mark { background: #ffd97a; padding: 0 0.1em; }
#article details.sources { font-size: 0.85rem; color: #555; margin: 0.1rem 0 0.4rem; }
#article details.sources blockquote { margin: 0.1rem 0 0.3rem 0.8rem; color: #2f5d3a; font-style: italic; }
#draft .draft { font-family: var(--prose); font-size: 1.05rem; line-height: 1.6; color: #444; }
#draft .draft p { margin: 0 0 0.7rem; }
#draft .draft h2, #draft .draft h3, #draft .draft h4 { font-family: var(--prose); margin: 0.8rem 0 0.4rem; }
"""


# "Copy article" puts the article on the clipboard as rich HTML (pictures inline) and as plain
# text. A browser lets a page write the clipboard only during the writer's click, and the HTML
# comes from the server after it: so the click writes a ClipboardItem at once whose contents are
# a promise, which the next step fulfils with the server's HTML (or rejects: nothing to copy).
COPY_START_JS = """() => {
  const pending = {};
  const html = new Promise((resolve, reject) => { pending.resolve = resolve; pending.reject = reject; });
  html.catch(() => {});
  window.composerCopy = pending;
  const blocks = "h1, h2, h3, h4, h5, h6, p, li, pre, figcaption";
  const plain = h => [...new DOMParser().parseFromString(h, "text/html").querySelectorAll(blocks)]
    .map(e => e.textContent).join("\\n\\n");
  if (window.ClipboardItem && navigator.clipboard && navigator.clipboard.write) {
    pending.written = navigator.clipboard.write([new ClipboardItem({
      "text/html": html.then(h => new Blob([h], {type: "text/html"})),
      "text/plain": html.then(h => new Blob([plain(h)], {type: "text/plain"})),
    })]);
    pending.written.catch(() => {});
  }
  return [];
}"""
COPY_FINISH_JS = """(h) => {
  const pending = window.composerCopy;
  if (!pending) return [];
  window.composerCopy = null;
  if (!h) { pending.reject(new Error("nothing to copy")); return []; }
  pending.resolve(h);
  const say = text => { const s = document.querySelector("#status"); if (s) s.textContent = text; };
  if (!pending.written) {
    say("⚠️ This browser cannot copy rich text: use Download .html and copy from the page.");
  } else {
    pending.written.catch(e => say("⚠️ The browser did not copy the article (" + e.message + ")."));
  }
  return [];
}"""

# The Export row's downloads, by write_bundle's key: one per format, the zip of all, article.json.
DOWNLOADS = {"zip": "Download .zip", "html": "Download .html", "docx": "Download .docx", "pdf": "Download .pdf",
             "wp": "Download WordPress", "markdown": "Download .md", "json": "Download article.json"}
# Interface labels in English and Chinese: the browser's language picks one (keys are the English).
I18N = gr.I18n(en={key: key for key in LABELS_ZH}, zh=LABELS_ZH)
t = I18N


def status_markdown(text: str, language: str = "en") -> str:
    # Status text can hold model or writer text: it is shown as text, never as markup. It is
    # said in the writer's language (the labels' translation is the browser's, this the server's).
    return html.escape(say(text, language))


def draft_html(text: str) -> str:
    """The text the model has written so far, as the article will look: headings and paragraphs,
    not Markdown marks. Model text is escaped; only our tags are markup."""
    parts = []
    for block in segment(text):
        body = html.escape(block.text)
        if block.is_heading:
            level = min(max(block.level, 2), 4)
            parts.append(f"<h{level}>{body}</h{level}>")
        else:
            parts.append(f"<p>{body}</p>")
    return f'<div class="draft">{"".join(parts)}</div>'


def claims_html(flags, language: str = "en") -> str:
    """The sentences of a paragraph that the materials do not support, the claims marked. Model
    text is escaped piece by piece; only our <mark> tags are markup."""
    rows = ["".join(f"<mark>{html.escape(text)}</mark>" if flagged else html.escape(text) for text, flagged in pieces)
            for pieces in marked_sentences(flags)]
    claims = ", ".join(dict.fromkeys(html.escape(f.claim) for f in flags))
    return (f'<div class="claims"><span class="claims-label">{say("Not in your materials:", language)}</span> {claims}'
            + "".join(f"<blockquote>{row}</blockquote>" for row in rows) + "</div>")


def check_verdicts(article: Article | None) -> tuple:
    """What the check says of an article, without its words: each flag, each sentence's verdict.
    A text saved with the same verdicts needs no redraw; a new flag does."""
    if article is None:
        return ()
    flags = tuple((i, f.claim, f.reason) for i, fs in sorted(flags_of(article).items()) for f in fs)
    sentences, _ = attribution_of(article)
    return flags, tuple((a.block, a.index, a.status) for a in sentences)


def sources_html(article: Article, index: int, language: str = "en") -> str:
    """Where a paragraph's sentences come from: each supported sentence with the passage of the
    writer's notes it rests on, folded away until clicked. All text escaped."""
    sentences, passages = attribution_of(article)
    notes = note_passages(article)  # a heading citing the outline it came from is no source
    rows = [(s.text, passages[c.passage]) for s in sentences if s.block == index and s.status == "supported"
            and s.where != "heading" for c in s.cites[:1] if c.passage in notes]
    if not rows:
        return ""
    items = "".join(f"<li>{html.escape(text)}<blockquote>{html.escape(source)}</blockquote></li>"
                    for text, source in rows)
    summary = html.escape(say(f"Sources ({len(rows)})", language))
    return f'<details class="sources"><summary>{summary}</summary><ul>{items}</ul></details>'


def proposal_html(p: Proposal, language: str = "en") -> str:
    """The model's new text, to read beside the old: escaped, as paragraphs."""
    label = say("New paragraph" if not p.old else "New text", language)
    body = "".join(f"<p>{html.escape(b.text)}</p>" for b in p.new if isinstance(b, Paragraph))
    return f'<div class="proposal-text"><span class="proposal-label">{label}:</span>{body}</div>'


def title_html(article: Article) -> str:
    return f'<h1 class="article-title">{html.escape(article.title)}</h1>'


def build(services: Services, workspace: Workspace, sessions: SessionRegistry) -> gr.Blocks:
    library = services.library
    model_queue = dict(concurrency_id=MODEL, concurrency_limit=services.model_slots, api_visibility=PRIVATE)
    image_queue = dict(concurrency_id=IMAGEGEN, api_visibility=PRIVATE,
                       concurrency_limit=services.imagegen.workers if services.imagegen is not None else 1)
    at_once = dict(concurrency_limit=None, api_visibility=PRIVATE)

    def session_of(request: gr.Request) -> EditorSession:
        s = sessions.get(request.session_hash)
        s.user = request.username  # with --auth, the articles it makes are this user's alone
        # The language the browser asks for, as its labels follow it: status lines are said in it.
        s.language = interface_language(request.headers.get("accept-language"))
        return s

    # Pictures are handed to Gradio from a folder of their own: the data folder is never one that
    # Gradio serves by path (it holds article.json, history.json and the browser secret).
    shown_files = ShownFiles()
    writers = WriterArticles(workspace)
    job_clock = JobClock()  # how long model jobs take here, for a waiting writer's estimate

    with gr.Blocks(title="composer", delete_cache=(3600, 24 * 3600)) as demo:
        article_id = gr.BrowserState(None, storage_key="composer-article", secret=workspace.browser_secret())
        # Who this browser's writer is, without --auth: a random token it keeps (see composer.writers).
        writer_token = gr.BrowserState(None, storage_key="composer-writer", secret=workspace.browser_secret())
        # (tab, version) of the article the view shows: the view redraws when it changes. The
        # article itself stays in the tab's session; a State holds only this small token.
        shown = gr.State(None)
        def header_text(language: str = "en") -> str:
            return say(f"# composer\nIllustrated articles. {services.describe()}", language)

        # Drawn again on each page load and library change: it counts the library's pictures.
        header = gr.Markdown(header_text(), elem_id="header")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=340, elem_id="request"):
                title = gr.Textbox(label=t("Title"), elem_id="title")
                outline = gr.Textbox(label=t("Outline (one point per line)"), lines=4)
                materials = gr.Textbox(label=t("Materials (facts, notes)"), lines=5)
                style = gr.Textbox(label=t("Style"))
                with gr.Row():
                    length = gr.Slider(100, 2000, value=400, step=50, label=t("Length (words)"), elem_id="length")
                    language = gr.Radio(["en", "zh"], value="en", label=t("Language"))
                with gr.Row():
                    count = gr.Dropdown(["auto"] + [str(n) for n in range(0, 13)], value="auto", label=t("Pictures"))
                    seed = gr.Number(value=0, precision=0, label=t("Seed"))
                photos = gr.File(label=t("Your photos"), file_count="multiple", file_types=["image"], type="filepath",
                                 elem_id="photos")
                photo_report = gr.Markdown(elem_id="photo-status")
                with gr.Row():
                    compose_btn = gr.Button(t("Compose"), variant="primary", elem_id="compose")
                    stop_btn = gr.Button(t("Stop"), variant="stop", elem_id="stop")
                with gr.Row():
                    new_btn = gr.Button(t("New article"), size="sm")
                    open_btn = gr.UploadButton(t("Open article.json or .zip"), file_types=[".json", ".zip"],
                                               size="sm", elem_id="open")
                with gr.Accordion(t("Your articles"), open=False, elem_id="your-articles") as articles_box:
                    articles_list = gr.Radio([], show_label=False, elem_id="articles-list")
                    with gr.Row():
                        article_open_btn = gr.Button(t("Open"), size="sm")
                        article_copy_btn = gr.Button(t("Duplicate"), size="sm")
                        article_delete_btn = gr.Button(t("Delete article"), size="sm", variant="stop")
                        article_undelete_btn = gr.Button(t("Undo delete"), size="sm")
                with gr.Accordion(t("Picture library"), open=False, elem_id="library"):
                    library_info = gr.Markdown(html.escape(library_summary(library)), elem_id="library-info")
                    if library is not None:
                        library_add = gr.File(label=t("Add pictures to the library"), file_count="multiple",
                                              file_types=["image"], type="filepath")
                        resync_btn = gr.Button(t("Re-sync the library"), size="sm")
                        with gr.Row():
                            library_query = gr.Textbox(placeholder=t("Search the library by text"), show_label=False,
                                                       container=False, scale=3)
                            library_search_btn = gr.Button(t("Search"), size="sm", scale=1)
                        library_hits = gr.Gallery(label=t("Found"), columns=4, height=220, allow_preview=True,
                                                  object_fit="cover", buttons=[])
            with gr.Column(scale=3, min_width=340, elem_id="article-pane"):
                status = gr.Markdown("Fill in a title and press Compose.", elem_id="status")
                with gr.Row():
                    undo_btn = gr.Button(t("Undo"), size="sm")
                    redo_btn = gr.Button(t("Redo"), size="sm")
                    export_btn = gr.Button(t("Export"), size="sm")
                    copy_btn = gr.Button(t("Copy article"), size="sm", elem_id="copy-article")
                    copy_html = gr.Textbox(visible=False)
                    with_sources = gr.Checkbox(label=t("Sources in the export"), value=False, container=False,
                                               elem_id="with-sources")
                with gr.Row():
                    # One download per format after Export; the zip holds them all.
                    downloads = {key: gr.DownloadButton(t(label), visible=False, size="sm")
                                 for key, label in DOWNLOADS.items()}
                instruction = gr.Textbox(
                    label=t("Instruction for Rewrite / Expand / Shorten, or what a new paragraph is about"), lines=1,
                    elem_id="instruction")
                draft = gr.HTML(elem_id="draft")
                with gr.Column(elem_id="article"):
                    @gr.render(inputs=[shown])
                    def article_view(token: tuple[str, int] | None):
                        s = sessions.get(token[0]) if token else None
                        article = s.article if s is not None else None
                        uploads = s.uploads if s is not None else []
                        proposal_at = s.proposal_at() if s is not None else None
                        lang = s.language if s is not None else "en"
                        if article is None:
                            gr.Markdown(say("The article appears here.", lang), elem_classes="empty-article")
                            return
                        gr.HTML(title_html(article), container=False)
                        flagged = flags_of(article)
                        seen: Counter[str] = Counter()
                        for i, b in enumerate(article.blocks):
                            key = block_key(b)
                            # Only a paragraph's text box is named across redraws (by content, and
                            # which copy of it): one the writer is typing in keeps their words while
                            # another block changes. Everything else is drawn afresh each time: Gradio
                            # leaves a button it reuses untranslated, and a caption box it reused
                            # after a reload sent its text to a picture gallery (which then broke).
                            ident = (key, seen[key])
                            seen[key] += 1
                            if isinstance(b, Figure):
                                figure_view(i, key, b, ident, article, uploads, lang)
                            else:
                                paragraph_view(i, key, b, article, flagged.get(i, []), ident, lang)
                            if s is not None and s.proposal is not None and proposal_at == i:
                                proposal_view(s.proposal, lang)

        outputs = [status, draft, shown, photo_report]  # what every article event updates

        def photo_lines(s: EditorSession) -> str:
            return "\n".join(f"- {html.escape(p.name)}: {html.escape(say(p.describe(), s.language))}"
                             for p in photo_statuses(s.article, s.uploads))

        def view(s: EditorSession, message: str):
            return status_markdown(message, s.language), "", (s.key, s.version), photo_lines(s)

        def show(s: EditorSession, update: Update):
            """One step of a running job: the text streams into the draft above the article;
            the article view changes only when the job has changed the article."""
            if update.article_changed or update.error:
                return view(s, update.status)
            return (status_markdown(update.status, s.language),
                    draft_html(update.draft) if update.draft is not None else gr.skip(), gr.skip(), gr.skip())

        # --- one block's controls (built by the render above, for this version) ----------------
        def plain(index: int, key: str, edit, done: str, redraw: bool = True):
            """An edit that needs no model. A text or caption saved as the writer leaves its box
            (redraw=False) leaves the view as it is, the words already there: a redraw between a
            box's blur and a click on a tool makes Gradio drop the click (its handler is gone). It does
            redraw when the check's verdicts changed: a sentence just flagged is shown flagged."""
            def handler(value, request: gr.Request):
                s = session_of(request)
                before, blocks = s.version, len(s.article.blocks) if s.article is not None else 0
                verdicts = check_verdicts(s.article)
                update = s.edit(lambda a, at: edit(a, at, value), index, key, done)
                if not update.article_changed and not update.error:  # nothing changed: keep the status
                    return gr.skip(), gr.skip(), (s.key, s.version), gr.skip()
                same_blocks = s.article is not None and len(s.article.blocks) == blocks  # (an emptied text deletes)
                # ...unless the check says something new of the article: a flag must show at once.
                same_check = check_verdicts(s.article) == verdicts
                if not redraw and not update.error and s.version - before <= 1 and same_blocks and same_check:
                    return status_markdown(update.status, s.language), "", gr.skip(), photo_lines(s)
                return view(s, update.status)

            return handler

        def model_button(button: gr.Button, op: str, index: int, key: str) -> None:
            """A model edit first says whether it waits for another writer's job, so the status
            is never a stale line under Gradio's queue counter; then it joins the model's queue."""
            button.click(waiting("edit"), None, status, **at_once).then(
                model_job(op, index, key), [instruction], outputs, **model_queue)

        def model_job(op: str, index: int, key: str):
            def handler(extra, request: gr.Request):
                s = session_of(request)
                for update in timed("edit", s, s.model_edit(op, index, extra or "", services, key, preview=True)):
                    yield show(s, update)

            return handler

        # --- a model edit shown beside the old text: nothing changes until Accept ----------------
        def proposal_view(p: Proposal, lang: str):
            with gr.Group(elem_classes=["c-block", "proposal"]):
                gr.HTML(proposal_html(p, lang), container=False)
                with gr.Row(elem_classes=["block-tools"]):
                    accept = gr.Button(t("Accept"), size="sm", variant="primary", elem_classes=["accept"])
                    again = gr.Button(t("Try again"), size="sm")
                    discard = gr.Button(t("Discard"), size="sm")

            def on_accept(request: gr.Request):
                s = session_of(request)
                return view(s, s.accept().status)

            def on_discard(request: gr.Request):
                s = session_of(request)
                return view(s, s.discard().status)

            def on_again(request: gr.Request, p=p):
                s = session_of(request)
                s.discard()
                for update in timed("edit", s, s.model_edit(p.op, p.target[0], p.extra, services, p.target[1],
                                                             preview=True)):
                    yield show(s, update)

            accept.click(on_accept, None, outputs, **at_once)
            discard.click(on_discard, None, outputs, **at_once)
            again.click(waiting("edit"), None, status, **at_once).then(on_again, None, outputs, **model_queue)

        def paragraph_view(i: int, key: str, p: Paragraph, article: Article, flags, ident: tuple[str, int],
                           lang: str):
            with gr.Group(elem_classes=["c-block", "c-heading" if p.is_heading else "c-paragraph"]):
                text = gr.Textbox(p.text, show_label=False, lines=1 if p.is_heading else 2, max_lines=40,
                                  key=("text", *ident), elem_classes=["block-text"], container=False,
                                  interactive=True)
                text.blur(plain(i, key, lambda a, idx, t: edits.update_text(a, idx, t)
                                if t.strip() != a.blocks[idx].text.strip() else a, "Text saved.", redraw=False),
                          [text], outputs,
                          **at_once)
                with gr.Row(elem_classes=["block-tools"]):
                    if not p.is_heading:
                        for label, op in (("Rewrite", "rewrite"), ("Expand", "expand"), ("Shorten", "shorten")):
                            b = gr.Button(t(label), size="sm")
                            model_button(b, op, i, key)
                    for label, op in (("Insert before", "before"), ("Insert after", "after")):
                        b = gr.Button(t(label), size="sm")
                        model_button(b, op, i, key)
                    next_is_figure = i + 1 < len(article.blocks) and isinstance(article.blocks[i + 1], Figure)
                    if not p.is_heading and not next_is_figure:
                        b = gr.Button(t("Add picture after"), size="sm")
                        model_button(b, "add_picture", i, key)
                    gr.Button(t("Delete"), size="sm", variant="stop").click(
                        plain(i, key, lambda a, idx, _: edits.delete_block(a, idx), "Paragraph deleted."),
                        [instruction], outputs,
                        **at_once)
                sources = sources_html(article, i, lang)
                if sources:  # the writer's passages behind each supported sentence, on a click
                    gr.HTML(sources, container=False)
                if flags:  # claims the materials do not support, and the one click that fixes them
                    gr.HTML(claims_html(flags, lang), container=False)
                    if not p.is_heading:
                        b = gr.Button(t("Rewrite keeping to the materials"), size="sm",
                                      elem_classes=["ground"])
                        model_button(b, "ground", i, key)

        def figure_view(i: int, key: str, f: Figure, ident: tuple[str, int], article: Article,
                        uploads: list[LoadedImage], lang: str):
            with gr.Group(elem_classes=["c-block", "c-figure"]):
                if f.image is not None:
                    gr.Image(shown_files.path(f.image.path), show_label=False, interactive=False, height=320,
                             elem_classes=["figure-image"], buttons=[])
                    if f.generated is not None:  # said on the page as the exports say it (provenance.LABEL)
                        gr.HTML(f'<span class="generated-badge" title="{say("Generated by an image engine", lang)}">'
                                f'{say("Generated", lang)}</span>')
                else:
                    generate = " Or Generate one from its prompt." if services.imagegen is not None else ""
                    empty = ("**Empty slot**: click one of its candidates below to fill it." if f.candidates else
                             "**Empty slot**: no picture matched. Search the library with a caption, add "
                             "photos and Add picture again, or remove the slot.")
                    gr.Markdown(say(empty + generate, lang),
                                elem_classes=["empty-slot"])
                caption = gr.Textbox(f.caption, label=t("Caption"), show_label=False, container=False,
                                     placeholder="Caption", lines=1,
                                     elem_classes=["caption"], interactive=True)
                caption.blur(plain(i, key, lambda a, idx, t: edits.set_caption(a, idx, t)
                                   if t.strip() != a.blocks[idx].caption.strip() else a, "Caption saved.",
                                   redraw=False),
                             [caption], outputs,
                             **at_once)
                # The writer's other photos first, then the library's candidates, by file name: one
                # thumbnail button each. Not a gr.Gallery: when a redraw puts another block where a
                # gallery was (Undo of Remove picture, Delete), Gradio's front end hands the old
                # gallery the new block's text before dropping it, and the gallery throws
                # ("M(...).map is not a function"), leaving the pane half drawn. A button takes any value.
                options = picture_options(article, i, uploads)
                if options:
                    gr.Markdown(t("Other pictures: click one to use it"), elem_classes=["candidates-label"])
                    with gr.Row(elem_classes=["candidates"]):
                        for o in options:
                            thumb = gr.Button(picture_name(article, o.ref), icon=shown_files.path(o.ref.path),
                                              size="sm", elem_classes=["thumb"])

                            def pick(request: gr.Request, index=i, key=key, chosen=o):
                                s = session_of(request)
                                return view(s, s.edit(lambda a, at: edits.use_picture(a, at, chosen.ref, chosen.source),
                                                      index, key, "Picture swapped.").status)

                            thumb.click(pick, None, outputs, **at_once)
                with gr.Row(elem_classes=["block-tools"]):
                    if library is not None:
                        query = gr.Textbox(placeholder=t("Search the library by other words"), show_label=False,
                                           container=False, scale=3, interactive=True)
                        search = gr.Button(t("Search library"), size="sm")

                        def on_search(words, typed, request: gr.Request, index=i, key=key, f=f):
                            # A caption typed and not yet saved is saved with the search (its blur and
                            # this click come together): the figure as that edit makes it is this one too.
                            s = session_of(request)
                            typed = (typed or "").strip()
                            mine = block_key(replace(f, caption=typed, alt=typed))

                            def both(a: Article, at: int) -> Article:
                                fig = a.blocks[at]
                                if typed and isinstance(fig, Figure) and typed != fig.caption.strip():
                                    a = edits.set_caption(a, at, typed)
                                return edits.search_figure(a, at, words or "", library)

                            return view(s, s.edit(both, index, (key, mine), "Picture found in the library.").status)

                        search.click(on_search, [query, caption], outputs, **at_once)
                    gr.Button(t("Remove picture"), size="sm", variant="stop").click(
                        plain(i, key, lambda a, idx, _: edits.remove_figure(a, idx), "Picture removed."),
                        [instruction], outputs,
                        **at_once)
                if services.imagegen is not None:
                    generate_controls(i, key, f, article)

        def generate_controls(i: int, key: str, f: Figure, article: Article) -> None:
            """The picture's prompt (editable) and Generate, or Regenerate with a new seed."""
            with gr.Row(elem_classes=["block-tools"]):
                prompt = gr.Textbox(figure_prompt(article, i), label=t("Picture prompt"), show_label=False,
                                    container=False, scale=4, lines=1, interactive=True,
                                    placeholder=t("What the generated picture should show"), elem_classes=["prompt"])
                button = gr.Button(t("Regenerate") if f.generated is not None else t("Generate"), size="sm")

            def on_generate(words, request: gr.Request, index=i, key=key):
                s = session_of(request)
                for update in s.generate(index, words or "", services, key):
                    yield show(s, update)

            button.click(generating, None, status, **at_once).then(on_generate, [prompt], outputs, **image_queue)

        # --- a tab opens: take up its saved article ------------------------------------------
        request_fields = [title, outline, materials, style, length, language, count, photos]

        def job_values(s: EditorSession) -> list:
            """The request the article was written from and the writer's photos, for its fields."""
            fields = s.request_fields()
            restored = [str(p) for p in s.restore_photos()]
            return [*[fields.get(k, gr.skip()) for k in ("title", "outline", "materials", "style", "length",
                                                         "language", "image_count")], restored or gr.skip()]

        def articles_of(s: EditorSession):
            entries = writers.list(s.owner[1]) if s.owner is not None else []
            return gr.Radio(choices=[(f"{e.title} · {time.strftime('%Y-%m-%d %H:%M', time.localtime(e.modified))}"
                                      f" · {plural(e.pictures, 'picture')}", e.id) for e in entries], value=None)

        def on_load(saved_id, token, request: gr.Request):
            s = session_of(request)
            if not request.username and not (isinstance(token, str) and len(token) == 32 and token.isalnum()):
                token = uuid.uuid4().hex
            s.owner = (writers, f"user:{request.username}" if request.username else f"browser:{token}")
            if s.article is None and s.resume(saved_id):
                # The whole job comes back: the request it was written from and the writer's photos.
                return (s.article_id, *view(s, " ".join(filter(None, ["Your article is back. Keep editing.",
                                                                      s.resume_note]))),
                        *job_values(s), header_text(s.language), token, articles_of(s))
            return (s.article_id or saved_id, *view(s, "Fill in a title and press Compose."),
                    *[gr.skip()] * len(request_fields), header_text(s.language), token, articles_of(s))

        demo.load(on_load, [article_id, writer_token],
                  [article_id, *outputs, *request_fields, header, writer_token, articles_list], **at_once)

        # --- your articles: open, duplicate, delete (and undo that) ----------------------------
        def on_article_open(chosen, request: gr.Request):
            s = session_of(request)
            if not chosen or s.owner is None or not writers.owns(s.owner[1], chosen):
                return (gr.skip(), status_markdown("Choose one of your articles first.", s.language), *[gr.skip()] * 3,
                        *[gr.skip()] * len(request_fields), gr.skip())
            s.start_new()
            if not s.resume(chosen):
                return (None, *view(s, "⚠️ That article cannot be opened."), *[gr.skip()] * len(request_fields),
                        articles_of(s))
            return s.article_id, *view(s, "Opened. Keep editing."), *job_values(s), articles_of(s)

        def on_article_copy(chosen, request: gr.Request):
            s = session_of(request)
            message = s.duplicate(chosen) if chosen else "Choose one of your articles first."
            return s.article_id, *view(s, message), articles_of(s)

        def on_article_delete(chosen, request: gr.Request):
            s = session_of(request)
            if not chosen or s.owner is None or not writers.delete(s.owner[1], chosen):
                return (gr.skip(), status_markdown("Choose one of your articles first.", s.language),
                        *[gr.skip()] * 3, gr.skip())
            s.last_deleted = chosen
            if s.article_id == chosen:
                s.start_new()
            return (s.article_id, *view(s, "Deleted from your articles. Undo delete brings it back."),
                    articles_of(s))

        def on_article_undelete(request: gr.Request):
            s = session_of(request)
            gone = s.last_deleted
            if not gone or s.owner is None or not writers.restore(s.owner[1], gone):
                return status_markdown("Nothing to bring back.", s.language), gr.skip()
            s.last_deleted = None
            return status_markdown("Brought back to your articles.", s.language), articles_of(s)

        def on_articles_shown(request: gr.Request):
            return articles_of(session_of(request))

        article_open_btn.click(on_article_open, [articles_list],
                               [article_id, *outputs, *request_fields, articles_list], **at_once)
        article_copy_btn.click(on_article_copy, [articles_list], [article_id, *outputs, articles_list], **at_once)
        article_delete_btn.click(on_article_delete, [articles_list], [article_id, *outputs, articles_list],
                                 **at_once)
        article_undelete_btn.click(on_article_undelete, None, [status, articles_list], **at_once)
        articles_box.expand(on_articles_shown, None, [articles_list], **at_once)

        def on_unload(request: gr.Request):
            sessions.close(request.session_hash)

        demo.unload(on_unload)

        # --- compose -------------------------------------------------------------------------
        def generating(request: gr.Request):
            s = session_of(request)
            s.prepare_job()  # a Stop from now on stops it, queued or running
            return status_markdown("Generating a picture…", s.language)

        def waiting(kind: str):
            """Said as a writer's model job is asked for, before it joins the model's queue: that it
            starts, or how long another writer's job will keep it waiting (from how long jobs have
            taken on this server), never a stale line under Gradio's queue counter."""
            def handler(request: gr.Request):
                s = session_of(request)
                s.prepare_job()
                wait = job_clock.announce(s.key or request.session_hash, kind)
                if wait is None:
                    return status_markdown("Starting…", s.language)
                return status_markdown(f"Waiting for another writer's article — {wait_words(wait)}.", s.language)

            return handler

        def timed(kind: str, s: EditorSession, updates: Iterator[Update]) -> Iterator[Update]:
            """A model job's updates, timed for the next writer's wait (a stopped or failed job is
            not kept as a measure)."""
            with job_clock.job(s.key or "", kind) as timing:
                for update in updates:
                    if update.error or s.stop_event.is_set():
                        timing.keep = False
                    yield update

        def on_compose(title_, outline_, materials_, style_, length_, language_, count_, files, seed_,
                       request: gr.Request):
            s = session_of(request)
            fields = {"title": title_, "outline": outline_ or "", "materials": materials_ or "", "style": style_ or "",
                      "length": int(length_), "language": language_, "image_count": count_}
            try:
                seed = parse_seed(seed_)
            except RequestError as exc:
                yield s.article_id, *show(s, Update(f"⚠️ {exc}", error=True))
                return
            for update in timed("compose", s, s.compose(fields, files or [], services, seed=seed)):
                yield s.article_id, *show(s, update)

        def on_photos(files, request: gr.Request):
            """The writer's photos, as soon as they are added: every figure offers them, and Add
            picture uses them, without composing again."""
            s = session_of(request)
            try:
                s.set_uploads(files or [])
            except ImageError as exc:
                return status_markdown(f"⚠️ {exc}", s.language), gr.skip(), gr.skip(), gr.skip()
            s.touch()
            return view(s, f"{len(s.uploads)} of your photos ready." if s.uploads else "No photos of yours.")

        photos.upload(on_photos, [photos], outputs, **at_once)
        photos.clear(on_photos, [photos], outputs, **at_once)

        compose_inputs = [title, outline, materials, style, length, language, count, photos, seed]
        compose_btn.click(waiting("compose"), None, status, **at_once).then(
            on_compose, compose_inputs, [article_id, *outputs], **model_queue)
        def on_stop(request: gr.Request):
            session_of(request).stop()

        # Stop sets the writer's stop event: their running or queued model call ends at the next
        # token (the worker frees the model) and the job itself reports "Stopped" with the
        # article as it was. (Gradio's `cancels` would kill the job before it could say so.)
        stop_btn.click(on_stop, None, None, **at_once)

        # --- undo, redo, new, open, export -------------------------------------------------------
        def undo_redo(forward: bool):
            def handler(request: gr.Request):
                s = session_of(request)
                return view(s, s.redo() if forward else s.undo())

            return handler

        undo_btn.click(undo_redo(False), None, outputs, **at_once)
        redo_btn.click(undo_redo(True), None, outputs, **at_once)

        def on_new(request: gr.Request):
            s = session_of(request)
            s.start_new()
            return None, *view(s, "A new article: fill in a title and press Compose.")

        new_btn.click(on_new, None, [article_id, *outputs], **at_once)

        def on_open(path, request: gr.Request):
            s = session_of(request)
            message = s.open_file(path) if path else "Choose an article.json or a .zip to open."
            return s.article_id, *view(s, message)

        open_btn.upload(on_open, [open_btn], [article_id, *outputs], **at_once)

        def on_export(sources: bool, request: gr.Request):
            s = session_of(request)
            if s.article is None:
                return status_markdown("Compose an article first.", s.language), *(gr.DownloadButton(visible=False)
                                                                       for _ in downloads)
            try:
                paths = s.export(sources=bool(sources))
            except (ImageError, OSError, ValueError) as exc:
                return status_markdown(f"⚠️ Export failed: {exc}", s.language), *(gr.skip() for _ in downloads)
            # A format this machine could not make (a PDF without its system library) is said in
            # one line; its button stays hidden and every other format downloads.
            message = " ".join(["Exported.", *(f"⚠️ {reason}" for reason in paths.skipped.values())])
            return status_markdown(message, s.language), *(
                gr.DownloadButton(value=str(paths[key]), visible=True) if key in paths
                else gr.DownloadButton(visible=False) for key in downloads)

        export_btn.click(on_export, [with_sources], [status, *downloads.values()], **at_once)

        def on_copy(request: gr.Request):
            s = session_of(request)
            try:
                fragment = s.clipboard_html()
            except (ImageError, OSError, ValueError) as exc:
                return status_markdown(f"⚠️ Nothing copied: {exc}", s.language), ""
            said = "Article copied: paste it into Google Docs, Word, Substack, Medium or Notion."
            return status_markdown(said, s.language), fragment

        copy_btn.click(on_copy, None, [status, copy_html], js=COPY_START_JS, **at_once).then(
            None, [copy_html], None, js=COPY_FINISH_JS, **at_once)

        # --- the picture library: add, re-sync (with progress), search ------------------------------
        if library is not None:
            def sync(request: gr.Request, progress=gr.Progress()):
                def step(p):
                    progress((p.done, p.total), desc="Indexing pictures")

                report = library.sync(progress=step)
                return (html.escape(f"{library_summary(library)} (last sync: {report.summary()})"),
                        header_text(session_of(request).language))

            def on_library_add(paths, request: gr.Request, progress=gr.Progress()):
                if not paths:
                    return gr.skip(), gr.skip(), None
                try:
                    add_to_library(library, paths)
                except ImageError as exc:
                    return html.escape(say(f"⚠️ {exc}. Nothing was added.", session_of(request).language)), \
                        gr.skip(), None
                return *sync(request, progress), None

            library_add.upload(on_library_add, [library_add], [library_info, header, library_add], **at_once)
            resync_btn.click(sync, None, [library_info, header], **at_once)

            def on_library_search(text):
                if not text or not text.strip():
                    return []
                try:
                    hits = library.search(text.strip(), k=12)
                except LibraryError as exc:
                    raise gr.Error(str(exc)) from None
                return [(shown_files.path(ref.path), f"{display_name(ref.path)} · {score:.2f}") for ref, score in hits]

            library_search_btn.click(on_library_search, [library_query], [library_hits], **at_once)
            library_query.submit(on_library_search, [library_query], [library_hits], **at_once)

        # --- the API: one call for the whole job -----------------------------------------------
        with gr.Row(visible=False):
            api_request = gr.Textbox(label="request (JSON)")
            api_images = gr.File(label="images", file_count="multiple", type="filepath")
            api_json = gr.File(label="article.json")
            api_zip = gr.File(label="article.zip")
            api_btn = gr.Button("compose (API)")

        def api_folder() -> Path:
            """A folder for one API answer until Gradio has copied it out; answers older than an
            hour are removed on the next call."""
            # Beside the system's temp files, not in the data folder: Gradio serves neither by path.
            digest = hashlib.sha256(str(workspace.root).encode("utf-8", "surrogateescape")).hexdigest()[:12]
            root = Path(tempfile.gettempdir()) / f"composer-api-{digest}"
            root.mkdir(exist_ok=True)
            for old in root.iterdir():
                if time.time() - old.stat().st_mtime > 3600:
                    shutil.rmtree(old, ignore_errors=True)
            return Path(tempfile.mkdtemp(dir=root))

        def api_compose(request_json: str, images: list[str] | None):
            """Compose an article from a request (JSON: title, outline, materials, style, length,
            language, image_count) and the writer's images; returns article.json and the zip."""
            try:
                fields, seed_ = request_from_json(request_json)
            except RequestError as exc:
                raise gr.Error(str(exc)) from None
            job = EditorSession()
            keep = api_folder()
            try:
                last = None
                for update in job.compose(fields, images or [], services, seed=seed_):
                    last = update
                if last is None or last.error or job.article is None:
                    raise gr.Error(last.status.lstrip("⚠️ ") if last else "nothing was composed")
                paths = job.export()
                out = {k: keep / paths[k].name for k in ("json", "zip")}
                for k in out:
                    out[k].write_bytes(paths[k].read_bytes())
                return str(out["json"]), str(out["zip"])
            finally:
                job.close()

        api_btn.click(api_compose, [api_request, api_images], [api_json, api_zip], api_name="compose",
                      concurrency_id=MODEL, concurrency_limit=services.model_slots)
        with gr.Row(visible=False):
            check_file = gr.File(label="article.json")
            check_lines = gr.Textbox(label="flags")
            check_btn = gr.Button("check (API)")

        def api_check(path: str | None) -> str:
            """The claims of an article.json that its materials do not support: one line each
            (`paragraph 2: "…" — 4,321 is not in the materials`), or a note said once."""
            if not path:
                raise gr.Error("send an article.json")
            try:
                article = Article.from_json(Path(path).read_text(encoding="utf-8"))
            except RecursionError:
                raise gr.Error("not an article.json (nested too deeply)") from None
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                raise gr.Error(f"not an article.json ({exc})") from None
            return "\n".join(flag_lines(check_article(article)))

        check_btn.click(api_check, [check_file], [check_lines], api_name="check", concurrency_limit=None)
    return demo


def parse_auth(values: list[str] | None) -> list[tuple[str, str]] | None:
    if not values:
        return None
    out = []
    for value in values:
        user, sep, password = value.partition(":")
        if not sep or not user or not password:
            raise SystemExit("error: --auth wants USER:PASS")
        out.append((user, password))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="composer: the browser editor")
    ap.add_argument("--model", default="embedded",
                    help="embedded | gguf:PATH.gguf | xcomposer2[:ID_OR_PATH] | openai:URL[,URL...][#MODEL]")
    ap.add_argument("--library", help="an image folder to fill picture slots from (indexed at start; "
                                      "default: DATA/library, a library the app keeps)")
    ap.add_argument("--encoder", default="embedded", help="image-text encoder (default: embedded)")
    ap.add_argument("--imagegen", metavar="SPEC", help="an image engine for the pictures nothing else gives, and "
                    "Generate on every figure: openai-images:URL[,URL...][#MODEL][?size=WxH&steps=N] | a1111:URL")
    ap.add_argument("--data", default=os.environ.get("COMPOSER_DATA", "composer-data"),
                    help="where articles are saved (default: ./composer-data)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    ap.add_argument("--port", type=int, default=int(os.environ.get("COMPOSER_PORT", 7860)))
    ap.add_argument("--auth", action="append", help="USER:PASS required to open the editor; give it once for "
                                                     "each writer: an article is the user's who made it")
    args = ap.parse_args()
    auth = parse_auth(args.auth)
    try:
        workspace = Workspace(args.data)
    except OSError as exc:
        raise SystemExit(f"error: --data {args.data}: {exc.strerror or exc}") from None
    library = args.library
    if library is None:
        library = workspace.root / "library"
        library.mkdir(exist_ok=True)
    try:
        services = load_services(args.model, args.encoder, library, imagegen_spec=args.imagegen)
    except ServiceError as exc:
        raise SystemExit(f"error: {exc}") from None
    export_warm_up()  # the first PDF's font scan now, not in a writer's first Export
    sessions = SessionRegistry(lambda: EditorSession(workspace))
    demo = build(services, workspace, sessions)
    demo.queue(default_concurrency_limit=None)
    demo.launch(server_name=args.host, server_port=args.port, show_error=True, css=EDITOR_CSS, auth=auth, i18n=I18N,
                max_file_size=MAX_FILE_BYTES)


if __name__ == "__main__":
    main()
