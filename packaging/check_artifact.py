"""Gates a release build of the extension before it is packaged: the glibc it needs, the
libraries it links, what it exports, and that it is built for the architecture it claims.

Usage: python3 packaging/check_artifact.py <jsbox0.so> <x86_64|aarch64>
Prints what it found; exits non-zero, naming the problem, if a gate fails."""

import re
import subprocess
import sys

# The oldest glibc the release supports (Debian 10, Ubuntu 18.10, RHEL 8, Amazon Linux 2023).
GLIBC_FLOOR = (2, 28)
# Libraries every glibc system has. Before glibc 2.34, threads and dlopen live in libpthread and
# libdl; a build against 2.28 links them by name (on newer systems they are stubs of libc).
ALLOWED_NEEDED = re.compile(r"^(libc\.so\.6|libgcc_s\.so\.1|libpthread\.so\.0|libdl\.so\.2|libm\.so\.6|librt\.so\.1|ld-linux[-a-z0-9_]*\.so\.[0-9]+)$")
EXPORTS = ["sqlite3_jsbox_init"]
MACHINES = {"x86_64": "Advanced Micro Devices X86-64", "aarch64": "AArch64"}


def run(*command):
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def main(path, arch):
    problems = []
    header = run("readelf", "-h", path)
    machine = re.search(r"Machine:\s+(.+)", header).group(1).strip()
    elf_class = re.search(r"Class:\s+(\S+)", header).group(1)
    if machine != MACHINES[arch] or elf_class != "ELF64":
        problems.append(f"built for {machine} ({elf_class}), not {arch} (ELF64)")
    versions = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_([0-9]+(?:\.[0-9]+)+)", run("objdump", "-T", path))}
    highest = max(versions) if versions else (0,)
    if highest > GLIBC_FLOOR:
        problems.append(f"needs glibc {'.'.join(map(str, highest))}, more than {'.'.join(map(str, GLIBC_FLOOR))}")
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run("readelf", "-d", path))
    strangers = [lib for lib in needed if not ALLOWED_NEEDED.match(lib)]
    if strangers:
        problems.append(f"links libraries a user may not have: {', '.join(strangers)}")
    exported = sorted(line.split()[-1] for line in run("nm", "-D", "--defined-only", path).splitlines() if line.strip())
    if exported != EXPORTS:
        problems.append(f"exports {exported}, not only {EXPORTS}")
    if ".symtab" in run("readelf", "-S", "-W", path):
        problems.append("is not stripped")
    print(f"{path}: {arch}, {elf_class}, glibc {'.'.join(map(str, highest))}, needs {', '.join(needed)}, exports {', '.join(exported)}")
    for problem in problems:
        print(f"check_artifact: {path} {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
