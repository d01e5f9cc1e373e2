"""The browser editor: compose an illustrated article, edit it block by block, export it.

    python app.py [--model embedded|xcomposer2[:ID_OR_PATH]|openai:URL] [--library FOLDER]
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
import html
import json
import os
import tempfile
from pathlib import Path

import gradio as gr

from composer.article import Article, Figure, Paragraph
from composer.editor_session import EditorSession, SessionRegistry, Update, display_name
from composer.export import article_fragment
from composer.images import MAX_FILE_BYTES, ImageError
from composer.planner import edit as edits
from composer.services import ServiceError, Services, load_services
from composer.workspace import Workspace

MODEL = "model"  # the concurrency group of every event that runs the model
PRIVATE = "private"  # UI-only events: not listed on the API page, not callable from programs

# The preview is the exported article's body; this gives it the same reading layout.
PREVIEW_CSS = """
#preview .composer-article { font-family: "Iowan Old Style", "Palatino Linotype", Palatino, Georgia, "Noto Serif",
  "Liberation Serif", "DejaVu Serif", serif; line-height: 1.65; max-width: 42rem; font-size: 1.05rem; }
#preview figure { margin: 1.4em 0; text-align: center; }
#preview img { max-width: 100%; border-radius: 4px; }
#preview figcaption { font-style: italic; color: #666; font-size: 0.9em; margin-top: 0.4em; }
#preview .draft { white-space: pre-wrap; font-family: Georgia, serif; color: #444; }
"""


def block_label(i: int, block) -> str:
    if isinstance(block, Figure):
        name = display_name(block.image.path) if block.image else "empty slot"
        return f"{i + 1}. [picture] {name}: {block.caption[:60]}"
    kind = "heading" if block.is_heading else "¶"
    return f"{i + 1}. {kind} {block.text[:70]}"


def status_markdown(text: str) -> str:
    # Status text can hold model or writer text: it is shown as text, never as markup.
    return html.escape(text)


def build(services: Services, workspace: Workspace, sessions: SessionRegistry) -> gr.Blocks:
    model, library = services.model, services.library
    model_queue = dict(concurrency_id=MODEL, concurrency_limit=services.model_slots, api_visibility=PRIVATE)
    at_once = dict(concurrency_limit=None, api_visibility=PRIVATE)

    def session_of(request: gr.Request) -> EditorSession:
        return sessions.get(request.session_hash)

    with gr.Blocks(title="composer", delete_cache=(3600, 24 * 3600)) as demo:
        article_id = gr.BrowserState(None, storage_key="composer-article")
        gr.Markdown(f"# composer\nIllustrated articles. {services.describe()}", elem_id="header")
        with gr.Row():
            with gr.Column(scale=2):
                title = gr.Textbox(label="Title", elem_id="title")
                outline = gr.Textbox(label="Outline (one point per line)", lines=4)
                materials = gr.Textbox(label="Materials (facts, notes)", lines=5)
                style = gr.Textbox(label="Style")
                with gr.Row():
                    length = gr.Slider(100, 2000, value=400, step=50, label="Length (words)", elem_id="length")
                    language = gr.Radio(["en", "zh"], value="en", label="Language")
                with gr.Row():
                    count = gr.Dropdown(["auto"] + [str(n) for n in range(0, 13)], value="auto", label="Pictures")
                    seed = gr.Number(value=0, precision=0, label="Seed")
                photos = gr.File(label="Your photos", file_count="multiple", file_types=["image"], type="filepath",
                                 elem_id="photos")
                with gr.Row():
                    compose_btn = gr.Button("Compose", variant="primary", elem_id="compose")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
                with gr.Row():
                    new_btn = gr.Button("New article", size="sm")
                    open_btn = gr.UploadButton("Open article.json or .zip", file_types=[".json", ".zip"],
                                               size="sm", elem_id="open")
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
                text_box = gr.Textbox(label="Text or caption (your own words)", lines=3, elem_id="text")
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
                json_file = gr.DownloadButton("Download article.json", visible=False)

        view = [status, preview, block, candidate, text_box]

        def render(s: EditorSession, message: str, selected: int | None = None):
            article = s.article
            if article is None:
                return (status_markdown(message), "", gr.Dropdown(choices=[], value=None),
                        gr.Dropdown(choices=[], value=None), "")
            choices = [(block_label(i, b), i) for i, b in enumerate(article.blocks)]
            if selected is None or selected >= len(article.blocks):
                selected = next((i for i, b in enumerate(article.blocks) if isinstance(b, Paragraph)), None)
            return (status_markdown(message), article_fragment(article), gr.Dropdown(choices=choices, value=selected),
                    *block_detail(article, selected))

        def block_detail(article: Article, index: int | None):
            if index is None or index >= len(article.blocks):
                return gr.Dropdown(choices=[], value=None), ""
            b = article.blocks[index]
            if isinstance(b, Figure):
                cands = [(f"{display_name(c.image.path)} ({c.score:.2f})", k) for k, c in enumerate(b.candidates)]
                return gr.Dropdown(choices=cands, value=None), b.caption
            return gr.Dropdown(choices=[], value=None), b.text

        def show(s: EditorSession, update: Update, selected: int | None = None):
            """One step of a running job: the draft streams into the preview (compose) and the
            status line; the article view changes only when the job has changed the article."""
            if update.article_changed or update.error:
                return render(s, update.status, selected)
            preview_ = (f'<div class="draft">{html.escape(update.draft)}</div>' if update.draft is not None
                        else gr.skip())
            return status_markdown(update.status), preview_, gr.skip(), gr.skip(), gr.skip()

        # --- a tab opens: take up its saved article ------------------------------------------
        def on_load(saved_id, request: gr.Request):
            s = session_of(request)
            if s.article is None and s.resume(saved_id):
                return s.article_id, *render(s, "Your article is back. Keep editing.")
            return s.article_id or saved_id, *render(s, "Fill in a title and press Compose.")

        demo.load(on_load, [article_id], [article_id, *view], **at_once)

        def on_unload(request: gr.Request):
            sessions.close(request.session_hash)

        demo.unload(on_unload)

        # --- compose -------------------------------------------------------------------------
        def waiting(request: gr.Request):
            busy = services.model.busy
            return status_markdown("Waiting for the model (another writer is using it)…" if busy else "Starting…")

        def on_compose(title_, outline_, materials_, style_, length_, language_, count_, files, seed_,
                       request: gr.Request):
            s = session_of(request)
            fields = {"title": title_, "outline": outline_ or "", "materials": materials_ or "", "style": style_ or "",
                      "length": int(length_), "language": language_, "image_count": count_}
            for update in s.compose(fields, files or [], services, seed=int(seed_ or 0)):
                yield s.article_id, *show(s, update)

        compose_inputs = [title, outline, materials, style, length, language, count, photos, seed]
        compose_evt = compose_btn.click(waiting, None, status, **at_once).then(
            on_compose, compose_inputs, [article_id, *view], **model_queue)

        # --- edits that run the model ---------------------------------------------------------
        def model_edit(op: str):
            def handler(index, extra, request: gr.Request):
                s = session_of(request)
                if index is None:
                    yield render(s, "Compose an article first, then pick a block.")
                    return
                for update in s.model_edit(op, int(index), extra or "", services):
                    yield show(s, update, int(index))

            return handler

        model_events = [compose_evt]
        for button, op in ((rewrite_btn, "rewrite"), (expand_btn, "expand"), (shorten_btn, "shorten"),
                           (before_btn, "before"), (after_btn, "after"), (add_btn, "add_picture")):
            model_events.append(button.click(model_edit(op), [block, instruction], view, **model_queue))

        def on_stop(request: gr.Request):
            session_of(request).stop()

        stop_btn.click(on_stop, None, None, cancels=model_events, **at_once)

        # --- edits that need no model: at once --------------------------------------------------
        def plain_edit(run):
            def handler(index, *args, request: gr.Request):
                s = session_of(request)
                if index is None:
                    return render(s, "Compose an article first, then pick a block.")
                update = s.edit(lambda a: run(a, int(index), *args))
                return render(s, update.status, int(index))

            return handler

        def delete(a, i):
            return edits.remove_figure(a, i) if isinstance(a.blocks[i], Figure) else edits.delete_block(a, i)

        def save_text(a, i, t):
            return edits.set_caption(a, i, t) if isinstance(a.blocks[i], Figure) else edits.update_text(a, i, t)

        def swap(a, i, k):
            if k is None:
                raise edits.EditError("pick one of the other pictures first")
            return edits.swap_figure(a, i, int(k))

        delete_btn.click(plain_edit(delete), [block], view, **at_once)
        remove_btn.click(plain_edit(edits.remove_figure), [block], view, **at_once)
        save_text_btn.click(plain_edit(save_text), [block, text_box], view, **at_once)
        swap_btn.click(plain_edit(swap), [block, candidate], view, **at_once)
        if library is not None:
            search_btn.click(plain_edit(lambda a, i, t: edits.search_figure(a, i, t, library)), [block, text_box],
                             view, **at_once)

        def undo_redo(forward: bool):
            def handler(index, request: gr.Request):
                s = session_of(request)
                message = s.redo() if forward else s.undo()
                return render(s, message, int(index) if index is not None else None)

            return handler

        undo_btn.click(undo_redo(False), [block], view, **at_once)
        redo_btn.click(undo_redo(True), [block], view, **at_once)

        def on_select(index, request: gr.Request):
            article = session_of(request).article
            if article is None or index is None:
                return gr.Dropdown(choices=[], value=None), ""
            return block_detail(article, int(index))

        block.input(on_select, [block], [candidate, text_box], **at_once)

        # --- new, open, export --------------------------------------------------------------
        def on_new(request: gr.Request):
            s = session_of(request)
            s.start_new()
            return None, *render(s, "A new article: fill in a title and press Compose.")

        new_btn.click(on_new, None, [article_id, *view], **at_once)

        def on_open(path, request: gr.Request):
            s = session_of(request)
            message = s.open_file(path) if path else "Choose an article.json or a .zip to open."
            return s.article_id, *render(s, message)

        open_btn.upload(on_open, [open_btn], [article_id, *view], **at_once)

        def on_export(request: gr.Request):
            s = session_of(request)
            hidden = gr.DownloadButton(visible=False)
            if s.article is None:
                return status_markdown("Compose an article first."), hidden, hidden, hidden
            try:
                paths = s.export()
            except (ImageError, OSError, ValueError) as exc:
                return status_markdown(f"⚠️ Export failed: {exc}"), gr.skip(), gr.skip(), gr.skip()
            return (status_markdown("Exported."), gr.DownloadButton(value=str(paths["zip"]), visible=True),
                    gr.DownloadButton(value=str(paths["html"]), visible=True),
                    gr.DownloadButton(value=str(paths["json"]), visible=True))

        export_btn.click(on_export, None, [status, zip_file, html_file, json_file], **at_once)

        # --- the API: one call for the whole job -----------------------------------------------
        with gr.Row(visible=False):
            api_request = gr.Textbox(label="request (JSON)")
            api_images = gr.File(label="images", file_count="multiple", type="filepath")
            api_json = gr.File(label="article.json")
            api_zip = gr.File(label="article.zip")
            api_btn = gr.Button("compose (API)")

        def api_compose(request_json: str, images: list[str] | None):
            """Compose an article from a request (JSON: title, outline, materials, style, length,
            language, image_count) and the writer's images; returns article.json and the zip."""
            try:
                fields = json.loads(request_json or "")
            except ValueError as exc:
                raise gr.Error(f"the request is not JSON ({exc})")
            job = EditorSession()
            last = None
            try:
                for update in job.compose(fields, images or [], services, seed=int(fields.get("seed") or 0)
                                          if isinstance(fields, dict) else 0):
                    last = update
                if last is None or last.error or job.article is None:
                    raise gr.Error(last.status if last else "nothing was composed")
                paths = job.export()
                keep = Path(tempfile.mkdtemp(prefix="composer-api-"))
                out = {k: keep / paths[k].name for k in ("json", "zip")}
                for k in out:
                    out[k].write_bytes(paths[k].read_bytes())
                return str(out["json"]), str(out["zip"])
            finally:
                job.close()

        api_btn.click(api_compose, [api_request, api_images], [api_json, api_zip], api_name="compose",
                      concurrency_id=MODEL, concurrency_limit=services.model_slots)
    return demo


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise SystemExit("error: --auth wants USER:PASS")
    return user, password


