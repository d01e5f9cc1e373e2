"""The editor's per-writer logic, without a browser: undo messages, upload errors that name the
writer's file, and a closed session's files and photos let go."""
import gc
import shutil
import weakref
from pathlib import Path

import pytest

from composer.article import Article, Figure, ImageRef, Paragraph
from composer.editor_session import EXPORT_PREFIX, EditorSession, SessionRegistry
from composer.images import ImageError
from composer.services import compose_summary

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "assets/library/cat.jpg"


def article(text: str = "A paragraph.") -> Article:
    return Article("T", (Paragraph(text),))


def test_undo_with_nothing_to_undo_says_so():
    s = EditorSession()
    assert s.undo() == "Nothing to undo."
    assert s.redo() == "Nothing to redo."
    s.push(article("one"))
    assert s.undo() == "Nothing to undo."
    s.push(article("two"))
    assert s.undo() == "Undone."
    assert s.article.blocks[0].text == "one"
    assert s.redo() == "Redone."
    assert s.redo() == "Nothing to redo."
    assert s.article.blocks[0].text == "two"


def test_upload_error_names_the_file_not_the_server_cache(tmp_path):
    cache = tmp_path / "gradio" / "0123456789abcdef"
    cache.mkdir(parents=True)
    bad = cache / "holiday.jpg"
    bad.write_text("not really a photo")
    s = EditorSession()
    with pytest.raises(ImageError) as info:
        s.set_uploads([bad])
    assert str(info.value).startswith("holiday.jpg: ")
    assert str(tmp_path) not in str(info.value)


def test_export_error_names_the_file(tmp_path):
    gone = tmp_path / "cache" / "gone.jpg"
    s = EditorSession()
    s.push(Article("T", (Paragraph("p"), Figure(ImageRef("0" * 64, str(gone)), "c"))))
    with pytest.raises(ImageError) as info:
        s.export()
    assert "gone.jpg" in str(info.value) and str(tmp_path) not in str(info.value)
    s.close()


