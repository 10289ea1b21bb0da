"""Builds jsbox's packages into dist/ from the loadable extensions `scripts/dist.sh` built:

    dist/loadable/linux-<arch>/jsbox0.so        (input: the release build, checked)
    dist/sqlite_jsbox-<v>-py3-none-manylinux_2_28_<arch>.whl        PyPI `sqlite-jsbox`
    dist/datasette_sqlite_jsbox-<v>-py3-none-any.whl                PyPI `datasette-sqlite-jsbox`
    dist/sqlite_utils_sqlite_jsbox-<v>-py3-none-any.whl             PyPI `sqlite-utils-sqlite-jsbox`
    dist/npm/sqlite-jsbox-<v>.tgz, dist/npm/sqlite-jsbox-linux-<cpu>-<v>.tgz   npm
    dist/sqlite-jsbox-<v>-loadable-linux-<arch>.tar.gz              the release tarball
    dist/crates/sqlite-jsbox-<v>.crate, jsbox-abi-<v>.crate        crates.io (made by dist.sh)
    dist/checksums.txt                                              sha256 of every file above

Every package takes its version from the workspace's Cargo.toml, as `js_version()` does. Wheels
are zip files written here (the layout of PEP 427: no build backend needed, nothing fetched);
npm tarballs are made by `npm pack`.

Usage: python3 packaging/dist.py <dist-dir>"""

import base64
import glob
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGING = os.path.join(ROOT, "packaging")
SUMMARY = "JavaScript plugins for SQLite, run in a WebAssembly sandbox (QuickJS in wasmtime)"
LICENSE = "Apache-2.0"

# What each architecture is called by each packaging system.
ARCHITECTURES = {
    "x86_64": {"wheel": "manylinux_2_28_x86_64", "npm_cpu": "x64"},
    "aarch64": {"wheel": "manylinux_2_28_aarch64", "npm_cpu": "arm64"},
}
# npm platform packages that could exist; only those whose extension was built are packed and
# named as optional dependencies.
NPM_PLATFORMS = [
    {"os": "linux", "cpu": "x64", "libc": "glibc", "arch": "x86_64"},
    {"os": "linux", "cpu": "arm64", "libc": "glibc", "arch": "aarch64"},
    {"os": "darwin", "cpu": "arm64", "libc": None, "arch": None},
    {"os": "darwin", "cpu": "x64", "libc": None, "arch": None},
    {"os": "win32", "cpu": "x64", "libc": None, "arch": None},
]


def version():
    """The workspace's version (Cargo.toml's [workspace.package])."""
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        section = f.read().split("[workspace.package]", 1)[1]
    return re.search(r'^version = "([^"]+)"', section, re.M).group(1)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def template(path, version):
    return read(path).replace(b"@VERSION@", version.encode())


def record_hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def metadata(name, version, readme, requires=()):
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        f"Summary: {SUMMARY}",
        f"License: {LICENSE}",
        "Requires-Python: >=3.8",
        "Classifier: License :: OSI Approved :: Apache Software License",
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Topic :: Database",
    ]
    lines += [f"Requires-Dist: {r}" for r in requires]
    lines += ["Description-Content-Type: text/markdown", "", readme.decode()]
    return "\n".join(lines).encode()


