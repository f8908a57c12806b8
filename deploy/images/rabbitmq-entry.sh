#!/bin/sh
# The broker in the foreground, logging to stdout, with its configuration
# written from the environment at every start.
set -eu
: "${RABBITMQ_DEFAULT_USER:=guest}" "${RABBITMQ_DEFAULT_PASS:=guest}"
cat > "$HOME/rabbitmq.conf" <<CONF
loopback_users = none
default_user = $RABBITMQ_DEFAULT_USER
default_pass = $RABBITMQ_DEFAULT_PASS
listeners.tcp.default = 5672
CONF
[ -f "$RABBITMQ_ENABLED_PLUGINS_FILE" ] || echo '[].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
exec rabbitmq-server "$@"
