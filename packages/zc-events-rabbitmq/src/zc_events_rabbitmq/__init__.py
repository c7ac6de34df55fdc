"""RabbitMQ transports for zc-events: the native `rabbitmq` backend and the wire-compatible `rabbitmq_legacy` backend, and a worker."""
