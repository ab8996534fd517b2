// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title Anchor — records SHA-256 hashes of smartgate ledger checkpoints on an EVM chain.
/// @notice This file DOCUMENTS the behaviour of the deployed bytecode. The bytecode in Anchor.bin was not
///         produced by solc: it is hand-assembled by contracts/build.py (see README.md), and implements exactly:
///         - no functions, no storage, no owner: anyone may anchor, the event names who did;
///         - the call must carry no value and exactly 32 bytes of calldata (the checkpoint hash, no selector),
///           otherwise it reverts with empty data;
///         - each accepted call emits one Anchored event (LOG3, no data: both fields are indexed topics).
contract Anchor {
    /// @param checkpointHash SHA-256 of the signed checkpoint note (C2SP tlog-checkpoint + signed-note bytes).
    /// @param sender the account that anchored it (the log operator's account).
    event Anchored(bytes32 indexed checkpointHash, address indexed sender);

    fallback(bytes calldata data) external returns (bytes memory) {
        require(data.length == 32);
        emit Anchored(bytes32(data), msg.sender);
        return "";
    }
}
