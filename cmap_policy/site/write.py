"""Write the generated site sources as plain files, for a generator that runs no MkDocs hooks (Zensical).

    python -m cmap_policy.site.write OUT [--date YYYY-MM-DD] [--config mkdocs.yml]

copies docs/ to OUT/docs, writes every page and download of ``generate_pages`` into it, and writes
OUT/mkdocs.yml: the project's configuration with the navigation and the footer's policy facts filled in
and the hook left out. Building OUT/mkdocs.yml then gives the same site as ``mkdocs build`` here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import yaml

from ..load.loader import load_policy
from .nav import repo_links, site_nav
from .pages import generate_pages, hand_written, site_meta


def write_site_sources(out: Path, *, config: Path, today: dt.date, policy_path: str | None = None) -> list[Path]:
    """Write OUT/docs and OUT/mkdocs.yml; return the generated files written."""
    policy = load_policy(policy_path)
    root = config.resolve().parent
    conf: dict[str, Any] = yaml.safe_load(config.read_text(encoding="utf-8"))
    docs_src = root / conf.get("docs_dir", "docs")
    docs = out / "docs"
    if docs.exists():
        shutil.rmtree(docs)
    shutil.copytree(docs_src, docs)
    inputs = hand_written(root, docs_src)
    written = inputs["docs_pages"]
    pages = generate_pages(policy, today=today, directory_urls=bool(conf.get("use_directory_urls", True)), **inputs)
    schemas = [p.removeprefix("authors/schema/").removesuffix(".md") for p in pages
               if p.startswith("authors/schema/") and p != "authors/schema/index.md"]
    for rel in written:  # what the hook's on_page_markdown does to hand-written pages
        path = docs / rel
        path.write_text(repo_links(path.read_text(encoding="utf-8"), f"docs/{rel}", written, schemas),
                        encoding="utf-8")
    files = []
    for rel, content in pages.items():
        path = docs / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        files.append(path)
    conf.pop("hooks", None)
    conf.pop("watch", None)
    conf["docs_dir"] = "docs"
    conf["nav"] = site_nav(policy, pages, written)
    conf.setdefault("extra", {})["policy"] = site_meta(policy, today).as_dict()
    theme = conf.get("theme", {})
    if isinstance(theme, dict) and "custom_dir" in theme:
        shutil.copytree(root / theme["custom_dir"], out / theme["custom_dir"], dirs_exist_ok=True)
    (out / "mkdocs.yml").write_text(yaml.safe_dump(conf, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cmap_policy.site.write", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder to write docs/ and mkdocs.yml into")
    parser.add_argument("--config", type=Path, default=Path("mkdocs.yml"), help="the project's mkdocs.yml")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date.today(),
                        help="show the table as of this day (default: today)")
    parser.add_argument("--policy", default=None, help="policy folder (default: the bundled policy)")
    args = parser.parse_args(argv)
    files = write_site_sources(args.out, config=args.config, today=args.date, policy_path=args.policy)
    print(f"wrote {len(files)} generated files and {args.out / 'mkdocs.yml'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
