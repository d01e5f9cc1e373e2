"""Undo and redo over immutable articles: every edit pushes the new version."""
from __future__ import annotations

from composer.article import Article


class History:
    def __init__(self, article: Article, limit: int = 100):
        self._past: list[Article] = []
        self._future: list[Article] = []
        self._current = article
        self.limit = limit

    @property
    def current(self) -> Article:
        return self._current

    @property
    def can_undo(self) -> bool:
        return bool(self._past)

    @property
    def can_redo(self) -> bool:
        return bool(self._future)

    def copy(self) -> History:
        """Another History with the same versions (articles are immutable: nothing is copied
        but the lists), to change and save before it replaces this one."""
        other = History(self._current, self.limit)
        other._past, other._future = list(self._past), list(self._future)
        return other

    def push(self, article: Article) -> Article:
        if article == self._current:
            return article
        self._past.append(self._current)
        del self._past[: -self.limit]
        self._future.clear()
        self._current = article
        return article

    def undo(self) -> Article:
        if self._past:
            self._future.append(self._current)
            self._current = self._past.pop()
        return self._current

    def redo(self) -> Article:
        if self._future:
            self._past.append(self._current)
            self._current = self._future.pop()
        return self._current
