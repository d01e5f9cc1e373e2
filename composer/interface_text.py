"""What the editor says to a writer, in the writer's language.

The interface's labels are translated in the browser (app.py's gr.I18n). Status and flag lines
are made on the server, from the article as it is, so they are translated here: the editor asks
for the language the browser sent (Accept-Language, the same preference the labels follow) and
`say` turns each English phrase it knows into Chinese. A phrase it does not know stays English
rather than being dropped; tests/test_interface_text.py fails when a status the editor can show
has no translation.

Why phrases and not whole messages: a status is built from parts ("Picture swapped." + " Undo
brings the previous version back.", a summary with counts and notes). Each part is translated
wherever it occurs, its numbers and names carried over as they are. The writer's own words in a
message (a title, a file name, an error's detail) stay as they are unless they hold one of these
whole phrases; every phrase is a sentence or a fixed label of ours, never a single common word.
"""
from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["LABELS_ZH", "interface_language", "say", "wait_words"]

LANGUAGES = ("en", "zh")

# The interface's labels in Chinese (keys are the English): app.py hands them to the browser's
# translation (gr.I18n), and the browser tests find a control by its label in either language.
LABELS_ZH = {
    "Title": "标题", "Outline (one point per line)": "提纲（每行一点）",
    "Materials (facts, notes)": "素材（事实、笔记）",
    "Style": "风格", "Length (words)": "篇幅（词数）", "Language": "语言", "Pictures": "图片数量", "Seed": "随机种子",
    "Your photos": "你的照片", "Compose": "撰写", "Stop": "停止", "New article": "新文章",
    "Open article.json or .zip": "打开 article.json 或 .zip", "Picture library": "图片库",
    "Add pictures to the library": "向图片库添加图片", "Re-sync the library": "重新同步图片库", "Search": "搜索",
    "Found": "搜索结果", "Undo": "撤销", "Redo": "重做", "Export": "导出",
    "Sources in the export": "导出时附上出处", "Download .zip": "下载 .zip",
    "Download .html": "下载 .html", "Download article.json": "下载 article.json",
    "Download .docx": "下载 .docx", "Download .pdf": "下载 .pdf", "Download WordPress": "下载 WordPress 区块",
    "Download .md": "下载 .md", "Copy article": "复制文章",
    "Instruction for Rewrite / Expand / Shorten, or what a new paragraph is about":
        "改写、扩写、缩写的要求，或新段落的内容",
    "Rewrite": "改写", "Expand": "扩写", "Shorten": "缩写", "Insert before": "在前面插入", "Insert after": "在后面插入",
    "Add picture after": "在后面加图", "Delete": "删除", "Caption": "图注", "Search library": "搜索图片库",
    "Remove picture": "移除图片", "Other pictures: click one to use it": "其他图片：点击即可替换",
    "Rewrite keeping to the materials": "按素材改写", "Your articles": "你的文章", "Open": "打开",
    "Duplicate": "复制", "Delete article": "删除文章", "Undo delete": "撤销删除",
    "Accept": "采用", "Try again": "重试", "Discard": "放弃",
    "Generate": "生成图片", "Regenerate": "重新生成", "Picture prompt": "图片提示词",
    "What the generated picture should show": "生成的图片应当画什么",
    "Search the library by other words": "换个说法搜索图片库", "Search the library by text": "用文字搜索图片库",
}


def interface_language(accept_language: str | None) -> str:
    """"zh" when the browser's first language preference is a Chinese one, otherwise "en"."""
    best, best_q = "", -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and q > best_q:
            best, best_q = tag.lower(), q
    return "zh" if best.startswith("zh") else "en"


