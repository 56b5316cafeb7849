"""Online serving: engine, micro-batcher, snapshot watcher, gRPC server and client."""
