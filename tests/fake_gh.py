"""A stand-in for the GitHub CLI (`gh`) for tests of the workflow scripts in
examples/drift-detection and examples/pr-plan: it keeps issues and pull
request comments in JSON files, applies `--jq` filters with the real `jq`,
and logs every call (with the body it was given) to calls.jsonl."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

SCRIPT = r'''#!{python}
import json, os, subprocess, sys
from pathlib import Path

state = Path({state!r})
args = sys.argv[1:]


def load(name):
    path = state / name
    return json.loads(path.read_text()) if path.exists() else []


def save(name, value):
    (state / name).write_text(json.dumps(value))


def option(name):
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def body():
    if option("--body-file"):
        return Path(option("--body-file")).read_text()
    for flag in ("--body", "--comment"):
        if option(flag) is not None:
            return option(flag)
    field = option("-F")
    if field and field.startswith("body=@"):
        return Path(field[len("body=@"):]).read_text()
    return None


def out(value):
    jq = option("--jq")
    text = json.dumps(value)
    if jq:
        text = subprocess.run(["jq", "-r", jq], input=text, capture_output=True, text=True, check=True).stdout
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")


with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"argv": args, "body": body()}}) + "\n")

issues, comments = load("issues.json"), load("comments.json")
if args[:2] == ["issue", "list"]:
    out([{{"number": i["number"], "title": i["title"]}} for i in issues if option("--label") in i["labels"]])
elif args[:2] == ["issue", "create"]:
    issues.append({{"number": len(issues) + 1, "title": option("--title"), "labels": [option("--label")], "body": body()}})
    save("issues.json", issues)
    print("https://github.com/example/infra/issues/%d" % issues[-1]["number"])
elif args[:2] == ["issue", "close"]:
    save("issues.json", [i for i in issues if str(i["number"]) != args[2]])
elif args[:2] == ["pr", "comment"]:
    comments.append({{"id": 1000 + len(comments), "body": body()}})
    save("comments.json", comments)
elif args[:1] == ["api"] and option("--method") == "PATCH":
    path = next(a for a in args if "/comments/" in a)
    for c in comments:
        if path.endswith("/comments/%d" % c["id"]):
            c["body"] = body()
    save("comments.json", comments)
elif args[:1] == ["api"] and args[1].endswith("/comments"):
    out(comments)
'''


class FakeGh:
    """`bin` goes first on PATH; `calls()` lists what the script asked of gh."""

    def __init__(self, root: Path):
        import shutil

        import pytest

        if shutil.which("jq") is None:
            pytest.skip("jq is not installed: the stand-in for gh applies --jq filters with it")
        self.state = root / "gh-state"
        self.bin = root / "gh-bin"
        self.state.mkdir(parents=True)
        self.bin.mkdir(parents=True)
        gh = self.bin / "gh"
        gh.write_text(SCRIPT.format(python=sys.executable, state=str(self.state)))
        gh.chmod(gh.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def env(self, base: dict) -> dict:
        return {**base, "PATH": f"{self.bin}{os.pathsep}{base.get('PATH', os.defpath)}"}

    def calls(self) -> list[dict]:
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def commands(self) -> list[str]:
        """Each call as 'gh <subcommand> <verb>' (e.g. 'issue create', 'api PATCH')."""
        out = []
        for call in self.calls():
            argv = call["argv"]
            if argv[0] == "api":
                out.append("api PATCH" if "PATCH" in argv else "api GET")
            else:
                out.append(" ".join(argv[:2]))
        return out

    def issues(self) -> list[dict]:
        path = self.state / "issues.json"
        return json.loads(path.read_text()) if path.exists() else []

    def comments(self) -> list[dict]:
        path = self.state / "comments.json"
        return json.loads(path.read_text()) if path.exists() else []