def main() -> None:
    ap = argparse.ArgumentParser(description="composer: the browser editor")
    ap.add_argument("--model", default="embedded", help="embedded | xcomposer2[:ID_OR_PATH] | openai:URL[#MODEL]")
    ap.add_argument("--library", help="an image folder to fill picture slots from (indexed at start)")
    ap.add_argument("--encoder", default="embedded", help="image-text encoder (default: embedded)")
    ap.add_argument("--data", default=os.environ.get("COMPOSER_DATA", "composer-data"),
                    help="where articles are saved (default: ./composer-data)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    ap.add_argument("--port", type=int, default=int(os.environ.get("COMPOSER_PORT", 7860)))
    ap.add_argument("--auth", help="USER:PASS required to open the editor")
    args = ap.parse_args()
    auth = parse_auth(args.auth)
    try:
        workspace = Workspace(args.data)
    except OSError as exc:
        raise SystemExit(f"error: --data {args.data}: {exc.strerror or exc}")
    try:
        services = load_services(args.model, args.encoder, args.library)
    except ServiceError as exc:
        raise SystemExit(f"error: {exc}")
    sessions = SessionRegistry(lambda: EditorSession(workspace))
    demo = build(services, workspace, sessions)
    demo.queue(default_concurrency_limit=None)
    demo.launch(server_name=args.host, server_port=args.port, show_error=True, css=PREVIEW_CSS, auth=auth,
                max_file_size=MAX_FILE_BYTES)


if __name__ == "__main__":
    main()
