"""One exception type for bad user input, so the workflow can print one clear line."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: names the file (or config key), the item and the problem."""

    def __init__(self, where: str, problem: str, item: str | None = None) -> None:
        self.where = where
        self.item = item
        self.problem = problem
        location = f"{where} [{item}]" if item is not None else where
        super().__init__(f"{location}: {problem}")
