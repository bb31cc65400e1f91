"""Every malformed scene in tests/scene/bad/ raises one SceneError line naming file:line and the problem."""

import re
from pathlib import Path

import pytest

from render.errors import UserError
from render.scene import SceneError, load_scene

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.xml"))


def _expectation(path: Path):
    m = re.match(r"<!-- expect line (\d+): (.*) -->", path.read_text().splitlines()[0])
    assert m, f"{path.name} lacks its '<!-- expect line N: text -->' header"
    return int(m.group(1)), m.group(2)


def test_corpus_is_large_enough():
    assert len(CASES) >= 35


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_scene(path):
    line, expected = _expectation(path)
    with pytest.raises(SceneError) as info:
        load_scene(path)
    msg = str(info.value)
    assert isinstance(info.value, UserError)
    assert "\n" not in msg, msg
    assert msg.startswith(f"{path}:{line}: "), msg
    assert expected in msg, msg


def test_missing_scene_file(tmp_path):
    with pytest.raises(SceneError, match="scene file not found"):
        load_scene(tmp_path / "nope.xml")