# --- English phrase -> Chinese, longest first where one phrase holds another -----------------------
_ZH_PHRASES: tuple[tuple[str, str], ...] = (
    # a job under way
    ("Waiting for the model (another writer is using it)…", "正在等待模型（另一位作者正在使用）…"),
    ("Starting…", "开始…"),
    ("Writing…", "正在写作…"),
    ("Splitting into paragraphs…", "正在分段…"),
    ("Choosing where pictures go…", "正在决定图片的位置…"),
    ("Writing captions…", "正在写图注…"),
    ("Choosing pictures…", "正在挑选图片…"),
    ("Stopped. The article is as it was.", "已停止。文章保持原样。"),
    # a finished compose (the numbers come from the patterns below)
    ("The model wrote nothing usable, so the article holds your outline and materials: rewrite it.",
     "模型没有写出可用的内容，文章里是你的提纲和素材：请改写。"),
    ("The model's answer on where pictures go could not be used, so they follow the paragraphs they fit.",
     "模型给出的图片位置无法使用，图片已放在与之相符的段落后。"),
    ("The rewrite still said things your materials do not, so only the sentences they support were kept.",
     "改写后仍有素材里没有的内容，只保留了素材支持的句子。"),
    ("Some choices were made by simple rules (see article.json).", "有些选择是按简单规则做的（见 article.json）。"),
    # edits
    ("Undo brings the previous version back.", "撤销即可恢复上一版。"),
    ("Rewritten from your materials.", "已按素材改写。"),
    ("Rewritten.", "已改写。"),
    ("Expanded.", "已扩写。"),
    ("Shortened.", "已缩写。"),
    ("Paragraph inserted.", "已插入段落。"),
    ("Paragraph deleted.", "已删除段落。"),
    ("Picture added.", "已加图。"),
    ("Picture removed.", "已移除图片。"),
    ("Picture swapped.", "已替换图片。"),
    ("Picture found in the library.", "已在图片库中找到图片。"),
    ("Text saved.", "文字已保存。"),
    ("Caption saved.", "图注已保存。"),
    ("Edited.", "已编辑。"),
    ("Undone.", "已撤销。"),
    ("Redone.", "已重做。"),
    ("Nothing to undo.", "没有可撤销的操作。"),
    ("Nothing to redo.", "没有可重做的操作。"),
    ("The new text is under the old one: Accept it, Try again or Discard.",
     "新文字在原文下方：可以采用、重试或放弃。"),
    ("Discarded: the article is as it was.", "已放弃：文章保持原样。"),
    ("There is no new text to accept.", "没有可采用的新文字。"),
    ("There is no new text to discard.", "没有可放弃的新文字。"),
    ("That block was changed in another tab or by another edit since you saw it, so your change was not "
     "applied. The article now shows that change: make yours again if you still want it.",
     "你看到这一段之后，它已在另一个标签页或另一次编辑中被修改，所以你的修改没有生效。"
     "文章现在显示的是那次修改：如仍需要，请再改一次。"),
    ("That paragraph was edited while the model wrote, so nothing was replaced: your edit stays. Ask again "
     "to rewrite the new text.",
     "模型写作时这一段被编辑过，所以没有替换任何内容：你的编辑保留。如需改写新文字，请再试一次。"),
    ("The article is as it was.", "文章保持原样。"),
    ("The model failed:", "模型出错："),
    # an edit the model or the article could not do (composer.planner.edit's EditError)
    ("the model's answer held nothing your materials support; the paragraph is unchanged. Try again, or edit it "
     "by hand", "模型的回答里没有你的素材支持的内容；段落未改动。请重试，或手动修改"),
    ("nothing changed. Try again, or shorten it by hand", "没有改动。请重试，或手动缩写"),
    ("nothing changed. Add notes, or expand it by hand", "没有改动。请补充笔记，或手动扩写"),
    ("the model gave the paragraph back unchanged; nothing changed. Try again", "模型原样返回了段落；没有改动。请重试"),
    ("headings are edited by hand, not rewritten by the model", "标题请手动编辑，模型不改写标题"),
    ("every claim in this paragraph is in your materials; nothing to rewrite",
     "这一段的每个说法都在你的素材里；无需改写"),
    ("nothing in this paragraph is in your materials: edit it by hand or delete it",
     "这一段没有一处在你的素材里：请手动修改或删除"),
    ("the model returned no usable text; the paragraph is unchanged", "模型没有返回可用的文字；段落未改动"),
    ("the model returned no usable text; nothing was inserted", "模型没有返回可用的文字；没有插入任何内容"),
    ("say what the new paragraph is about (its outline is empty)", "请说明新段落写什么（它的提纲是空的）"),
    ("that picture is already used elsewhere in the article", "这张图已在文章别处使用"),
    ("the search caption is empty", "搜索用的图注是空的"),
    ("nothing in the library matches", "图片库里没有匹配的图片："),
    ("pictures go after paragraphs, not headings", "图片放在段落后面，不放在标题后面"),
    ("this paragraph already has a picture", "这一段已经有图了"),
    ("no pictures to choose from: upload some or open a library", "没有可选的图片：请上传照片或打开图片库"),
    ("no unused picture left to add", "没有剩下未用的图片可加"),
    ("compose an article first", "请先撰写一篇文章"),
    # generated pictures (composer.imagegen)
    ("No image engine: start the editor with --imagegen SPEC to generate pictures.",
     "没有图像引擎：用 --imagegen SPEC 启动编辑器才能生成图片。"),
    ("Or Generate one from its prompt.", "也可以按提示词生成一张。"),
    ("Generating a picture…", "正在生成图片…"),
    ("Generating pictures…", "正在生成图片…"),
    ("No picture was generated:", "没有生成图片："),
    ("That block is not a picture.", "这一块不是图片。"),
    ("Generated by an image engine", "由图像引擎生成"),
    ("Generated illustration", "生成的插图"),
    ("Generated", "生成"),
    # articles, opening, export
    ("Your article is back. Keep editing.", "你的文章回来了，继续编辑吧。"),
    ("Opened. Keep editing.", "已打开，继续编辑吧。"),
    ("Fill in a title and press Compose.", "填写标题，然后点“撰写”。"),
    ("A new article: fill in a title and press Compose.", "新文章：填写标题，然后点“撰写”。"),
    ("Compose an article first.", "请先撰写一篇文章。"),
    ("Choose one of your articles first.", "请先选择一篇你的文章。"),
    ("Choose an article.json or a .zip to open.", "请选择要打开的 article.json 或 .zip。"),
    ("Deleted from your articles. Undo delete brings it back.", "已从你的文章中删除。点“撤销删除”可恢复。"),
    ("Brought back to your articles.", "已恢复到你的文章中。"),
    ("Nothing to bring back.", "没有可恢复的文章。"),
    ("That article is not on your list.", "这篇文章不在你的列表里。"),
    ("That article cannot be opened.", "这篇文章无法打开。"),
    ("That article cannot be read", "这篇文章无法读取"),
    ("you are editing the copy.", "你正在编辑副本。"),
    ("Duplicated", "已复制"),
    ("Exported.", "已导出。"),
    ("Article copied: paste it into Google Docs, Word, Substack, Medium or Notion.",
     "文章已复制：可以粘贴到 Google Docs、Word、Substack、Medium 或 Notion。"),
    ("Nothing copied:", "没有复制任何内容："),
    ("This browser cannot copy rich text: use Download .html and copy from the page.",
     "这个浏览器不能复制富文本：请下载 .html，再从页面中复制。"),
    ("Export failed:", "导出失败："),
    ("No photos of yours.", "没有你的照片。"),
    ("Nothing was added.", "没有添加任何图片。"),
    ("cannot be opened", "无法打开"),
    # the header
    ("Illustrated articles.", "图文文章。"),
    ("The model is the small offline one that ships with the app: expect plain prose; start with `--model` for a "
     "stronger one.", "当前模型是随应用附带的离线小模型：文字会比较朴素；用 `--model` 启动可换更强的模型。"),
    # the check's flags and the article pane
    ("Not in your materials:", "素材中没有："),
    ("New paragraph", "新段落"),
    ("New text", "新文字"),
    ("The article appears here.", "文章会显示在这里。"),
    ("Empty slot", "空位"),
    ("click one of its candidates below to fill it.", "点击下面的一张候选图即可填上。"),
    ("no picture matched. Search the library with a caption, add photos and Add picture again, or remove the "
     "slot.", "没有匹配的图片。可以用图注搜索图片库，或添加照片后再点“在后面加图”，或移除这个空位。"),
    ("of your photos ready.", "张你的照片已就绪。"),
    ("unused: not in the article", "未使用：不在文章中"),
    ("not in the article", "不在文章中"),
    ("unused", "未使用"),
)

