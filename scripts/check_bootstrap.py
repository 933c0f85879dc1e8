"""Checks that `sam build` made what Lambda runs: an executable x86-64 (or arm64) ELF
`bootstrap` for each function.

    python3 scripts/check_bootstrap.py ARCH BUILD_DIR FUNCTION...
"""

import os
import struct
import sys

MACHINES = {"x86_64": 0x3E, "arm64": 0xB7}
ET_EXEC, ET_DYN = 2, 3

arch, build_dir, functions = sys.argv[1], sys.argv[2], sys.argv[3:]
problems = []
for function in functions:
    path = os.path.join(build_dir, function, "bootstrap")
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError as err:
        problems.append(f"{function}: {err}")
        continue
    if header[:4] != b"\x7fELF" or header[4] != 2:
        problems.append(f"{path}: not a 64-bit ELF file")
        continue
    e_type, e_machine = struct.unpack_from("<HH", header, 16)
    if e_type not in (ET_EXEC, ET_DYN):
        problems.append(f"{path}: ELF type {e_type}, not an executable")
    if e_machine != MACHINES[arch]:
        problems.append(f"{path}: machine {e_machine:#x}, not {arch}")
    if not os.access(path, os.X_OK):
        problems.append(f"{path}: not executable")
    size = os.path.getsize(path)
    print(f"{path}: {arch} ELF executable, {size / 1e6:.1f} MB")
if problems:
    sys.exit("\n".join(problems))
