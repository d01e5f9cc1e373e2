"""One writer's work in the browser editor, and the registry of writers a server holds.

Gradio-free: app.py wires these to events. What Undo says when there is nothing to undo, how an
upload's error names the file, and what happens to a writer's files and photos when the tab
closes are decided (and tested) here.
"""
from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.article import Article, Block, Figure, ImageRef, Paragraph, paragraph_label
from composer.export import ALL_FORMATS, BundlePaths, article_fragment, write_bundle
from composer.imagegen import ImageGenerator, ImageGenError, Size
from composer.imagegen.illustrate import Illustrator, next_seed, prompt_for, slot_seed
from composer.images import ImageError, LoadedImage, display_name, is_sha256, load_uploads, named_image_error
from composer.model.base import ChatModelBase, ModelError, Prompt, Sampling
from composer.model.serialized import Cancelled, SerializedModel
from composer.planner import edit as edits
from composer.planner.history import History
from composer.planner.pipeline import compose
from composer.planner.request import ComposeRequest, RequestError, printable
from composer.services import Services, compose_summary, plural
from composer.workspace import SaveError, Workspace, WorkspaceError, map_images
from composer.writers import WriterArticles

log = logging.getLogger("composer.editor")
EXPORT_PREFIX = "composer-export-"
MAX_RESTORED_PHOTOS = 40
_SAFE_NAME = re.compile(r"[^\w.\- ]+")
STALE = ("⚠️ That block was changed in another tab or by another edit since you saw it, so your change "
         "was not applied. The article now shows that change: make yours again if you still want it.")
CHANGED_MEANWHILE = ("⚠️ That paragraph was edited while the model wrote, so nothing was replaced: "
                     "your edit stays. Ask again to rewrite the new text.")


class StoppableModel(ChatModelBase):
    """The shared model as one job sees it: every call carries the job's stop event, so a Stop
    ends the job's running or queued call with Cancelled and hands the model to the next caller."""

    def __init__(self, model: SerializedModel, stop: threading.Event):
        self.model, self.stop = model, stop
        self.name, self.dialect, self.sees_images = model.name, model.dialect, model.sees_images
        self.usage = model.usage
        self.small, self.thread_safe = model.small, model.thread_safe

    def stream(self, prompt: Prompt, sampling: Sampling) -> Iterator[str]:
        return self.model.stream(prompt, sampling, stop=self.stop)

    def complete(self, prompts: Sequence[Prompt], sampling: Sampling) -> list[str]:
        return self.model.complete(prompts, sampling, stop=self.stop)

    def choose(self, prompt: Prompt, options: Sequence[str]) -> list[float]:
        return self.model.choose(prompt, options, stop=self.stop)


class StoppableGenerator:
    """The image engine as one job sees it: the request runs on a thread of its own and the job
    waits for it, so a Stop ends the job at once with Cancelled (the engine's answer, when it
    comes, is dropped) and no lock is held while it waits."""

    POLL_S = 0.1

    def __init__(self, generator: ImageGenerator, stop: threading.Event):
        self.generator, self.stop = generator, stop
        self.engine, self.size, self.workers = generator.engine, generator.size, generator.workers

    @property
    def name(self) -> str:
        return self.generator.name

    @property
    def model(self) -> str:
        return self.generator.model

    def generate(self, prompt: str, size: Size, seed: int, n: int = 1, negative_prompt: str = "") -> list[bytes]:
        done: dict[str, Any] = {}

        def work() -> None:
            try:
                done["pictures"] = self.generator.generate(prompt, size, seed, n, negative_prompt)
            except BaseException as exc:  # handed to the job's thread, raised there
                done["error"] = exc

        worker = threading.Thread(target=work, daemon=True, name="imagegen")
        worker.start()
        while worker.is_alive():
            if self.stop.is_set():
                raise Cancelled("stopped")
            worker.join(self.POLL_S)
        if "error" in done:
            raise done["error"]
        return done["pictures"]


@dataclass(frozen=True)
class Update:
    """What a writer sees change while a job runs: the status line (plain text; the view escapes
    it), the text written so far, and whether the article itself changed."""

    status: str
    draft: str | None = None
    article_changed: bool = False
    error: bool = False


def block_key(block: Block) -> str:
    """A short name for a block's content. A view built from one version of the article sends
    it back with an edit, so an edit lands on that block wherever it now is, and an edit aimed
    at a block that another edit has since changed is refused instead of landing on the wrong one."""
    return hashlib.sha1(repr(block).encode("utf-8")).hexdigest()[:12]