_ZH_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"Done: (\d+) paragraphs?, (\d+) pictures?(?:, (\d+) empty slots? \(pick one of its candidates\))?\."),
     lambda m: f"完成：{m[1]} 段，{m[2]} 张图" + (f"，{m[3]} 个空位（请从候选图中挑选）" if m[3] else "") + "。"),
    (re.compile(r"(\d+) claims? not in your materials\."), lambda m: f"{m[1]} 处说法不在你的素材中。"),
    (re.compile(r"(\d+) captions? (?:was|were) written from the photo or its paragraph \(the model's did not "
                r"fit\): check them\."),
     lambda m: f"{m[1]} 条图注是根据照片或所在段落写的（模型的图注不合适）：请检查。"),
    (re.compile(r"Waiting for another writer's article — about (\d+) (s|min)\."),
     lambda m: f"正在等待另一位作者的文章——大约 {m[1]} {'秒' if m[2] == 's' else '分钟'}。"),
    (re.compile(r"the model's shorter version was not shorter \((\d+) (words|characters) against (\d+)\);"),
     lambda m: f"模型的缩写版并没有更短（{m[1]} 对 {m[3]} {'词' if m[2] == 'words' else '字'}）；"),
    (re.compile(r"the model's longer version added nothing your materials support \((\d+) (words|characters) "
                r"against (\d+)\);"),
     lambda m: f"模型的扩写版没有增加你的素材支持的内容（{m[1]} 对 {m[3]} {'词' if m[2] == 'words' else '字'}）；"),
    (re.compile(r"block (\d+) is not a (paragraph|picture)"),
     lambda m: f"第 {int(m[1]) + 1} 块不是{'段落' if m[2] == 'paragraph' else '图片'}"),
    (re.compile(r"no block (\d+) to insert (before|after)"), lambda m: f"没有第 {int(m[1]) + 1} 块可以插入"),
    (re.compile(r"the picture has (\d+) candidates, not (\d+)"),
     lambda m: f"这张图只有 {m[1]} 张候选图，没有第 {m[2]} 张"),
    (re.compile(r"Picture generated \(seed (\d+)\)\."), lambda m: f"已生成图片（种子 {m[1]}）。"),
    (re.compile(r"(\d+) pictures? to place"), lambda m: f"要放 {m[1]} 张图"),
    (re.compile(r"Caption (\d+) of (\d+)"), lambda m: f"第 {m[1]}/{m[2]} 条图注"),
    (re.compile(r"Picture (\d+) of (\d+)"), lambda m: f"第 {m[1]}/{m[2]} 张图"),
    (re.compile(r"Its (\d+) pictures? were not in the file: open the \.zip to keep them\."),
     lambda m: f"文件里没有它的 {m[1]} 张图：打开 .zip 才能保留图片。"),
    (re.compile(r"Opened (.+?)\.(?= |$)"), lambda m: f"已打开 {m[1]}。"),
    # the header's "model **NAME**, encoder **NAME**, library **FOLDER**": the names stay as they are
    (re.compile(r"(?<![\w/])(model|encoder|library|image engine) (?=\*\*)"),
     lambda m: {"model": "模型 ", "encoder": "编码器 ", "library": "图片库 ", "image engine": "图像引擎 "}[m[1]]),
    (re.compile(r"\((\d+) pictures?\)"), lambda m: f"（{m[1]} 张图）"),
    (re.compile(r"Sources \((\d+)\)"), lambda m: f"出处（{m[1]}）"),
    (re.compile(r"placed after paragraph (\d+)"), lambda m: f"已放在第 {m[1]} 段后"),
    (re.compile(r"placed before paragraph 1"), lambda m: "已放在第 1 段前"),
    (re.compile(r"after paragraph (\d+)"), lambda m: f"第 {m[1]} 段后"),
    (re.compile(r"\bparagraph (\d+)"), lambda m: f"第 {m[1]} 段"),
)

_PHRASE = re.compile("|".join(re.escape(en) for en, _ in sorted(_ZH_PHRASES, key=lambda p: -len(p[0]))))
_ZH = dict(_ZH_PHRASES)


def say(text: str, language: str) -> str:
    """`text` in `language`: each known English phrase translated where it occurs, everything
    else (the writer's words, names, numbers) as it is."""
    if language != "zh" or not text:
        return text
    out = _PHRASE.sub(lambda m: _ZH[m[0]], text)
    for pattern, chinese in _ZH_PATTERNS:
        out = pattern.sub(chinese, out)
    # A sentence that now ends in Chinese ends with a Chinese full stop, and needs no space after it.
    out = re.sub(r"(?<=[\u4e00-\u9fff）])\.(?=\s|$)", "。", out)
    return re.sub(r"(?<=[。：！？）])[ \t]+(?=\S)", "", out)


def wait_words(seconds: float) -> str:
    """How long a writer will wait, in round figures: "about 40 s", "about 3 min"."""
    if seconds < 60:
        return f"about {max(5, int(round(seconds / 5.0)) * 5)} s"
    return f"about {int(round(seconds / 60.0))} min"
