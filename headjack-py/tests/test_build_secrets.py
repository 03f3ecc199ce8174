"""Build secrets through the Python API: every source form, never in events or errors."""

from __future__ import annotations

import hashlib
import os
import pathlib
import uuid

import pytest

import headjack
from conftest import BASE, docker


def _dockerfile(tmp_path: pathlib.Path, body: str) -> pathlib.Path:
    path = tmp_path / "Dockerfile"
    path.write_text(f"FROM {BASE}\n{body}\n")
    return path


def test_secrets_from_bytes_env_and_files(
    tmp_path: pathlib.Path, client: headjack.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    nonce = uuid.uuid4().hex
    values = {
        "mem": f"mem-{nonce}".encode(),
        "env": f"env-{nonce}".encode(),
        "path": f"path-{nonce}".encode(),
        "file": f"file-{nonce}".encode(),
    }
    monkeypatch.setenv("HJ_PY_SECRET", values["env"].decode())
    (tmp_path / "p.txt").write_bytes(values["path"])
    (tmp_path / "f.txt").write_bytes(values["file"])
    mounts = " ".join(f"--mount=type=secret,id={i}" for i in values)
    files = " ".join(f"/run/secrets/{i}" for i in values)
    df = _dockerfile(tmp_path, f"RUN {mounts} sha256sum {files} > /proof && echo {nonce}")
    spec = headjack.Dockerfile(
        df,
        secrets={
            "mem": values["mem"],
            "env": "env:HJ_PY_SECRET",
            "path": tmp_path / "p.txt",
            "file": f"file:{tmp_path / 'f.txt'}",
        },
    )
    assert spec.secret_ids == ["env", "file", "mem", "path"]
    assert spec.builder == "auto"
    for value in values.values():
        assert value.decode() not in repr(spec)
    events: list[dict[str, object]] = []
    with headjack.spawn(base=spec, progress=events.append, labels={"io.headjack.test": "1"}) as env:
        proof = env.read_file("/proof").decode()
        image = env.image
    try:
        for value in values.values():
            assert hashlib.sha256(value).hexdigest() in proof
            assert not any(value.decode() in str(e) for e in events)
        assert value.decode() not in docker("history", "--no-trunc", image).stdout
    finally:
        client.remove_image(image)


def test_bad_secrets_are_refused_without_showing_them(tmp_path: pathlib.Path) -> None:
    df = _dockerfile(tmp_path, "RUN true")
    with pytest.raises(ValueError, match="env:NAME") as e:
        headjack.Dockerfile(df, secrets={"tok": "hunter2-plain-string"})
    assert "hunter2" not in str(e.value)
    with pytest.raises(TypeError, match="secrets"):
        headjack.Dockerfile(df, secrets=["tok"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"secrets\['tok'\]|secrets\[\"tok\"\]"):
        headjack.Dockerfile(df, secrets={"tok": 5})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="builder"):
        headjack.Dockerfile(df, builder="fast")  # type: ignore[arg-type]
    # An unset variable is named (not its value) when a build needs it.
    os.environ.pop("HJ_PY_UNSET_SECRET", None)
    nonce = uuid.uuid4().hex
    df = _dockerfile(tmp_path, f"RUN --mount=type=secret,id=tok true {nonce}")
    with pytest.raises(headjack.InvalidArgumentError, match="HJ_PY_UNSET_SECRET"):
        headjack.Client().resolve(headjack.Dockerfile(df, secrets={"tok": "env:HJ_PY_UNSET_SECRET"}))


def test_the_classic_builder_refuses_secret_mounts(
    tmp_path: pathlib.Path, client: headjack.Client
) -> None:
    nonce = uuid.uuid4().hex
    df = _dockerfile(tmp_path, f"RUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo {nonce}")
    spec = headjack.Dockerfile(df, secrets={"tok": b"classic-secret"}, builder="classic")
    assert spec.builder == "classic"
    if client.info().kind == "podman":
        # Podman's builder is buildah whatever is asked, and it takes secrets.
        client.remove_image(client.resolve(spec).reference)
        return
    with pytest.raises(headjack.HeadjackError, match="classic builder") as e:
        client.resolve(spec)
    assert "classic-secret" not in str(e.value)


def test_a_failing_build_has_no_colour_codes(tmp_path: pathlib.Path, client: headjack.Client) -> None:
    nonce = uuid.uuid4().hex
    df = _dockerfile(tmp_path, f"RUN printf '\\033[91mE: red failure {nonce}\\033[0m\\n' && exit 5")
    with pytest.raises(headjack.BuildError) as e:
        client.resolve(str(df))
    err = e.value
    assert err.step is not None and "exit 5" in err.step
    assert any(f"red failure {nonce}" in line for line in err.log_tail)
    assert "\x1b" not in str(err) and not any("\x1b" in line for line in err.log_tail)