def locate(article: Article, index: int | None, key: str | Sequence[str]) -> int | None:
    """Where the block named `key` is now (the one nearest `index` if the same block is there
    twice), or None if no block is that one any more. Several keys: any of them (the block as
    the writer saw it, or as their own edit of it in the same moment made it)."""
    keys = {key} if isinstance(key, str) else set(key)
    hits = [i for i, b in enumerate(article.blocks) if block_key(b) in keys]
    if not hits:
        return None
    return min(hits, key=lambda i: abs(i - (index if index is not None else 0)))


def with_names(article: Article) -> Article:
    """The article with the file name of each picture it shows or offers kept in
    metadata["names"] (by content hash): the workspace stores pictures by hash, and a writer
    knows them by name."""
    names = dict(article.metadata.get("names") or {})
    before = len(names)
    for fig in article.figures:
        for ref in ([fig.image] if fig.image is not None else []) + [c.image for c in fig.candidates]:
            if ref.sha256 not in names and Path(ref.path).stem != ref.sha256:
                names[ref.sha256] = display_name(ref.path)
    if len(names) == before:
        return article
    return Article(article.title, article.blocks, {**article.metadata, "names": names})


def picture_name(article: Article | None, ref: ImageRef) -> str:
    """The file name a writer knows a picture by (not the hash it is stored under)."""
    names = (article.metadata.get("names") or {}) if article is not None else {}
    name = names.get(ref.sha256) if isinstance(names, dict) else None
    return str(name) if name else display_name(ref.path)


@dataclass(frozen=True)
class PictureOption:
    ref: ImageRef
    source: str  # "upload" (the writer's photo) or "library"


def picture_options(article: Article, index: int, uploads: Sequence[LoadedImage]) -> list[PictureOption]:
    """What figure `index` can show instead: the writer's photos that no figure shows, then the
    figure's library candidates; never its own picture or one used elsewhere."""
    fig = article.blocks[index]
    assert isinstance(fig, Figure)
    taken = {b.image.sha256 for b in article.blocks if isinstance(b, Figure) and b.image is not None}
    own = {u.ref.sha256 for u in uploads}
    out: list[PictureOption] = []
    for ref, source in [(u.ref, "upload") for u in uploads] + [
            (c.image, "upload" if c.image.sha256 in own else "library") for c in fig.candidates]:
        if ref.sha256 not in taken:
            taken.add(ref.sha256)
            out.append(PictureOption(ref, source))
    return out


@dataclass(frozen=True)
class PhotoStatus:
    name: str
    path: str
    placed_at: int | None  # the block index of its figure, or None
    reason: str  # why an unused photo is not in the article ("" when placed)
    after_paragraph: int | None = None  # 1-based number of the paragraph it follows
    where: str = ""  # where its figure is, as article.paragraph_label says ("after paragraph 2")

    def describe(self) -> str:
        if self.placed_at is not None:
            return f"placed {self.where or f'after paragraph {self.after_paragraph}'}"
        return f"unused: {self.reason}" if self.reason else "unused"


def photo_statuses(article: Article | None, uploads: Sequence[LoadedImage]) -> list[PhotoStatus]:
    """What became of each of the writer's photos: where it is placed, or why it is not. The
    planner's reasons (article.metadata["uploads"]) are used where it gave them; otherwise a
    photo is placed if a figure shows the same content."""
    blocks = article.blocks if article is not None else ()
    at = {b.image.sha256: i for i, b in enumerate(blocks) if isinstance(b, Figure) and b.image is not None}
    reasons = {}
    for entry in (article.metadata.get("uploads") or []) if article is not None else []:
        if isinstance(entry, dict) and entry.get("sha256"):
            reasons[entry["sha256"]] = str(entry.get("reason") or "")
    out = []
    for upload in uploads:
        sha = upload.ref.sha256
        placed = at.get(sha)
        reason = "" if placed is not None else reasons.get(sha, "not in the article" if article is not None else "")
        after = None
        if placed is not None:
            after = sum(1 for b in blocks[:placed] if isinstance(b, Paragraph) and not b.is_heading)
        out.append(PhotoStatus(display_name(upload.ref.path), upload.ref.path, placed, reason, after,
                               paragraph_label(blocks, placed) if placed is not None else ""))
    return out


PREVIEWED = {"rewrite", "expand", "shorten", "before", "after", "ground"}


