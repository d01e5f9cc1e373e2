"""The browser editor: compose an illustrated article, edit it block by block, export it.

    python app.py [--model embedded|xcomposer2[:ID_OR_PATH]] [--library FOLDER] [--port 7860]

Gradio UI only: layout, per-session state and event wiring. Composition and editing are
composer.planner's (compose, edit, History); export is composer.export's. Each browser session
has its own article history and uploads; the one model is shared, one call at a time.
"""
from __future__ import annotations

import argparse
import html
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from composer.article import Article, Figure, Paragraph
from composer.export import article_fragment, write_bundle
from composer.images import ImageError, LoadedImage, load_image
from composer.model import load_model
from composer.model.base import ModelError
from composer.model.serialized import SerializedModel
from composer.planner import edit as edits
from composer.planner.history import History
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest, RequestError


# The preview is the exported article's body; this gives it the same reading layout.
PREVIEW_CSS = """
#preview .composer-article { font-family: Georgia, "Liberation Serif", "DejaVu Serif", serif; line-height: 1.6;
  max-width: 44rem; font-size: 1.05rem; }
#preview figure { margin: 1.4em 0; text-align: center; }
#preview img { max-width: 100%; border-radius: 4px; }
#preview figcaption { font-style: italic; color: #666; font-size: 0.9em; margin-top: 0.4em; }
#preview .draft { white-space: pre-wrap; font-family: Georgia, serif; color: #444; }
"""


@dataclass
class Session:
    """One writer's work: every version of the article (undo/redo) and their photos."""

    history: History | None = None
    uploads: list[LoadedImage] = field(default_factory=list)
    export_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="composer-export-"))


@dataclass
class Services:
    model: SerializedModel
    encoder: object | None
    library: object | None


def block_label(i: int, block) -> str:
    if isinstance(block, Figure):
        name = Path(block.image.path).name if block.image else "empty slot"
        return f"{i + 1}. [picture] {name}: {block.caption[:60]}"
    kind = "heading" if block.is_heading else "¶"
    return f"{i + 1}. {kind} {block.text[:70]}"


