"""Assemble the Anchor contract's EVM bytecode by hand, deterministically (no solc is available offline).

Run `python contracts/build.py` to rewrite `Anchor.bin` (init code, hex), `Anchor.runtime.bin` and `Anchor.sha256`;
`python contracts/build.py --check` exits non-zero when the committed files differ from a fresh build.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from eth_utils import keccak

HERE = Path(__file__).resolve().parent

# keccak256("Anchored(bytes32,address)"): topic0 of the event that Anchor.sol declares.
EVENT_SIGNATURE = "Anchored(bytes32,address)"

OPCODES = {
    "STOP": 0x00,
    "EQ": 0x14,
    "ISZERO": 0x15,
    "CALLVALUE": 0x34,
    "CALLDATALOAD": 0x35,
    "CALLDATASIZE": 0x36,
    "CODECOPY": 0x39,
    "CALLER": 0x33,
    "JUMPI": 0x57,
    "JUMPDEST": 0x5B,
    "PUSH1": 0x60,
    "PUSH32": 0x7F,
    "DUP1": 0x80,
    "LOG3": 0xA3,
    "RETURN": 0xF3,
    "REVERT": 0xFD,
}


def assemble(program: list[tuple]) -> bytes:
    """Assemble (op, [arg]) tuples; ("LABEL", name) marks a JUMPDEST and ("PUSH1", "@name") pushes its offset."""
    # Two passes: every instruction has a fixed size, so label offsets are known after the first.
    labels: dict[str, int] = {}
    offset = 0
    for ins in program:
        if ins[0] == "LABEL":
            labels[ins[1]] = offset
            offset += 1
        elif ins[0] == "PUSH1":
            offset += 2
        elif ins[0] == "PUSH32":
            offset += 33
        else:
            offset += 1
    out = bytearray()
    for ins in program:
        op = ins[0]
        if op == "LABEL":
            out.append(OPCODES["JUMPDEST"])
        elif op == "PUSH1":
            arg = ins[1]
            value = labels[arg[1:]] if isinstance(arg, str) else arg
            if not 0 <= value <= 0xFF:
                raise ValueError(f"PUSH1 argument out of range: {value}")
            out += bytes([OPCODES["PUSH1"], value])
        elif op == "PUSH32":
            arg = ins[1]
            if len(arg) != 32:
                raise ValueError("PUSH32 needs 32 bytes")
            out += bytes([OPCODES["PUSH32"]]) + arg
        else:
            out.append(OPCODES[op])
    return bytes(out)


def runtime_code() -> bytes:
    """Runtime: reject value and any calldata that is not exactly 32 bytes, else LOG3(topic0, calldata, caller)."""
    topic0 = keccak(text=EVENT_SIGNATURE)
    return assemble(
        [
            ("CALLVALUE",),
            ("PUSH1", "@revert"),
            ("JUMPI",),  # non-payable: any value reverts
            ("CALLDATASIZE",),
            ("PUSH1", 0x20),
            ("EQ",),
            ("PUSH1", "@emit"),
            ("JUMPI",),
            ("LABEL", "revert"),
            ("PUSH1", 0x00),
            ("DUP1",),
            ("REVERT",),  # revert(0, 0)
            ("LABEL", "emit"),
            ("CALLER",),  # topic2: msg.sender
            ("PUSH1", 0x00),
            ("CALLDATALOAD",),  # topic1: the 32-byte checkpoint hash
            ("PUSH32", topic0),  # topic0: event signature
            ("PUSH1", 0x00),  # size 0: no data, everything is in topics
            ("DUP1",),  # offset 0
            ("LOG3",),
            ("STOP",),
        ]
    )


def init_code(runtime: bytes) -> bytes:
    """Constructor: reject value, copy the runtime code to memory and return it."""
    # The constructor has a fixed length, so the runtime's offset inside the init code is known in advance.
    prologue = [
        ("CALLVALUE",),
        ("ISZERO",),
        ("PUSH1", "@deploy"),
        ("JUMPI",),
        ("PUSH1", 0x00),
        ("DUP1",),
        ("REVERT",),
        ("LABEL", "deploy"),
        ("PUSH1", len(runtime)),
        ("DUP1",),
        ("PUSH1", 0),  # placeholder for the runtime offset, patched below
        ("PUSH1", 0x00),
        ("CODECOPY",),  # codecopy(dest=0, offset=runtime_offset, size=len(runtime))
        ("PUSH1", 0x00),
        ("RETURN",),  # return(0, len(runtime))
    ]
    constructor_len = len(assemble(prologue))
    prologue[10] = ("PUSH1", constructor_len)
    return assemble(prologue) + runtime


def build() -> dict[str, str]:
    """Return the file name → content map of the build outputs."""
    runtime = runtime_code()
    init = init_code(runtime)
    return {
        "Anchor.bin": init.hex() + "\n",
        "Anchor.runtime.bin": runtime.hex() + "\n",
        "Anchor.sha256": (
            f"{hashlib.sha256(init).hexdigest()}  Anchor.bin (init code bytes)\n"
            f"{hashlib.sha256(runtime).hexdigest()}  Anchor.runtime.bin (runtime code bytes)\n"
        ),
    }


def main(argv: list[str]) -> int:
    """Write the build outputs, or with --check compare them with the committed files."""
    outputs = build()
    if "--check" in argv:
        stale = [name for name, text in outputs.items() if (HERE / name).read_text() != text]
        for name in stale:
            sys.stderr.write(f"contracts/{name} differs from a fresh build\n")
        return 1 if stale else 0
    for name, text in outputs.items():
        (HERE / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