@dataclass(frozen=True)
class Proposal:
    """A model edit waiting for the writer: the blocks it would replace (`old`, none for an
    insert) and the blocks it wrote (`new`), at block `index` (named by `key`, see block_key)
    of the version it was written from (`base`)."""

    op: str
    extra: str
    target: tuple[int, str]  # the block the edit was asked for (index, key), for Try again
    base: Article
    edited: Article
    index: int
    key: str
    old: tuple[Block, ...]
    new: tuple[Block, ...]

    @classmethod
    def of(cls, op: str, extra: str, target: tuple[int, str], base: Article, edited: Article) -> Proposal:
        old, new = base.blocks, edited.blocks
        start, end = edits.changed_run(old, new)
        removed, added = old[start:len(old) - end], new[start:len(new) - end]
        # Shown at the block it replaces, or for an insert at the block before it (after it when first).
        at = start if removed else max(start - 1, 0)
        anchor = old[at] if old else None
        return cls(op, extra, target, base, edited, at, block_key(anchor) if anchor is not None else "", removed, added)


_EDIT_DONE = {"rewrite": "Rewritten.", "expand": "Expanded.", "shorten": "Shortened.",
              "before": "Paragraph inserted.", "after": "Paragraph inserted.", "add_picture": "Picture added.",
              "ground": "Rewritten from your materials."}
_STAGE_WORDS = {"segment": "Splitting into paragraphs…", "place": "Choosing where pictures go…",
                "caption": "Writing captions…", "select": "Choosing pictures…",
                "generate": "Generating pictures…"}
NO_ENGINE = "⚠️ No image engine: start the editor with --imagegen SPEC to generate pictures."


def figure_prompt(article: Article, index: int) -> str:
    """The prompt a figure's picture is (or would be) generated from: the one it was generated
    with, else one written from its caption, its section and the article's title and style."""
    fig = article.blocks[index]
    if not isinstance(fig, Figure):
        return ""
    if fig.generated is not None:
        return fig.generated.prompt
    request = article.metadata.get("request")
    style = request.get("style") if isinstance(request, dict) else None
    style = style if isinstance(style, str) else ""
    section = next((b.text for b in reversed(article.blocks[:index]) if isinstance(b, Paragraph) and b.is_heading), "")
    return prompt_for(fig.caption, article.title, style, fig.query, section)