def test_closing_a_session_removes_its_export_folder_and_lets_its_photos_go(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    shutil.copy(CAT, tmp_path / "cat.jpg")
    registry = SessionRegistry()
    s = registry.get("tab-1")
    assert registry.get("tab-1") is s
    photos = s.set_uploads([tmp_path / "cat.jpg"])
    s.push(Article("T", (Paragraph("p"), Figure(photos[0].ref, "a cat", source="upload"))))
    paths = s.export()
    assert paths["zip"].is_file()
    assert len(list(tmp_path.glob(EXPORT_PREFIX + "*"))) == 1
    pixels = weakref.ref(photos[0].image)
    del photos
    registry.close("tab-1")
    gc.collect()
    assert list(tmp_path.glob(EXPORT_PREFIX + "*")) == []
    assert pixels() is None, "the closed session's decoded photo is still held"
    assert "tab-1" not in registry and len(registry) == 0
    assert s.article is None


def test_a_session_that_never_exports_makes_no_temp_folder(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    s = EditorSession()
    s.push(article())
    s.undo()
    s.close()
    assert list(tmp_path.iterdir()) == []


def test_compose_summary_counts_and_notes():
    a = Article("T", (Paragraph("H", kind="heading", level=2), Paragraph("p1"), Figure(None, "c"), Paragraph("p2")),
                metadata={"fallbacks": [{"step": "place", "reason": "<b>rule</b>"}]})
    line = compose_summary(a, detail=True)
    assert line.startswith("Done: 2 paragraphs, 0 pictures, 1 empty slot")
    assert "place: <b>rule</b>" in line  # escaping is the view's job


# --- jobs that run the model: progress, the article saved, Stop -------------------------------
from fakes import ScriptedModel  # noqa: E402

from composer.model.serialized import SerializedModel  # noqa: E402
from composer.services import Services  # noqa: E402
from composer.workspace import Workspace  # noqa: E402

TEXT = ("The café opens at seven and the first customers come in from the rain. " * 3 + "\n\n"
        + "A tabby cat sleeps on the window seat while the espresso machine hisses. " * 3)


@pytest.fixture
def services():
    model = SerializedModel(ScriptedModel(TEXT, place="1", caption="A cat on a window seat"))
    yield Services(model, None, None)
    model.close()


def test_compose_reports_progress_and_saves_the_article(services, tmp_path):
    ws = Workspace(tmp_path)
    s = EditorSession(ws)
    updates = list(s.compose({"title": "The café", "length": 100, "image_count": 0}, [], services))
    assert updates[0].status == "Writing…" and updates[0].draft
    assert updates[-1].article_changed and updates[-1].status.startswith("Done: ")
    assert s.article.title == "The café"
    assert ws.load(s.article_id).current == s.article  # a reload finds it


def test_a_bad_request_changes_nothing(services):
    s = EditorSession()
    s.push(article("kept"))
    [update] = list(s.compose({"title": "  "}, [], services))
    assert update.error and "title" in update.status
    assert s.article.blocks[0].text == "kept"


def test_stop_mid_compose_keeps_the_previous_article(services):
    s = EditorSession()
    s.push(article("kept"))
    job = s.compose({"title": "The café", "length": 100}, [], services)
    first = next(job)
    assert first.status == "Writing…"
    s.stop()
    rest = list(job)
    assert rest[-1].status.startswith("Stopped") and rest[-1].error
    assert s.article.blocks[0].text == "kept"
    # The model serves the next job at once.
    assert list(s.compose({"title": "Again", "length": 100}, [], services))[-1].article_changed


def test_each_photo_says_where_it_went_or_why_not(tmp_path):
    from composer.editor_session import photo_statuses

    shutil.copy(CAT, tmp_path / "cat.jpg")
    shutil.copy(ROOT / "assets/library/coffee.jpg", tmp_path / "coffee.jpg")
    s = EditorSession()
    cat, coffee = s.set_uploads([tmp_path / "cat.jpg", tmp_path / "coffee.jpg"])
    a = Article("T", (Paragraph("H", kind="heading", level=2), Paragraph("p1"), Paragraph("p2"),
                      Figure(cat.ref, "a cat", source="upload")),
                metadata={"uploads": [{"sha256": coffee.ref.sha256, "reason": "the request asks for 1 picture"}]})
    placed, unused = photo_statuses(a, s.uploads)
    assert (placed.name, placed.describe()) == ("cat.jpg", "placed after paragraph 2")
    assert (unused.name, unused.describe()) == ("coffee.jpg", "unused: the request asks for 1 picture")
    plain = Article("T", (Paragraph("p1"),))
    assert photo_statuses(plain, s.uploads)[1].describe() == "unused: not in the article"


def test_pictures_added_to_a_library_are_checked_and_never_overwrite(tmp_path, tiny_clip):
    from composer.retrieval import ImageLibrary
    from composer.services import add_to_library, library_summary

    folder = tmp_path / "library"
    folder.mkdir()
    lib = ImageLibrary(folder, encoder=tiny_clip)
    assert "0 pictures" in library_summary(lib)
    cache = tmp_path / "cache" / "abc"
    cache.mkdir(parents=True)
    shutil.copy(CAT, cache / "cat.jpg")
    (cache / "notes.jpg").write_text("not a picture")
    with pytest.raises(ImageError, match=r"^notes\.jpg: "):
        add_to_library(lib, [cache / "cat.jpg", cache / "notes.jpg"])
    assert list(folder.glob("*.jpg")) == []  # nothing half added
    add_to_library(lib, [cache / "cat.jpg"])
    add_to_library(lib, [cache / "cat.jpg"])
    assert sorted(p.name for p in folder.glob("*.jpg")) == ["cat-1.jpg", "cat.jpg"]
    lib.sync()
    assert "2 pictures" in library_summary(lib)
    lib.close()


def test_a_stop_while_the_compose_waits_in_the_queue_stops_it(services):
    s = EditorSession()
    s.push(article("kept"))
    s.prepare_job()  # Compose pressed: the job waits for the model
    s.stop()
    updates = list(s.compose({"title": "The café", "length": 100}, [], services))
    assert updates[-1].status.startswith("Stopped")
    assert s.article.blocks[0].text == "kept"
    assert list(s.compose({"title": "Again", "length": 100}, [], services))[-1].article_changed


def test_exporting_again_replaces_the_previous_export(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    s = EditorSession()
    s.push(article("one"))  # no pictures: the case a second export into one folder refused
    first = s.export()
    s.push(article("two"))
    second = s.export()
    assert "two" in second["markdown"].read_text()
    assert not first["zip"].exists()
    s.close()
    assert list(tmp_path.iterdir()) == []


def test_an_empty_library_gives_no_empty_slots(tmp_path, tiny_clip):
    """The app keeps its own library, empty at first: an article composed then has no picture
    slots it could not fill; once the library holds pictures, they are used."""
    from composer.retrieval import ImageLibrary

    folder = tmp_path / "library"
    folder.mkdir()
    lib = ImageLibrary(folder, encoder=tiny_clip)
    model = SerializedModel(ScriptedModel(TEXT, place="1", caption="A cat on a window seat"))
    services = Services(model, tiny_clip, lib)
    try:
        assert services.pictures is None
        s = EditorSession()
        list(s.compose({"title": "The café", "length": 100, "image_count": "auto"}, [], services))
        assert s.article is not None and s.article.figures == []
        shutil.copy(CAT, folder / "cat.jpg")
        lib.sync()
        assert services.pictures is lib
    finally:
        model.close()
        lib.close()


# --- two tabs of one article are two writers; a model edit lands by block identity -------------
from composer.editor_session import block_key  # noqa: E402
from composer.planner import edit as edits  # noqa: E402


def texts(a: Article) -> list[str]:
    return [b.text for b in a.blocks if isinstance(b, Paragraph)]


def set_text(text: str):
    return lambda a, i: edits.update_text(a, i, text)


def test_two_tabs_of_one_article_keep_both_edits_and_every_version(tmp_path):
    ws = Workspace(tmp_path)
    t1 = EditorSession(ws)
    t1.push(Article("T", (Paragraph("Alpha."), Paragraph("Beta."), Paragraph("Gamma."))))
    t2 = EditorSession(ws)
    assert t2.resume(t1.article_id)
    seen = t2.article  # both tabs show this version
    keys = [block_key(b) for b in seen.blocks]
    assert not t1.edit(set_text("Alpha, by the first tab."), 0, keys[0], "Text saved.").error
    # The second tab still shows the old version and edits another block: both edits stay.
    update = t2.edit(set_text("Beta, by the second tab."), 1, keys[1], "Text saved.")
    assert not update.error, update.status
    assert texts(ws.load(t1.article_id).current) == ["Alpha, by the first tab.", "Beta, by the second tab.", "Gamma."]
    assert texts(t2.article) == texts(ws.load(t1.article_id).current)
    # An edit of a block the other tab has changed since is refused, and says so.
    version = t2.version
    update = t2.edit(set_text("Alpha, overwritten."), 0, keys[0], "Text saved.")
    assert update.error and "changed" in update.status
    assert t2.version > version  # the tab draws the article again...
    assert texts(t2.article)[0] == "Alpha, by the first tab."
    # ...and the first tab, on its next edit, builds on the second tab's work.
    assert not t1.edit(set_text("Gamma, by the first tab."), 2, keys[2], "Text saved.").error
    assert texts(t1.article) == ["Alpha, by the first tab.", "Beta, by the second tab.", "Gamma, by the first tab."]
    # The history holds every saved version: undo walks back through both tabs' edits.
    reopened = EditorSession(ws)
    assert reopened.resume(t1.article_id)
    seen_texts = [texts(reopened.article)]
    while reopened.undo() == "Undone.":
        seen_texts.append(texts(reopened.article))
    assert seen_texts == [
        ["Alpha, by the first tab.", "Beta, by the second tab.", "Gamma, by the first tab."],
        ["Alpha, by the first tab.", "Beta, by the second tab.", "Gamma."],
        ["Alpha, by the first tab.", "Beta.", "Gamma."],
        ["Alpha.", "Beta.", "Gamma."],
    ]


def test_an_edit_of_a_stale_view_finds_its_block_where_it_now_is(tmp_path):
    ws = Workspace(tmp_path)
    t1 = EditorSession(ws)
    t1.push(Article("T", (Paragraph("Alpha."), Paragraph("Beta."), Paragraph("Gamma."))))
    t2 = EditorSession(ws)
    t2.resume(t1.article_id)
    keys = [block_key(b) for b in t2.article.blocks]
    assert not t1.edit(lambda a, i: edits.delete_block(a, i), 0, keys[0], "Paragraph deleted.").error
    # Gamma was block 2 in the second tab's view; it is block 1 now.
    assert not t2.edit(lambda a, i: edits.delete_block(a, i), 2, keys[2], "Paragraph deleted.").error
    assert texts(t2.article) == ["Beta."]


def test_undo_in_one_tab_undoes_the_articles_last_version(tmp_path):
    ws = Workspace(tmp_path)
    t1 = EditorSession(ws)
    t1.push(Article("T", (Paragraph("Alpha."), Paragraph("Beta."))))
    t2 = EditorSession(ws)
    t2.resume(t1.article_id)
    keys = [block_key(b) for b in t2.article.blocks]
    t1.edit(set_text("Alpha 2."), 0, keys[0])
    t2.edit(set_text("Beta 2."), 1, keys[1])
    assert t1.undo() == "Undone."
    assert texts(t1.article) == ["Alpha 2.", "Beta."]  # the second tab's edit went, not the first's
    assert texts(ws.load(t1.article_id).current) == ["Alpha 2.", "Beta."]


def shortening_services(answer: str):
    model = SerializedModel(ScriptedModel(TEXT, edit=answer))
    return model, Services(model, None, None)


def test_a_model_edit_lands_although_another_block_was_edited_meanwhile(tmp_path):
    model, services = shortening_services("Short.")
    try:
        s = EditorSession(Workspace(tmp_path))
        s.push(Article("T", (Paragraph("A long first paragraph that goes on."), Paragraph("Beta."),
                             Figure(None, "a cat"))))
        keys = [block_key(b) for b in s.article.blocks]
        job = s.model_edit("shorten", 0, "", services, keys[0])
        assert next(job).status == "Writing…"
        assert not s.edit(lambda a, i: edits.set_caption(a, i, "a tabby cat"), 2, keys[2], "Caption saved.").error
        assert not s.edit(set_text("Beta, edited."), 1, keys[1]).error
        last = list(job)[-1]
        assert last.article_changed and not last.error, last.status
        assert texts(s.article) == ["Short.", "Beta, edited."]
        assert s.article.blocks[2].caption == "a tabby cat"
        assert s.undo() == "Undone." and texts(s.article) == ["A long first paragraph that goes on.", "Beta, edited."]
    finally:
        model.close()


def test_a_model_edit_of_a_block_edited_meanwhile_is_refused(tmp_path):
    model, services = shortening_services("Short.")
    try:
        s = EditorSession(Workspace(tmp_path))
        s.push(Article("T", (Paragraph("A long first paragraph that goes on."), Paragraph("Beta."))))
        keys = [block_key(b) for b in s.article.blocks]
        job = s.model_edit("shorten", 0, "", services, keys[0])
        next(job)
        assert not s.edit(set_text("Written by hand."), 0, keys[0]).error
        last = list(job)[-1]
        assert last.error and "nothing was replaced" in last.status
        assert texts(s.article) == ["Written by hand.", "Beta."]
    finally:
        model.close()


def test_an_insert_lands_beside_its_paragraph_after_other_edits(tmp_path):
    model, services = shortening_services("A new paragraph.")
    try:
        s = EditorSession()
        s.push(Article("T", (Paragraph("Alpha."), Paragraph("Beta."), Paragraph("Gamma."))))
        keys = [block_key(b) for b in s.article.blocks]
        job = s.model_edit("after", 1, "the middle", services, keys[1])
        next(job)
        assert not s.edit(lambda a, i: edits.delete_block(a, i), 0, keys[0]).error
        assert list(job)[-1].article_changed
        assert texts(s.article) == ["Beta.", "A new paragraph.", "Gamma."]
    finally:
        model.close()


def test_each_figure_offers_the_writers_other_photos_then_the_library_by_file_name(tmp_path):
    from composer.article import Candidate
    from composer.editor_session import picture_name, picture_options

    for name in ("cat.jpg", "coffee.jpg", "rocket.jpg"):
        shutil.copy(ROOT / "assets/library" / name, tmp_path / name)
    s = EditorSession(Workspace(tmp_path / "data"))
    cat, coffee, rocket = s.set_uploads([tmp_path / n for n in ("cat.jpg", "coffee.jpg", "rocket.jpg")])
    from composer.images import load_image

    library = [Candidate(load_image(ROOT / "assets/library/astronaut.jpg").ref, 0.3),
               Candidate(cat.ref, 0.2)]
    saved = s.push(Article("T", (Paragraph("p1"), Figure(cat.ref, "a cat", source="upload", candidates=tuple(library)),
                                 Paragraph("p2"), Figure(rocket.ref, "a rocket", source="upload"))))
    fig = saved.blocks[1]
    assert "data" in fig.image.path and "cat" not in Path(fig.image.path).name  # stored by content hash...
    assert picture_name(saved, fig.image) == "cat.jpg"  # ...and still named as the writer knows it
    options = picture_options(saved, 1, s.uploads)
    # The writer's other unused photo first (the rocket is in the article), then the library's.
    assert [(picture_name(saved, o.ref), o.source) for o in options] == [("coffee.jpg", "upload"),
                                                                         ("astronaut.jpg", "library")]
    update = s.edit(lambda a, i: edits.use_picture(a, i, options[0].ref, options[0].source), 1,
                    block_key(fig), "Picture swapped.")
    assert not update.error, update.status
    assert s.article.blocks[1].image.sha256 == coffee.ref.sha256 and s.article.blocks[1].source == "upload"
    assert picture_name(s.article, s.article.blocks[1].image) == "coffee.jpg"


def test_a_reload_brings_back_the_request_and_the_photos(services, tmp_path):
    for name in ("cat.jpg", "coffee.jpg"):
        shutil.copy(ROOT / "assets/library" / name, tmp_path / name)
    ws = Workspace(tmp_path / "data")
    s = EditorSession(ws)
    fields = {"title": "The café", "outline": "Opening\nThe cat", "materials": "Opens at seven.", "style": "warm",
              "length": 150, "language": "en", "image_count": "1"}
    list(s.compose(fields, [tmp_path / "cat.jpg", tmp_path / "coffee.jpg"], services))
    (tmp_path / "cat.jpg").unlink()  # the upload cache is gone; the article keeps its photos
    (tmp_path / "coffee.jpg").unlink()
    s.close()
    back = EditorSession(ws)
    assert back.resume(s.article_id)
    request = back.request_fields()
    assert (request["title"], request["outline"], request["materials"], request["style"], request["length"],
            request["image_count"]) == ("The café", "Opening\nThe cat", "Opens at seven.", "warm", 150, "1")
    photos = back.restore_photos()
    assert sorted(Path(p).name for p in photos) == ["cat.jpg", "coffee.jpg"]
    assert sorted(display_name_of(u) for u in back.uploads) == ["cat.jpg", "coffee.jpg"]
    back.close()


def display_name_of(upload) -> str:
    return Path(upload.ref.path).name


def test_the_status_after_compose_is_in_the_writers_words(caplog):
    """Issue 18, case 6: the status said "Decided by rule: place: the answer named 1 of 2
    paragraphs; the rule placed the pictures (model said '1. In fact…')"."""
    a = Article("T", (Paragraph("p1"), Figure(None, "c"), Paragraph("p2")), metadata={"fallbacks": [
        {"step": "place", "reason": "the answer named 1 of 2 paragraphs; the rule placed the pictures (model said "
                                    "'1. In fact')"},
        {"step": "caption", "reason": "paragraph 1: unusable caption '\"A'; used its photo's description"},
        {"step": "caption", "reason": "paragraph 2: unusable caption 'B'; used its first sentence"}]})
    line = compose_summary(a)
    assert "rule" not in line and "model said" not in line and "unusable" not in line
    assert "The model's answer on where pictures go could not be used, so they follow the paragraphs they fit" in line
    assert "2 captions were written from the photo or its paragraph" in line
    detailed = compose_summary(a, detail=True)  # the CLI, for whoever runs it, says what happened inside
    assert "model said '1. In fact'" in detailed


def test_a_model_edit_previews_before_it_replaces(tmp_path):
    """Issue 18, case 10: the new text is shown beside the old; nothing changes until Accept."""
    model, services = shortening_services("Short.")
    try:
        s = EditorSession(Workspace(tmp_path))
        s.push(Article("T", (Paragraph("A long first paragraph that goes on."), Paragraph("Beta."))))
        keys = [block_key(b) for b in s.article.blocks]
        last = list(s.model_edit("shorten", 0, "", services, keys[0], preview=True))[-1]
        assert not last.error and "Accept" in last.status
        assert texts(s.article) == ["A long first paragraph that goes on.", "Beta."]  # nothing changed yet
        assert s.proposal is not None and [p.text for p in s.proposal.new] == ["Short."]
        assert s.proposal_at() == 0
        # Meanwhile another block is edited; Accept still lands, and Undo brings the old text back.
        s.edit(set_text("Beta, edited."), 1, keys[1])
        update = s.accept()
        assert not update.error and s.proposal is None
        assert texts(s.article) == ["Short.", "Beta, edited."]
        assert s.undo() == "Undone." and texts(s.article)[0] == "A long first paragraph that goes on."
        # Discard leaves the article as it is.
        list(s.model_edit("shorten", 0, "", services, block_key(s.article.blocks[0]), preview=True))
        assert s.proposal is not None
        version = s.article
        assert not s.discard().error and s.proposal is None and s.article == version
        assert s.accept().error  # nothing to accept
    finally:
        model.close()


def test_your_articles_are_listed_for_you_alone_and_a_delete_can_be_undone(tmp_path):
    """Issue 18, case 11: a writer's articles, wherever they open the editor; never another's."""
    from composer.writers import WriterArticles

    ws = Workspace(tmp_path)
    mine = WriterArticles(ws)
    s = EditorSession(ws)
    s.owner = (mine, "user:ann")
    s.push(Article("First", (Paragraph("One."), Figure(ImageRef("0" * 64, str(CAT)), "a cat"))))
    first = s.article_id
    s.start_new()
    s.push(Article("Second", (Paragraph("Two."),)))
    second = s.article_id
    assert [e.title for e in mine.list("user:ann")] == ["Second", "First"]
    assert [e.pictures for e in mine.list("user:ann")] == [0, 1]
    assert mine.list("user:bob") == [] and not mine.owns("user:bob", first)
    # Another browser of the same writer opens one; a duplicate is a new article of theirs.
    other = EditorSession(ws)
    other.owner = (mine, "user:ann")
    assert other.duplicate(first).startswith("Duplicated")
    assert other.article_id not in (first, second) and other.article.title == "First (copy)"
    assert len(mine.list("user:ann")) == 3
    assert not other.duplicate("f" * 32).startswith("Duplicated")  # not theirs
    assert mine.delete("user:ann", second) and [e.id for e in mine.list("user:ann")].count(second) == 0
    assert mine.restore("user:ann", second) and second in [e.id for e in mine.list("user:ann")]
    assert ws.exists(second)


def test_a_block_edited_in_this_tab_is_still_found_by_the_name_the_view_gave_it(tmp_path):
    """The view is not drawn again after a text is saved (a redraw between a text box's blur and a
    click on a tool made Gradio drop the click: KeyError, "Error"); the tab's next edit of that
    block, named as the view first drew it, still lands. Another tab's is refused."""
    ws = Workspace(tmp_path)
    s = EditorSession(ws)
    s.push(Article("T", (Paragraph("Alpha."), Paragraph("Beta."))))
    other = EditorSession(ws)
    other.resume(s.article_id)
    drawn = block_key(s.article.blocks[0])
    assert not s.edit(set_text("Alpha, once."), 0, drawn).error
    assert not s.edit(set_text("Alpha, twice."), 0, drawn).error
    assert texts(s.article) == ["Alpha, twice.", "Beta."]
    assert other.edit(set_text("Alpha, by the other tab."), 0, drawn).error
