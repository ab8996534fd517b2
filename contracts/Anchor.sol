// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title Anchor — records SHA-256 hashes of smartgate ledger checkpoints on an EVM chain.
/// @notice This file is the source of the deployed bytecode: contracts/compile.py compiles it with the pinned solc
///         (npm `solc`, settings in compile.py and README.md) into Anchor.bin and Anchor.runtime.bin, and the tests
///         check that the committed bytecode equals the compiler's output. The contract:
///         - has no functions, no storage, no owner: anyone may anchor, the event names who did;
///         - accepts a call only with no value and exactly 32 bytes of calldata (the checkpoint hash, no selector);
///           anything else reverts with empty data (the fallback is not payable, so solc rejects value itself);
///         - emits one Anchored event per accepted call (no data: both fields are indexed topics).
contract Anchor {
    /// @param checkpointHash SHA-256 of the signed checkpoint note (C2SP tlog-checkpoint + signed-note bytes).
    /// @param sender the account that anchored it (the log operator's account).
    event Anchored(bytes32 indexed checkpointHash, address indexed sender);

    fallback() external {
        if (msg.data.length != 32) revert();
        emit Anchored(bytes32(msg.data), msg.sender);
    }
}