def wheel(dist, name, version, files, tag, readme, requires=(), entry_points=None):
    """Writes a wheel of `files` ({path in the wheel: bytes}); returns its path."""
    dist_name = name.replace("-", "_")
    info = f"{dist_name}-{version}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = metadata(name, version, readme, requires)
    purelib = "true" if tag == "py3-none-any" else "false"
    files[f"{info}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: jsbox packaging/dist.py\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n".encode()
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data in files.items())
    record += f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    path = os.path.join(dist, f"{dist_name}-{version}-{tag}.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files.items():
            entry = zipfile.ZipInfo(arcname, date_time=(2026, 1, 1, 0, 0, 0))
            entry.external_attr = (0o755 if arcname.endswith(".so") else 0o644) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    return path


def python_packages(dist, version, built):
    paths = []
    init = template(os.path.join(PACKAGING, "python/sqlite_jsbox/__init__.py"), version)
    readme = read(os.path.join(PACKAGING, "python/README.md"))
    for arch in built:
        so = read(os.path.join(dist, "loadable", f"linux-{arch}", "jsbox0.so"))
        files = {"sqlite_jsbox/__init__.py": init, "sqlite_jsbox/jsbox0.so": so}
        paths.append(wheel(dist, "sqlite-jsbox", version, files, f"py3-none-{ARCHITECTURES[arch]['wheel']}", readme))
    # The host plugins: each in packaging/<host>/, its entry point in the host's group.
    for host, group in [("datasette", "datasette"), ("sqlite-utils", "sqlite_utils")]:
        name = f"{host}-sqlite-jsbox"
        module = name.replace("-", "_")
        entry = f"[{group}]\nsqlite_jsbox = {module}\n"
        folder = os.path.join(PACKAGING, host)
        files = {f"{module}/__init__.py": read(os.path.join(folder, module, "__init__.py"))}
        requires = [host, f"sqlite-jsbox=={version}"]
        paths.append(wheel(dist, name, version, files, "py3-none-any", read(os.path.join(folder, "README.md")), requires, entry))
    return paths


def npm_packages(dist, version, built):
    """Folders for `npm pack` under dist/npm/src, then the tarballs in dist/npm."""
    out = os.path.join(dist, "npm")
    src = os.path.join(out, "src")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(src)
    base = os.path.join(PACKAGING, "npm")
    platform_packages = {}
    for platform in NPM_PLATFORMS:
        name = f"sqlite-jsbox-{platform['os']}-{platform['cpu']}"
        folder = os.path.join(src, name)
        os.makedirs(folder)
        if platform["arch"] not in built:
            # Ready for when that build exists: its manifest, and no extension yet (not packed).
            library = {"darwin": "jsbox0.dylib", "win32": "jsbox0.dll"}.get(platform["os"], "jsbox0.so")
            manifest = {"name": name, "version": version, "license": LICENSE, "os": [platform["os"]], "cpu": [platform["cpu"]], "files": [library]}
            with open(os.path.join(folder, "package.json"), "w") as f:
                json.dump(manifest, f, indent=2)
            continue
        manifest = {
            "name": name,
            "version": version,
            "description": f"jsbox's loadable SQLite extension for {platform['os']} {platform['cpu']} ({platform['libc']})",
            "license": LICENSE,
            "os": [platform["os"]],
            "cpu": [platform["cpu"]],
            "files": ["jsbox0.so"],
        }
        if platform["libc"]:
            manifest["libc"] = [platform["libc"]]
        with open(os.path.join(folder, "package.json"), "w") as f:
            json.dump(manifest, f, indent=2)
        shutil.copy(os.path.join(dist, "loadable", f"linux-{platform['arch']}", "jsbox0.so"), folder)
        with open(os.path.join(folder, "README.md"), "w") as f:
            f.write(f"# {name}\n\nThe jsbox SQLite extension built for {platform['os']} {platform['cpu']}. Install `sqlite-jsbox`, which depends on it.\n")
        platform_packages[name] = version
    folder = os.path.join(src, "sqlite-jsbox")
    os.makedirs(folder)
    for file in ("index.cjs", "index.mjs", "index.d.ts", "README.md"):
        with open(os.path.join(folder, file), "wb") as f:
            f.write(template(os.path.join(base, "sqlite-jsbox", file), version))
    manifest = {
        "name": "sqlite-jsbox",
        "version": version,
        "description": SUMMARY,
        "license": LICENSE,
        "main": "./index.cjs",
        "module": "./index.mjs",
        "types": "./index.d.ts",
        "exports": {".": {"types": "./index.d.ts", "import": "./index.mjs", "require": "./index.cjs"}},
        "files": ["index.cjs", "index.mjs", "index.d.ts"],
        "keywords": ["sqlite", "sqlite-extension", "javascript", "wasm", "sandbox"],
        # Only the platforms built: a name listed here that is not published could be taken on
        # the registry by someone else, and installed by every user of that platform.
        "optionalDependencies": dict(platform_packages),
    }
    with open(os.path.join(folder, "package.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    paths = []
    for name in ["sqlite-jsbox", *platform_packages]:
        packed = subprocess.run(["npm", "pack", "--pack-destination", out, os.path.join(src, name)], capture_output=True, text=True, check=True)
        paths.append(os.path.join(out, packed.stdout.strip().splitlines()[-1]))
    return paths


def release_tarballs(dist, version, built):
    paths = []
    for arch in built:
        path = os.path.join(dist, f"sqlite-jsbox-{version}-loadable-linux-{arch}.tar.gz")
        with tarfile.open(path, "w:gz") as tar:
            for name, source in [("jsbox0.so", os.path.join(dist, "loadable", f"linux-{arch}", "jsbox0.so")), ("README.md", os.path.join(ROOT, "README.md"))]:
                data = read(source)
                entry = tarfile.TarInfo(name)
                entry.size = len(data)
                entry.mode = 0o755 if name.endswith(".so") else 0o644
                entry.mtime = 1767225600
                tar.addfile(entry, io.BytesIO(data))
        paths.append(path)
    return paths


def checksums(dist, paths):
    lines = []
    for path in sorted(paths):
        lines.append(f"{hashlib.sha256(read(path)).hexdigest()}  {os.path.relpath(path, dist)}\n")
    with open(os.path.join(dist, "checksums.txt"), "w") as f:
        f.writelines(lines)


def main(dist):
    v = version()
    built = [arch for arch in ARCHITECTURES if os.path.exists(os.path.join(dist, "loadable", f"linux-{arch}", "jsbox0.so"))]
    if not built:
        sys.exit(f"dist.py: no extension under {dist}/loadable/linux-*/jsbox0.so: run scripts/dist.sh")
    for old in os.listdir(dist):
        if old.endswith((".whl", ".tar.gz")):
            os.remove(os.path.join(dist, old))
    paths = [os.path.join(dist, "loadable", f"linux-{arch}", "jsbox0.so") for arch in built]
    paths += python_packages(dist, v, built)
    paths += npm_packages(dist, v, built)
    paths += release_tarballs(dist, v, built)
    # The crates.io packages, when scripts/dist.sh made them.
    paths += sorted(glob.glob(os.path.join(dist, "crates", "*.crate")))
    checksums(dist, paths)
    for path in paths:
        print(f"dist: {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "dist")))
