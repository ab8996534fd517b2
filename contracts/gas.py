"""Print the gas the Anchor contract costs: one deployment and one anchor, on eth-tester or on a JSON-RPC node.

    python contracts/gas.py                          # the in-process eth-tester chain
    python contracts/gas.py http://127.0.0.1:8545    # e.g. anvil (uses the node's first account)

It deploys the bytecode ledger.anchor embeds and anchors SHA-256("checkpoint"), so runs are comparable across builds.
"""

from __future__ import annotations

import hashlib
import sys

from ledger import anchor


def main(argv: list[str]) -> int:
    """Deploy, anchor once, print both gas figures and the runtime size."""
    w3 = anchor.connect(argv[0]) if argv else anchor.dev_chain()
    sender = w3.eth.accounts[0]
    deploy = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": sender, "data": bytes.fromhex(anchor.INIT_CODE_HEX)})
    )
    tx = {"from": sender, "to": deploy["contractAddress"], "data": hashlib.sha256(b"checkpoint").digest()}
    anchored = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(tx))  # type: ignore[arg-type]
    sys.stdout.write(
        f"deploy {deploy['gasUsed']} gas, anchor {anchored['gasUsed']} gas, "
        f"runtime {len(anchor.RUNTIME_CODE_HEX) // 2} bytes\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