def build(services: Services) -> gr.Blocks:
    model, encoder, library = services.model, services.encoder, services.library

    with gr.Blocks(title="composer") as demo:
        session = gr.State(None)  # a Session, made on the session's first event
        gr.Markdown(f"# composer\nIllustrated articles, written by **{html.escape(model.name)}**."
                    + ("" if not library else " Pictures come from your photos or the image library."))
        with gr.Row():
            with gr.Column(scale=2):
                title = gr.Textbox(label="Title")
                outline = gr.Textbox(label="Outline (one point per line)", lines=4)
                materials = gr.Textbox(label="Materials (facts, notes)", lines=5)
                style = gr.Textbox(label="Style")
                with gr.Row():
                    length = gr.Slider(100, 2000, value=400, step=50, label="Length (words)")
                    language = gr.Radio(["en", "zh"], value="en", label="Language")
                with gr.Row():
                    count = gr.Dropdown(["auto"] + [str(n) for n in range(0, 13)], value="auto", label="Pictures")
                    seed = gr.Number(value=0, precision=0, label="Seed")
                photos = gr.File(label="Your photos", file_count="multiple", file_types=["image"], type="filepath",
                                 elem_id="photos")
                compose_btn = gr.Button("Compose", variant="primary")
            with gr.Column(scale=3):
                status = gr.Markdown("Fill in a title and press Compose.", elem_id="status")
                preview = gr.HTML(elem_id="preview")
        with gr.Group():
            gr.Markdown("### Edit")
            block = gr.Dropdown(label="Block", choices=[], interactive=True, elem_id="block")
            instruction = gr.Textbox(label="Instruction, materials or outline for the new paragraph", lines=2)
            with gr.Row():
                rewrite_btn = gr.Button("Rewrite")
                expand_btn = gr.Button("Expand")
                shorten_btn = gr.Button("Shorten")
                before_btn = gr.Button("Insert before")
                after_btn = gr.Button("Insert after")
                delete_btn = gr.Button("Delete")
            with gr.Row():
                text_box = gr.Textbox(label="Text or caption (your own words)", lines=3)
                save_text_btn = gr.Button("Save text / caption")
            with gr.Row():
                candidate = gr.Dropdown(label="Other pictures for this slot", choices=[], interactive=True)
                swap_btn = gr.Button("Use this picture")
                search_btn = gr.Button("Search library by caption", interactive=library is not None)
                add_btn = gr.Button("Add picture after")
                remove_btn = gr.Button("Remove picture")
            with gr.Row():
                undo_btn = gr.Button("Undo")
                redo_btn = gr.Button("Redo")
                export_btn = gr.Button("Export")
                zip_file = gr.DownloadButton("Download .zip", visible=False)
                html_file = gr.DownloadButton("Download .html", visible=False)

        view = [session, status, preview, block, candidate, text_box]

        def render(s: Session, message: str, selected: int | None = None):
            article = s.history.current if s.history else None
            if article is None:
                return s, message, "", gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None), ""
            choices = [(block_label(i, b), i) for i, b in enumerate(article.blocks)]
            if selected is None or selected >= len(article.blocks):
                selected = next((i for i, b in enumerate(article.blocks) if isinstance(b, Paragraph)), None)
            return (s, message, article_fragment(article), gr.Dropdown(choices=choices, value=selected),
                    *_block_detail(article, selected))

        def _block_detail(article: Article, index: int | None):
            if index is None or index >= len(article.blocks):
                return gr.Dropdown(choices=[], value=None), ""
            b = article.blocks[index]
            if isinstance(b, Figure):
                cands = [(f"{Path(c.image.path).name} ({c.score:.2f})", k) for k, c in enumerate(b.candidates)]
                return gr.Dropdown(choices=cands, value=None), b.caption
            return gr.Dropdown(choices=[], value=None), b.text

        def on_select(s: Session | None, index):
            if not s or not s.history or index is None:
                return gr.Dropdown(choices=[], value=None), ""
            return _block_detail(s.history.current, int(index))

        def on_compose(s, title_, outline_, materials_, style_, length_, language_, count_, files, seed_):
            s = s or Session()
            try:
                request = ComposeRequest.from_dict({
                    "title": title_, "outline": outline_ or "", "materials": materials_ or "", "style": style_ or "",
                    "length": int(length_), "language": language_, "image_count": count_})
                s.uploads = [load_image(f) for f in (files or [])]
            except (RequestError, ImageError) as exc:
                yield render(s, f"⚠️ {html.escape(str(exc))}")
                return
            text = ""
            try:
                for event in compose(request, model, encoder, library, uploads=s.uploads, seed=int(seed_ or 0)):
                    if event.kind == "text":
                        text += event.data["delta"]
                        yield (s, "Writing…", f'<div class="draft">{html.escape(text)}</div>', gr.skip(),
                               gr.skip(), gr.skip())
                    elif event.kind == "stage" and event.data["stage"] != "write":
                        yield (s, f"{event.data['stage'].capitalize()}…", gr.skip(), gr.skip(), gr.skip(), gr.skip())
                    elif event.kind == "done":
                        article = event.data["article"]
                        notes = [f"{f['step']}: {f['reason']}" for f in article.metadata.get("fallbacks", [])]
                        if s.history is None:
                            s.history = History(article)
                        else:
                            s.history.push(article)
                        texts = sum(1 for p in article.paragraphs if not p.is_heading)
                        shown = sum(1 for f in article.figures if f.image is not None)
                        empty = len(article.figures) - shown
                        message = (f"Done: {texts} paragraph{'s' * (texts != 1)}, {shown} picture{'s' * (shown != 1)}"
                                   + (f", {empty} empty slot{'s' * (empty != 1)} (pick one of its candidates)"
                                      if empty else "") + ".")
                        if notes:
                            message += " Decided by rule: " + "; ".join(html.escape(n) for n in notes)
                        yield render(s, message)
            except ModelError as exc:
                yield render(s, f"⚠️ The model failed: {html.escape(str(exc))}")

        def model_edit(run):
            """Wire an edit that streams: the text appears in the status line as it is written."""

            def handler(s: Session | None, index, extra):
                s = s or Session()
                if not s.history or index is None:
                    yield render(s, "Compose an article first, then pick a block.")
                    return
                index = int(index)
                text = ""
                try:
                    for event in run(s, s.history.current, index, extra or ""):
                        if event.kind == "text":
                            text += event.data["delta"]
                            yield (s, f"Writing: {html.escape(text[-300:])}", gr.skip(), gr.skip(), gr.skip(), gr.skip())
                        elif event.kind == "done":
                            s.history.push(event.data["article"])
                            yield render(s, "Edited. Undo brings the previous version back.", index)
                except (edits.EditError, ModelError, ImageError) as exc:
                    yield render(s, f"⚠️ {html.escape(str(exc))}", index)

            return handler

        def plain_edit(run):
            def handler(s: Session | None, index, *args):
                s = s or Session()
                if not s.history or index is None:
                    return render(s, "Compose an article first, then pick a block.")
                try:
                    s.history.push(run(s, s.history.current, int(index), *args))
                except (edits.EditError, ImageError) as exc:
                    return render(s, f"⚠️ {html.escape(str(exc))}", int(index))
                return render(s, "Edited. Undo brings the previous version back.", int(index))

            return handler

        def seeded(s):
            return int(s.history.current.metadata.get("seed") or 0) if s.history else 0

        wiring = [
            (rewrite_btn, model_edit(lambda s, a, i, x: edits.rewrite(a, i, model, instruction=x, seed=seeded(s)))),
            (expand_btn, model_edit(lambda s, a, i, x: edits.expand(a, i, model, materials=x, seed=seeded(s)))),
            (shorten_btn, model_edit(lambda s, a, i, x: edits.shorten(a, i, model, instruction=x, seed=seeded(s)))),
            (before_btn, model_edit(lambda s, a, i, x: edits.insert_paragraph(a, i, "before", x, model, seed=seeded(s)))),
            (after_btn, model_edit(lambda s, a, i, x: edits.insert_paragraph(a, i, "after", x, model, seed=seeded(s)))),
            (add_btn, model_edit(lambda s, a, i, x: edits.add_figure(a, i, model, library=library, uploads=s.uploads,
                                                                     encoder=encoder, caption=x or None))),
        ]
        for button, handler in wiring:
            button.click(handler, [session, block, instruction], view)

        delete_btn.click(plain_edit(lambda s, a, i: edits.remove_figure(a, i) if isinstance(a.blocks[i], Figure)
                                    else edits.delete_block(a, i)), [session, block], view)
        remove_btn.click(plain_edit(lambda s, a, i: edits.remove_figure(a, i)), [session, block], view)
        save_text_btn.click(plain_edit(lambda s, a, i, t: edits.set_caption(a, i, t) if isinstance(a.blocks[i], Figure)
                                       else edits.update_text(a, i, t)), [session, block, text_box], view)

        def swap(s, a, i, k):
            if k is None:
                raise edits.EditError("pick one of the other pictures first")
            return edits.swap_figure(a, i, int(k))

        swap_btn.click(plain_edit(swap), [session, block, candidate], view)
        if library is not None:
            search_btn.click(plain_edit(lambda s, a, i, t: edits.search_figure(a, i, t, library)),
                             [session, block, text_box], view)

        def undo_redo(forward: bool):
            def handler(s: Session | None, index):
                s = s or Session()
                if s.history:
                    (s.history.redo if forward else s.history.undo)()
                return render(s, "Redone." if forward else "Undone.", int(index) if index is not None else None)

            return handler

        undo_btn.click(undo_redo(False), [session, block], view)
        redo_btn.click(undo_redo(True), [session, block], view)
        block.input(on_select, [session, block], [candidate, text_box])
        compose_btn.click(on_compose, [session, title, outline, materials, style, length, language, count, photos,
                                       seed], view)

        def on_export(s: Session | None):
            if not s or not s.history:
                return "Compose an article first.", gr.DownloadButton(visible=False), gr.DownloadButton(visible=False)
            out = Path(s.export_dir) / "article"
            try:
                paths = write_bundle(s.history.current, out)
            except (ImageError, OSError) as exc:
                return f"⚠️ Export failed: {html.escape(str(exc))}", gr.skip(), gr.skip()
            return ("Exported.", gr.DownloadButton(value=str(paths["zip"]), visible=True),
                    gr.DownloadButton(value=str(paths["html"]), visible=True))

        export_btn.click(on_export, [session], [status, zip_file, html_file])
    return demo


def main() -> None:
    ap = argparse.ArgumentParser(description="composer: the browser editor")
    ap.add_argument("--model", default="embedded", help="embedded | xcomposer2[:ID_OR_PATH]")
    ap.add_argument("--library", help="an image folder to fill picture slots from (indexed at start)")
    ap.add_argument("--encoder", default="embedded", help="image-text encoder (default: embedded)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("COMPOSER_PORT", 7860)))
    args = ap.parse_args()
    try:
        model = SerializedModel(load_model(args.model))
    except (ModelError, ValueError) as exc:
        raise SystemExit(f"error: model {args.model}: {exc}")
    from composer.retrieval import ImageLibrary, LibraryError, load_encoder

    try:
        encoder = load_encoder(args.encoder)
        library = None
        if args.library:
            library = ImageLibrary(args.library, encoder=encoder)
            library.sync()
    except LibraryError as exc:
        raise SystemExit(f"error: {exc}")
    demo = build(Services(model, encoder, library))
    # One model serves every session; events queue rather than interleave inside it.
    demo.queue(default_concurrency_limit=1)
    demo.launch(server_name=args.host, server_port=args.port, show_error=True, css=PREVIEW_CSS)


if __name__ == "__main__":
    main()
