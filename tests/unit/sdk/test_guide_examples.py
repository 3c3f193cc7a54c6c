"""examples/sdk/ holds the API guide's Python examples byte for byte, and the runner changes
nothing in them but the two placeholder credentials (tests/integration/sdk/guide_runner.py)."""

from __future__ import annotations

import ast
import difflib

import pytest

from tests.integration.sdk.guide_runner import (
    BLOCKS,
    COMPLETE,
    EXAMPLES,
    GUIDE,
    STREAMING,
    guide_block,
    with_credentials,
)
from tests.integration.sdk.guide_stream_harness import STREAM_PATHS, load

MARKDOWN = """# Guide

#### Complete SDK Example
```bash
pip install x
```

```python
import x  \t
client = X(client_id="your_client_id",

           client_secret="your_client_secret")
```

```python
other = 1
```
"""


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_each_example_is_the_guides_block_byte_for_byte(name: str) -> None:
    if not GUIDE.exists():
        pytest.skip(f"the API guide is not at {GUIDE} (outside the repository)")
    expected = guide_block(GUIDE.read_text(encoding="utf-8"), BLOCKS[name])
    actual = (EXAMPLES / name).read_bytes()
    assert actual == expected.encode("utf-8"), "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.decode("utf-8", "replace").splitlines(keepends=True),
            "guide",
            name,
        )
    )


def test_the_block_after_the_heading_is_taken_whole() -> None:
    block = guide_block(MARKDOWN, "#### Complete SDK Example")
    assert block == (
        'import x  \t\nclient = X(client_id="your_client_id",\n\n'
        '           client_secret="your_client_secret")\n'
    )
    with pytest.raises(ValueError):
        guide_block(MARKDOWN, "#### Missing")


def test_credentials_are_the_only_change() -> None:
    for path in (COMPLETE, STREAMING):
        source = path.read_text()
        changed = with_credentials(source, 'id "quoted"', "s3cr\\et")
        removed = [
            d for d in difflib.ndiff(source.splitlines(), changed.splitlines()) if d[0] == "-"
        ]
        assert len(removed) == source.count('"your_client_id"') + source.count(
            '"your_client_secret"'
        )
        assert all("your_client_id" in d or "your_client_secret" in d for d in removed)
        assert (
            changed.replace(r'"id \"quoted\""', '"your_client_id"').replace(
                r'"s3cr\\et"', '"your_client_secret"'
            )
            == source
        )
        ast.parse(changed)  # still Python, the literals still the values given


def test_a_missing_placeholder_fails() -> None:
    with pytest.raises(AssertionError, match="your_client_secret"):
        with_credentials('AIAClient(client_id="your_client_id")', "a", "b")


def test_the_streaming_example_loads_without_running_its_main_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[object] = []
    monkeypatch.setattr("asyncio.run", ran.append)  # the guide's __main__ block would call it
    example = load(STREAMING, "cid", "secret")
    assert ran == []
    assert example["__name__"] != "__main__"
    for name in STREAM_PATHS:
        assert callable(example[name])
    assert "notify_task_completion" not in example  # left to the reader; the harness adds it
