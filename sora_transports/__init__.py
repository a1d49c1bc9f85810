"""sora_transports: thin I/O adapters around sora_core."""
