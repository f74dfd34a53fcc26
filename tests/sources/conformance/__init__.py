"""The contract every source kind meets, run over each registered kind with its stand-in."""
