"""Compile contracts/Anchor.sol with the pinned Solidity compiler into the committed bytecode, ABI and checksums.

    python contracts/compile.py          # rewrite Anchor.bin, Anchor.runtime.bin, Anchor.abi.json, Anchor.sha256
    python contracts/compile.py --check  # exit 1 if the committed files differ from the compiler's output

The compiler is the npm package `solc` (solc-js: the official compiler built to JavaScript, bundled in the package as
soljson.js) at exactly SOLC_VERSION, installed into .tools/ by scripts/system-deps.sh and run by node through its
standard-JSON interface. Nothing is downloaded at compile time: the source is passed inline, no import callback is
given (the compiler reads no file), and the node program disables sockets before it loads the compiler.
Exit codes: 0 ok, 1 stale files or compiler errors, 2 no compiler (node or the pinned solc missing).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOURCE = HERE / "Anchor.sol"
CONTRACT = "Anchor"

# The one place the compiler version is pinned; scripts/system-deps.sh reads it from here.
SOLC_VERSION = "0.8.37"
SOLC_JS = ROOT / ".tools" / "node_modules" / "solc"

# Fixed settings: the same source and these settings give the same bytes on any machine.
# - evmVersion "paris": the code then runs on every EVM from London on. For this contract the only difference from
#   "shanghai" is PUSH0 (2 gas and 5 bytes: measured 23167 vs 23165 gas per anchor), and PUSH0 is still missing on some
#   chains an operator may anchor on (permissioned and older L2 chains). eth-tester's py-evm (Prague) and anvil (latest
#   fork by default) both run it. solc's own default (osaka) would tie the code to the newest fork for nothing this
#   contract uses.
# - no CBOR metadata in the bytecode: the metadata hash would change the deployed code whenever a comment changes, and
#   verify_anchor compares the code at the contract address with the committed runtime byte for byte.
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "paris",
    "viaIR": False,
    "metadata": {"appendCBOR": False, "bytecodeHash": "none"},
    "outputSelection": {
        SOURCE.name: {CONTRACT: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]},
    },
}

# Reads the standard-JSON input on stdin, compiles it with the bundled soljson.js, prints version and output as JSON.
# Sockets and fetch are disabled first, so a compile that tried to download anything (solc-js can fetch other compiler
# builds, which this program never asks for) fails instead.
_NODE_PROGRAM = """
const offline = () => { throw new Error("compile.py: the compiler must not use the network"); };
require("net").Socket.prototype.connect = offline;
globalThis.fetch = offline;
const solc = require(process.env.SOLC_JS);
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const output = solc.compile(Buffer.concat(chunks).toString("utf8"));
  process.stdout.write(JSON.stringify({ version: solc.version(), output: JSON.parse(output) }));
});
"""


class CompilerUnavailable(RuntimeError):
    """node or the pinned solc package is not installed."""


class CompileError(RuntimeError):
    """The compiler reported errors or warnings."""


def installed_solc_version() -> str | None:
    """The version of the solc package in .tools/, or None if it is not installed."""
    try:
        return str(json.loads((SOLC_JS / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def standard_json_input() -> dict[str, Any]:
    """The compiler's standard-JSON input: the source inline and the fixed settings."""
    return {"language": "Solidity", "sources": {SOURCE.name: {"content": SOURCE.read_text()}}, "settings": SETTINGS}


def run_solc(standard_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Compile with the pinned solc through node; return the compiler's long version and its standard-JSON output."""
    node = shutil.which("node")
    if node is None:
        raise CompilerUnavailable("node not found (install Node.js; scripts/system-deps.sh then installs solc)")
    found = installed_solc_version()
    if found != SOLC_VERSION:
        raise CompilerUnavailable(
            f"solc {SOLC_VERSION} not installed in .tools/ (found {found or 'none'}; run scripts/system-deps.sh)"
        )
    proc = subprocess.run(
        [node, "-e", _NODE_PROGRAM],
        input=json.dumps(standard_input).encode(),
        capture_output=True,
        env={**os.environ, "SOLC_JS": str(SOLC_JS)},
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise CompileError(f"node exited with {proc.returncode}: {proc.stderr.decode(errors='replace')[:2000]}")
    result = json.loads(proc.stdout)
    version = str(result["version"])
    if not version.startswith(SOLC_VERSION + "+"):
        raise CompilerUnavailable(f"the solc package reports version {version}, expected {SOLC_VERSION}")
    return version, result["output"]


def outputs_from(output: dict[str, Any]) -> dict[str, str]:
    """The file name → content map of the committed files, from the compiler's standard-JSON output."""
    problems = [e.get("formattedMessage", e.get("message", "")) for e in output.get("errors", [])]
    if problems:  # errors and warnings alike: the source must compile clean
        raise CompileError("".join(problems).strip())
    contract = output["contracts"][SOURCE.name][CONTRACT]
    init = bytes.fromhex(contract["evm"]["bytecode"]["object"])
    runtime = bytes.fromhex(contract["evm"]["deployedBytecode"]["object"])
    return {
        "Anchor.bin": init.hex() + "\n",
        "Anchor.runtime.bin": runtime.hex() + "\n",
        "Anchor.abi.json": json.dumps(contract["abi"], indent=2) + "\n",
        "Anchor.sha256": (
            f"{hashlib.sha256(init).hexdigest()}  Anchor.bin (init code bytes)\n"
            f"{hashlib.sha256(runtime).hexdigest()}  Anchor.runtime.bin (runtime code bytes)\n"
        ),
    }


def compile_outputs() -> dict[str, str]:
    """Compile Anchor.sol and return the file name → content map of the committed files."""
    _version, output = run_solc(standard_json_input())
    return outputs_from(output)


def stale_files(outputs: dict[str, str]) -> list[str]:
    """The committed files whose content differs from the given outputs."""
    return [name for name, text in outputs.items() if not (HERE / name).exists() or (HERE / name).read_text() != text]


def main(argv: list[str]) -> int:
    """Write the compiled files, or with --check compare them with the committed ones."""
    try:
        outputs = compile_outputs()
    except CompilerUnavailable as exc:
        sys.stderr.write(f"compile: {exc}\n")
        return 2
    except CompileError as exc:
        sys.stderr.write(f"compile: solc failed:\n{exc}\n")
        return 1
    if "--check" in argv:
        stale = stale_files(outputs)
        for name in stale:
            sys.stderr.write(f"compile: contracts/{name} differs from solc {SOLC_VERSION}'s output\n")
        return 1 if stale else 0
    for name, text in outputs.items():
        (HERE / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