class EditorSession:
    """Every version of one writer's article (undo/redo), their photos and their export folder.
    With a workspace, every change is saved there at once (the browser keeps only the id).

    Events of one writer can overlap (an Undo while their own compose runs), so the history is
    changed under a lock; the lock is never held while a model runs. Two tabs of one article are
    two sessions of it: each change first takes up what the other saved (under the workspace's
    writer lock for the article), and the new version is saved before the session moves to it.
    """

    def __init__(self, workspace: Workspace | None = None):
        self._lock = threading.RLock()
        self._history: History | None = None
        self._uploads: list[LoadedImage] = []
        self._export_dir: Path | None = None
        self.workspace = workspace
        self.article_id: str | None = None
        self.stop_event = threading.Event()
        self._prepared = False
        self._exports = 0
        self.closed = False
        self.language = "en"  # the interface language its browser asks for (composer.interface_text)
        # Counts changes to what the article view shows, so a view knows when to redraw.
        self.version = 0
        self.key: str | None = None  # the registry's name for this session (a browser tab)
        self._seen: tuple | None = None  # the saved files as this session last read or wrote them
        self.proposal: Proposal | None = None  # a model edit shown beside the old text, not yet accepted
        self.resume_note = ""  # what resume() found wrong with the saved article's history, if anything
        self.user: str | None = None  # the logged-in user (with --auth): their articles alone are theirs to open
        self.owner: tuple[WriterArticles, str] | None = None  # the writers' lists, and this writer's key
        self.last_deleted: str | None = None  # the article this writer last took off their list
        # This tab's own edits of a block in place: the name the view gave it → its name now (the
        # view is not drawn again after a text is saved, see app.py).
        self._renamed: dict[str, str] = {}

    # --- the article -----------------------------------------------------------------------
    @property
    def article(self) -> Article | None:
        with self._lock:
            return self._history.current if self._history else None

    @property
    def history(self) -> History | None:
        return self._history

    def push(self, article: Article) -> Article:
        with self._lock:
            if self.workspace is not None and self.article_id is None:
                self.article_id = self._new_id(self.workspace)
            with self._writer():
                self._sync()
                article = with_names(article)
                if self.workspace is not None and self.article_id is not None:
                    article = self.workspace.adopt(self.article_id, article)
                if self._history is None:
                    history = History(article)
                else:
                    history = self._history.copy()
                    history.push(article)
                self._move_to(history)
            return article

    def _writer(self) -> AbstractContextManager:
        """The article's writer lock: held while this session reads, changes and saves it."""
        if self.workspace is None or self.article_id is None:
            return nullcontext()
        return self.workspace.writer_lock(self.article_id)

    def _saved_state(self) -> tuple | None:
        if self.workspace is None or self.article_id is None:
            return None
        folder = self.workspace.folder(self.article_id)
        try:
            # article.json's bytes say which version is current; history.json's stat whether the
            # versions around it changed (each save writes new files: a new inode, a new mtime).
            current = hashlib.sha1((folder / "article.json").read_bytes()).hexdigest()
            h = (folder / "history.json").stat()
            return current, h.st_ino, h.st_mtime_ns, h.st_size
        except OSError:
            return None

    def _sync(self) -> None:
        """Take up what another tab of this article saved since this one last read or wrote it."""
        state = self._saved_state()
        if state is None or state == self._seen or self.workspace is None or self.article_id is None:
            return
        try:
            history = self.workspace.load(self.article_id)
        except WorkspaceError:
            return
        self._history, self._seen = history, state
        self.version += 1

    def _move_to(self, history: History) -> None:
        """Save `history`, then make it this session's (a failed save leaves the session as it was)."""
        if self.workspace is not None and self.article_id is not None:
            self.workspace.save(self.article_id, history)
            self._seen = self._saved_state()
        self._history = history
        self.version += 1

    def resume(self, article_id: str | None) -> bool:
        """Take up a saved article again (after a reload or a browser restart); False if there
        is none by that id. The id comes from the browser and is checked by the workspace."""
        if self.workspace is None or not article_id:
            return False
        try:
            if not self.workspace.may_open(article_id, self.user):
                return False  # another user's article: as if there were none by that id
            history, self.resume_note = self.workspace.load_with_note(article_id)
        except WorkspaceError:
            return False
        with self._lock:
            self._history, self.article_id = history, article_id
            self._seen = self._saved_state()
            self.version += 1
        self.claim(article_id)
        return True

    def _with_photos(self, article: Article) -> Article:
        """The article with the writer's photos kept in its folder and listed in
        metadata["photos"] (hash and file name), so that a reload brings them back."""
        if self.workspace is None or not self._uploads:
            return article
        if self.article_id is None:
            self.article_id = self._new_id(self.workspace)
        kept = self.workspace.adopt(self.article_id, Article("", tuple(Figure(u.ref) for u in self._uploads)))
        photos = [{"sha256": f.image.sha256, "name": display_name(u.ref.path)}
                  for f, u in zip(kept.figures, self._uploads) if f.image is not None]
        return Article(article.title, article.blocks, {**article.metadata, "photos": photos})

    def request_fields(self) -> dict[str, Any]:
        """The request the article was composed from, as the editor's fields show it (an empty
        dict when there is none)."""
        article = self.article
        request = article.metadata.get("request") if article is not None else None
        if not isinstance(request, dict):
            return {}
        try:
            parsed = ComposeRequest.from_dict(request)  # read back from disk: checked like any request
        except RequestError:
            return {}
        return {"title": parsed.title, "outline": "\n".join(parsed.outline), "materials": parsed.materials,
                "style": parsed.style, "length": parsed.length, "language": parsed.language,
                "image_count": str(parsed.image_count)}

    def restore_photos(self) -> list[Path]:
        """Take up the writer's photos the article keeps (see _with_photos) as this session's
        uploads again; returns copies under their own file names for the photo field."""
        article = self.article
        entries = article.metadata.get("photos") if article is not None else None
        if self.workspace is None or self.article_id is None or not isinstance(entries, list):
            return []
        images = self.workspace.folder(self.article_id) / "images"
        out: list[Path] = []
        folder = self._scratch() / f"photos-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        for entry in entries[:MAX_RESTORED_PHOTOS]:
            if not isinstance(entry, dict) or not is_sha256(entry.get("sha256")):
                continue
            found = [p for p in images.glob(f"{entry['sha256']}.*") if p.is_file() and not p.is_symlink()]
            # The name comes from a file on disk: only its last part, and only ordinary characters.
            name = _SAFE_NAME.sub("_", display_name(str(entry.get("name") or "photo")))[-80:].lstrip(".") or "photo"
            if not found:
                continue
            dest = folder / name
            if dest.exists():
                dest = folder / f"{dest.stem}-{len(out)}{dest.suffix}"
            shutil.copyfile(found[0], dest)
            out.append(dest)
        try:
            self.set_uploads(out)
        except ImageError:
            return []
        return out

    def _new_id(self, workspace: Workspace) -> str:
        """A new article in the workspace, on this writer's list."""
        article_id = workspace.create(owner=self.user)
        self.claim(article_id)
        return article_id

    def claim(self, article_id: str) -> None:
        """Put an article on this writer's list (one they composed, opened or came back to)."""
        if self.owner is not None:
            self.owner[0].add(self.owner[1], article_id)

    def duplicate(self, article_id: str) -> str:
        """A copy of one of this writer's articles, as a new article of theirs (the status line)."""
        if (self.workspace is None or self.owner is None or not self.owner[0].owns(self.owner[1], article_id)
                or not self.workspace.may_open(article_id, self.user)):
            return "⚠️ That article is not on your list."
        try:
            source = self.workspace.load(article_id).current
        except WorkspaceError as exc:
            return f"⚠️ That article cannot be read ({exc})."
        with self._lock:
            self.start_new()
            self.push(Article(f"{source.title} (copy)", source.blocks, source.metadata))
        return f"Duplicated “{source.title}”: you are editing the copy."

    def start_new(self) -> None:
        """Compose the next article as a new one (the saved one stays on disk)."""
        with self._lock:
            self._history, self.article_id, self._seen, self.proposal = None, None, None, None
            self.version += 1

    def undo(self) -> str:
        return self._step(forward=False)

    def redo(self) -> str:
        return self._step(forward=True)

    def _step(self, forward: bool) -> str:
        """One step through the history, saved; says so when there is nowhere to go."""
        with self._lock, self._writer():
            self._sync()
            if self._history is None or not (self._history.can_redo if forward else self._history.can_undo):
                return "Nothing to redo." if forward else "Nothing to undo."
            history = self._history.copy()
            history.redo() if forward else history.undo()
            try:
                self._move_to(history)
            except SaveError as exc:
                return f"⚠️ {exc}"
        return "Redone." if forward else "Undone."

    # --- photos ----------------------------------------------------------------------------
    @property
    def uploads(self) -> list[LoadedImage]:
        return list(self._uploads)

    def set_uploads(self, paths: Sequence[str | Path]) -> list[LoadedImage]:
        """Decode the writer's photos; a bad one raises ImageError naming the file as the writer
        knows it, and the photos held before stay."""
        try:
            loaded = load_uploads(paths)  # held at the size models see; a limit on count and pixels
        except ImageError as exc:
            raise named_image_error(exc) from None
        self._uploads = loaded
        return self.uploads

    # --- jobs that call the model ----------------------------------------------------------
    def prepare_job(self) -> None:
        """A job was asked for and may wait in a queue: a Stop from now on stops it, even
        before it starts."""
        with self._lock:
            self.stop_event = threading.Event()
            self._prepared = True

    def _job_stop(self) -> threading.Event:
        with self._lock:
            if not self._prepared:  # a Stop pressed before this job was asked for does not stop it
                self.stop_event = threading.Event()
            self._prepared = False
            return self.stop_event

    def _job_model(self, services: Services) -> StoppableModel:
        return StoppableModel(services.model, self._job_stop())

    def _illustrator(self, services: Services, stop: threading.Event) -> Illustrator | None:
        """The image engine for this job (Stop ends its wait), its pictures in this session's
        temp folder until the workspace adopts them."""
        if services.imagegen is None:
            return None
        return Illustrator(StoppableGenerator(services.imagegen, stop), self._scratch() / "generated")

    def stop(self) -> None:
        self.stop_event.set()

    def compose(self, fields: dict[str, Any], photos: Sequence[str | Path], services: Services,
                seed: int = 0) -> Iterator[Update]:
        """Compose a new version from the request fields and photos, reporting progress; the
        article changes only when the compose has finished."""
        try:
            request = ComposeRequest.from_dict(fields)
            self.set_uploads(photos)
        except (RequestError, ImageError) as exc:
            yield Update(f"⚠️ {exc}", error=True)
            return
        model = self._job_model(services)
        illustrator = self._illustrator(services, model.stop)
        text, slots = "", 0
        counts = {"caption": 0, "figure": 0}
        try:
            for event in compose(request, model, services.encoder, services.pictures, uploads=self._uploads,
                                 seed=seed, illustrator=illustrator):
                if event.kind == "text":
                    text += event.data["delta"]
                    yield Update("Writing…", draft=text)
                elif event.kind == "stage" and event.data["stage"] in _STAGE_WORDS:
                    yield Update(_STAGE_WORDS[event.data["stage"]])
                elif event.kind == "slots":
                    slots = len(event.data["slots"])
                    yield Update(f"{plural(slots, 'picture')} to place")
                elif event.kind in counts:
                    counts[event.kind] += 1
                    word = "caption" if event.kind == "caption" else "picture"
                    yield Update(f"{word.capitalize()} {counts[event.kind]} of {slots}")
                elif event.kind == "done":
                    article = event.data["article"]
                    self.push(self._with_photos(article))
                    # The writer reads plain words; what the model answered and the rules decided
                    # goes to the server's log (and stays in article.json).
                    log.info("article %s composed: %s", self.article_id, compose_summary(article, detail=True))
                    yield Update(compose_summary(article), article_changed=True)
        except Cancelled:
            yield Update("Stopped. The article is as it was.", error=True)
        except ModelError as exc:
            yield Update(f"⚠️ The model failed: {exc}. The article is as it was.", error=True)
        except SaveError as exc:
            yield Update(f"⚠️ {exc}", error=True)

    def current(self) -> Article | None:
        """The article as it is now, with what another tab of it saved taken up."""
        with self._lock, self._writer():
            self._sync()
            return self.article

    def model_edit(self, op: str, index: int, extra: str, services: Services,
                   key: str | Sequence[str] | None = None, preview: bool = False) -> Iterator[Update]:
        """rewrite | expand | shorten | before | after | add_picture | ground on block `index`
        (with `key`: the block of that content nearest `index`, see block_key). The model writes
        from the article as it is when the edit starts; what it wrote replaces that block in the
        article as it is when it has finished, whatever other blocks were edited meanwhile."""
        # (No lock is held across a yield: a web framework may resume this generator on another thread.)
        target = self._target(index, key)
        if isinstance(target, Update):
            yield target
            return
        article, index = target
        model = self._job_model(services)
        seed = int(article.metadata.get("seed") or 0)
        runs = {
            "rewrite": lambda: edits.rewrite(article, index, model, instruction=extra, seed=seed),
            "expand": lambda: edits.expand(article, index, model, materials=extra, seed=seed),
            "shorten": lambda: edits.shorten(article, index, model, instruction=extra, seed=seed),
            "before": lambda: edits.insert_paragraph(article, index, "before", extra, model, seed=seed),
            "after": lambda: edits.insert_paragraph(article, index, "after", extra, model, seed=seed),
            "add_picture": lambda: edits.add_figure(article, index, model, library=services.pictures,
                                                    uploads=self._uploads, encoder=services.encoder,
                                                    caption=extra or None, blank=services.imagegen is not None),
            "ground": lambda: edits.keep_to_materials(article, index, model, seed=seed),
        }
        text = ""
        try:
            for event in runs[op]():
                if event.kind == "text":
                    text += event.data["delta"]
                    yield Update("Writing…", draft=text)
                elif event.kind == "done" and preview and op in PREVIEWED:
                    proposal = Proposal.of(op, extra, (index, block_key(article.blocks[index])), article,
                                           event.data["article"])
                    with self._lock:
                        self.proposal = proposal
                    self._redraw()
                    yield Update("The new text is under the old one: Accept it, Try again or Discard.",
                                 article_changed=True)
                elif event.kind == "done":
                    if not self._land(article, event.data["article"]):
                        yield Update(CHANGED_MEANWHILE, error=True, article_changed=True)
                        return
                    yield Update(f"{_EDIT_DONE[op]} Undo brings the previous version back.", article_changed=True)
        except Cancelled:
            yield Update("Stopped. The article is as it was.", error=True)
        except (edits.EditError, ModelError, ImageError, SaveError) as exc:
            yield Update(f"⚠️ {exc}", error=True)

    def generate(self, index: int, prompt: str, services: Services,
                 key: str | Sequence[str] | None = None) -> Iterator[Update]:
        """Generate the picture of figure `index` (with `key`: that figure wherever it now is)
        from `prompt` ("": the figure's own, see figure_prompt): a first picture with the slot's
        seed, or, where it has a generated one, a new one with a new seed. Runs as a job of its
        own (app.py's image queue): Stop ends it, and the article changes only when the picture
        has come, on the article as it is then."""
        if services.imagegen is None:
            yield Update(NO_ENGINE, error=True)
            return
        target = self._target(index, key)
        if isinstance(target, Update):
            yield target
            return
        article, index = target
        fig = article.blocks[index] if 0 <= index < len(article.blocks) else None
        if not isinstance(fig, Figure):
            yield Update("⚠️ That block is not a picture.", error=True)
            return
        prompt = " ".join(printable(prompt or "").split()) or figure_prompt(article, index)
        slot = sum(1 for b in article.blocks[:index] if isinstance(b, Paragraph)) - 1
        seed = next_seed(fig.generated.seed) if fig.generated is not None else \
            slot_seed(int(article.metadata.get("seed") or 0), max(slot, 0))
        illustrator = self._illustrator(services, self._job_stop())
        assert illustrator is not None  # services.imagegen was checked above
        yield Update("Generating a picture…")
        try:
            ref, generated = illustrator.illustrate(prompt, seed)
        except Cancelled:
            yield Update("Stopped. The article is as it was.", error=True)
            return
        except (ImageGenError, ImageError, OSError) as exc:
            yield Update(f"⚠️ No picture was generated: {exc}. The article is as it was.", error=True)
            return
        update = self.edit(lambda a, at: edits.use_generated(a, at, ref, generated), index, block_key(fig),
                           f"Picture generated (seed {seed}).")
        yield update

    def proposal_at(self) -> int | None:
        """The block the proposal is shown at in the article as it is now (None: there is none,
        or that block has changed since)."""
        proposal, article = self.proposal, self.article
        if proposal is None or article is None:
            return None
        return locate(article, proposal.index, proposal.key)

    def accept(self) -> Update:
        """The proposed text replaces the old (in the article as it now is); Undo brings it back."""
        with self._lock:
            proposal, self.proposal = self.proposal, None
        if proposal is None:
            return Update("⚠️ There is no new text to accept.", error=True)
        if not self._land(proposal.base, proposal.edited):
            return Update(CHANGED_MEANWHILE, error=True, article_changed=True)
        return Update(f"{_EDIT_DONE[proposal.op]} Undo brings the previous version back.", article_changed=True)

    def discard(self) -> Update:
        with self._lock:
            proposal, self.proposal = self.proposal, None
        self._redraw()
        if proposal is None:
            return Update("⚠️ There is no new text to discard.", error=True)
        return Update("Discarded: the article is as it was.", article_changed=True)

    def _names(self, key: str | Sequence[str]) -> list[str]:
        """`key` and the names this tab's own edits have since given that block."""
        names = [key] if isinstance(key, str) else list(key)
        for name in list(names):
            for _ in range(len(self._renamed)):
                name = self._renamed.get(name, "")
                if not name or name in names:
                    break
                names.append(name)
        return names

    def _land(self, base: Article, edited: Article) -> bool:
        """Save a model's edit of `base` as the next version: on the article as it is now (other
        blocks may have been edited meanwhile); False if the blocks it replaces have changed."""
        with self._lock, self._writer():
            now = self.current()
            new = edited if now == base else edits.rebase(base, edited, now) if now is not None else None
            if new is None:
                self._redraw()
                return False
            self.push(new)
            return True

    def _redraw(self) -> None:
        """The writer's view is out of date (an edit of theirs was refused): draw it again."""
        with self._lock:
            self.version += 1

    def touch(self) -> None:
        """Something the view shows besides the article changed (the writer's photos): draw it again."""
        self._redraw()

    def _target(self, index: int, key: str | Sequence[str] | None) -> tuple[Article, int] | Update:
        """The article as it is now and the block an edit is for: with `key`, the block the
        writer saw wherever it now is. An Update saying why not when there is no article, or no
        block is that one any more (the view is then drawn again)."""
        article = self.current()
        if article is None:
            return Update("Compose an article first.", error=True)
        if key is None:
            return article, index
        found = locate(article, index, self._names(key))
        if found is None:
            self._redraw()
            return Update(STALE, error=True, article_changed=True)
        return article, found

    def edit(self, fn: Callable[[Article, int], Article], index: int = 0, key: str | Sequence[str] | None = None,
             done: str = "Edited.") -> Update:
        """An edit that needs no model (text, caption, swap, delete), applied at once to the
        article as it is now: fn(article, index). With `key`, to the block the writer saw
        wherever it now is, and refused if no block is that one any more (see block_key)."""
        with self._lock, self._writer():
            target = self._target(index, key)
            if isinstance(target, Update):
                return target
            article, index = target
            try:
                new = fn(article, index)
            except (edits.EditError, ImageError, IndexError) as exc:
                return Update(f"⚠️ {exc}", error=True)
            if new == article:
                return Update("", article_changed=False)  # nothing changed (a text box left as it was)
            try:
                saved = self.push(new)
            except SaveError as exc:
                return Update(f"⚠️ {exc}", error=True)
            if len(saved.blocks) == len(article.blocks):
                self._renamed[block_key(article.blocks[index])] = block_key(saved.blocks[index])
        return Update(f"{done} Undo brings the previous version back.", article_changed=True)

    # --- open -------------------------------------------------------------------------------
    def open_file(self, path: str | Path) -> str:
        """Reopen an exported article (its .zip, or a lone article.json) as a new article to keep
        editing; returns the status line. The article held before stays saved."""
        path, name = Path(path), display_name(path)
        unpacked: Path | None = None
        try:
            if zipfile.is_zipfile(path):
                from composer.export import read_bundle

                unpacked = self._scratch() / f"open-{uuid.uuid4().hex[:8]}"
                article = read_bundle(path, extract_to=unpacked)
                missing = 0
            else:
                # A lone article.json has no pictures beside it: its figures keep their captions
                # and become empty slots to fill again.
                article = Article.from_json(path.read_text(encoding="utf-8"))
                missing = sum(1 for f in article.figures if f.image is not None)
                article = map_images(article, lambda ref: None)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:
            return f"⚠️ {name}: cannot be opened ({str(exc).replace(str(path), name)})"
        with self._lock:
            held = self._history, self.article_id, self._seen
            self.start_new()
            try:
                self.push(article)
            except SaveError as exc:
                if self.workspace is not None and self.article_id is not None:
                    self.workspace.delete(self.article_id)
                self._history, self.article_id, self._seen = held
                self.version += 1
                if unpacked is not None:
                    shutil.rmtree(unpacked, ignore_errors=True)
                return f"⚠️ {name}: cannot be opened. {exc}"
        if unpacked is not None and self.workspace is not None:
            shutil.rmtree(unpacked, ignore_errors=True)  # its pictures are in the workspace now
        note = f" Its {plural(missing, 'picture')} were not in the file: open the .zip to keep them." if missing else ""
        return f"Opened {name}.{note}"

    def _scratch(self) -> Path:
        """This session's own temp folder (made when first needed, removed by close)."""
        with self._lock:
            if self.closed:
                raise ValueError("this session has ended")
            if self._export_dir is None:
                self._export_dir = Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX))
            return self._export_dir

    # --- export ----------------------------------------------------------------------------
    def clipboard_html(self) -> str:
        """The current article as one sanitised HTML fragment with its pictures inline (data:
        URLs), for "Copy article": pasted into Google Docs, Substack, Medium or Notion, it keeps
        its headings, pictures and captions."""
        article = self.article
        if article is None:
            raise ValueError("compose an article first")
        try:
            return article_fragment(article)
        except ImageError as exc:
            raise named_image_error(exc) from None

    def export(self, sources: bool = False, formats: Sequence[str] = ALL_FORMATS) -> BundlePaths:
        """Write the current article as a bundle in this session's own temp folder (made on the
        first export, removed by close): every format (one download each) and the zip of all.
        Each export gets a fresh folder and the one before is removed, so an export never
        depends on what an earlier one left. `sources`: each format numbers the passages of the
        notes each paragraph rests on and lists them. A format this machine cannot make is in
        the answer's `skipped`, with the reason."""
        article = self.article
        if article is None:
            raise ValueError("compose an article first")
        scratch = self._scratch()
        with self._lock:
            self._exports += 1
            out = scratch / f"export-{self._exports}"
        try:
            paths = write_bundle(article, out, sources=sources, formats=formats)
        except ImageError as exc:
            raise named_image_error(exc) from None
        for old in scratch.glob("export-*"):
            if old != out:
                shutil.rmtree(old, ignore_errors=True)
        return paths

    # --- end -------------------------------------------------------------------------------
    def close(self) -> None:
        """The writer left: a job of theirs stops, their temp files go and their photos and
        history are let go (the saved article stays in the workspace)."""
        self.stop_event.set()
        with self._lock:
            self.closed = True
            export_dir, self._export_dir = self._export_dir, None
            self._uploads = []
            self._history = None
        if export_dir is not None:
            shutil.rmtree(export_dir, ignore_errors=True)


class SessionRegistry:
    """The writers a server holds, by session key (a browser tab). A tab that closes is closed
    here at once, rather than whenever the web framework gets round to dropping its state."""

    def __init__(self, factory: Callable[[], EditorSession] = EditorSession):
        self._factory = factory
        self._sessions: dict[str, EditorSession] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> EditorSession:
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = self._factory()
                session.key = key
            return session

    def close(self, key: str) -> None:
        with self._lock:
            session = self._sessions.pop(key, None)
        if session is not None:
            session.close()

    def close_all(self) -> None:
        for key in list(self._sessions):
            self.close(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._sessions
