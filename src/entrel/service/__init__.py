"""Online serving: requests and answers, engine, micro-batcher, snapshot watcher, gRPC server and client."""
